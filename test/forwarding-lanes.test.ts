/** The lanes the worker keeps per target and per callback origin: origins that hold nothing are forgotten. */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { Lanes } from "../src/forwarding/Lanes.js"

describe("lanes", () => {
  it.effect("forget idle origins, keep targets and origins with something to remember", () =>
    Effect.gen(function* () {
      const lanes = yield* Lanes
      const now = 1_000_000
      lanes.stateOf("$adhoc")
      for (let i = 0; i < 1000; i++) lanes.stateOf(`$adhoc http://host-${i}.example:80`)
      const busy = lanes.stateOf("$adhoc http://busy.example:80")
      busy.inFlight = 1
      lanes.stateOf("$adhoc http://failing.example:80").circuit = { failures: 2, openUntil: 0 }
      lanes.stateOf("$adhoc http://open.example:80").circuit = { failures: 5, openUntil: now + 30_000 }
      lanes.stateOf("$adhoc http://limited.example:80").nextSendAt = now + 500
      expect(lanes.size()).toBe(1005)
      expect(lanes.prune(now)).toBe(1000)
      expect(lanes.size()).toBe(5)
      // what was kept is what it was
      expect(lanes.view("$adhoc http://open.example:80", now)).toMatchObject({ state: "open", failures: 5 })
      expect(lanes.view("$adhoc http://failing.example:80", now)).toMatchObject({ state: "closed", failures: 2 })
      expect(lanes.view("$adhoc http://busy.example:80", now).inFlight).toBe(1)
      // a forgotten origin comes back fresh when it is called again
      expect(lanes.view("$adhoc http://host-7.example:80", now)).toEqual({ state: "closed", openUntil: null, failures: 0, inFlight: 0 })
      busy.inFlight = 0
      expect(lanes.prune(now)).toBe(1)
    }).pipe(Effect.provide(Lanes.Default))
  )
})
