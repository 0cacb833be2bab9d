/**
 * The live state of each lane deliveries go out on — a target, or one URL origin of a callback's
 * own deliveries: what is in flight, its circuit, its rate-limit slot. The worker moves it; the
 * admin API shows it (a target's circuit) and a redrive opens it to a probe at once: the
 * operator who redrives has just fixed the target, and should not wait out a cool-down.
 */
import { Effect } from "effect"
import { type Circuit, circuitState, CLOSED } from "./Decisions.js"

export interface LaneState {
  inFlight: number
  circuit: Circuit
  nextSendAt: number
}

export interface CircuitView {
  readonly state: "closed" | "open" | "half-open"
  /** when an open circuit lets a probe through (ms), null when closed */
  readonly openUntil: number | null
  readonly failures: number
  readonly inFlight: number
}

export class Lanes extends Effect.Service<Lanes>()("Lanes", {
  sync: () => {
    const states = new Map<string, LaneState>()
    const stateOf = (lane: string): LaneState => {
      let s = states.get(lane)
      if (!s) states.set(lane, (s = { inFlight: 0, circuit: CLOSED, nextSendAt: 0 }))
      return s
    }
    const view = (lane: string, now: number): CircuitView => {
      const s = states.get(lane) ?? { inFlight: 0, circuit: CLOSED, nextSendAt: 0 }
      return { state: circuitState(s.circuit, now), openUntil: s.circuit.openUntil === 0 ? null : s.circuit.openUntil, failures: s.circuit.failures, inFlight: s.inFlight }
    }
    /** Open circuits of these targets (and their origins' lanes) let a probe through now; answers how many were open. */
    const probeNow = (targets: ReadonlyArray<string>, now: number) => {
      let opened = 0
      for (const [lane, s] of states) {
        const target = lane.split(" ")[0]!
        if (!targets.includes(target) || s.circuit.openUntil <= now) continue
        s.circuit = { ...s.circuit, openUntil: now }
        opened++
      }
      return opened
    }
    const anyInFlight = () => [...states.values()].some((s) => s.inFlight > 0)
    /**
     * Forgets the lanes of URL origins (a callback's own deliveries, `target origin`) that hold
     * nothing a fresh lane would not: none in flight, no failure counted, no rate slot ahead. A
     * callbackUrl names any host, so without this the map would keep every origin ever called.
     * A target's own lane is kept (the admin API shows it). Answers how many were forgotten.
     */
    const prune = (now: number) => {
      let forgotten = 0
      for (const [lane, s] of states) {
        if (!lane.includes(" ") || s.inFlight > 0 || s.circuit.failures > 0 || s.circuit.openUntil !== 0 || s.nextSendAt > now) continue
        states.delete(lane)
        forgotten++
      }
      return forgotten
    }
    return { stateOf, view, probeNow, anyInFlight, prune, size: () => states.size } as const
  }
}) {}
