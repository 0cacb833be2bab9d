/**
 * The delivery worker: a background fiber of the app's layers. It claims due deliveries
 * target by target (never more than a target's concurrency, none while its circuit is open,
 * one probe when the cool-down is over, a call's deliveries one after another), sends each
 * outside any transaction, and records the attempt and the delivery's next state in a short
 * one. Woken by every emit, and polling besides. Deliveries left in flight by a crash are
 * due again at start; on shutdown, sends in flight get a moment to finish.
 *
 * Storage that fails (disk full, the database locked too long) does not stop it: a claim is
 * tried again at the next poll, an outcome is written again with backoff for a while
 * (Decisions.recordRetry), and a delivery whose lease ended and that this process is not
 * sending any more is due again (the lease sweep). Meanwhile the worker says it is degraded,
 * in the log and in /readyz.
 *
 * Deliveries that carry their own URL (the built-in `$adhoc` target: each callback's callbackUrl)
 * have a circuit and a concurrency per URL origin (scheme, host, port), a lane: one callback
 * URL that fails or hangs must not hold up the others (SPEC §5). Those circuits live in memory
 * only: after a restart a dead origin opens its circuit again within `circuitThreshold` attempts.
 *
 * What to do is decided in Decisions.ts; this file holds the loop and the per-target state,
 * Claims.ts what is claimed, Attempt.ts the send, Record.ts what is written of it.
 */
import { Clock, Duration, Effect, FiberSet, Layer } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { attempt } from "./Attempt.js"
import { claim, type Claimed, reclaimExpired, recoverAtStart } from "./Claims.js"
import { DeadLetters } from "./DeadLetters.js"
import { capacity, circuitAfter, type NextState, nextState, type Outcome, rateSlot } from "./Decisions.js"
import { makeHealth, WorkerHealth } from "./Health.js"
import { markEventMissing, markTargetGone, recordAttempt, releaseLater } from "./Record.js"
import { ADHOC_TARGET, type Target } from "./Target.js"
import { Lanes } from "./Lanes.js"
import { Targets } from "./Targets.js"
import { mobileLookup } from "./Mentions.js"

export { WorkerHealth, type WorkerStatus } from "./Health.js"

const HELD_SWEEP_MS = 60_000
const SHUTDOWN_GRACE_MS = 5_000
const UNEXPECTED_RETRY_MS = 30_000
/** how often deliveries whose lease ended are looked for */
const LEASE_SWEEP_MS = 1_000
/** `$adhoc` deliveries in flight at once over all origins (each origin: the target's concurrency) */
const ADHOC_IN_FLIGHT = 64

const originOf = (url: string) => {
  try {
    return new URL(url).origin
  } catch {
    return url
  }
}
/** Whose circuit and concurrency a delivery counts against: its target's, or its own URL origin's. */
const laneOf = (target: string, url: string | null) => (url === null ? target : `${target} ${originOf(url)}`)

/**
 * What an operator reading the log at info level needs: a retry, a dead letter, a circuit that
 * opens or closes (a delivery is not logged when it simply succeeds: that is what metrics count).
 */
const attemptLogged = (
  outcome: Outcome,
  next: NextState,
  at: { readonly event: string; readonly attempt: number; readonly latencyMs: number; readonly opened: boolean; readonly recovered: boolean; readonly openUntil: number; readonly failures: number }
) =>
  Effect.gen(function* () {
    const error = "error" in outcome ? outcome.error : undefined
    const status = "status" in outcome ? outcome.status : null
    if (next.status === "pending") yield* Effect.logInfo("delivery failed; retried later").pipe(Effect.annotateLogs({ event: at.event, attempt: at.attempt, status, error, retryAt: new Date(next.at).toISOString() }))
    if (next.status === "dead") yield* Effect.logWarning("delivery dead-lettered").pipe(Effect.annotateLogs({ event: at.event, attempt: at.attempt, status, error, reason: next.reason }))
    if (at.opened) yield* Effect.logWarning("circuit opened: the target is probed again later").pipe(Effect.annotateLogs({ failures: at.failures, openUntil: new Date(at.openUntil).toISOString() }))
    if (at.recovered) yield* Effect.logInfo("circuit closed: the target answers again")
  })

export const workerLayer = Layer.scoped(
  WorkerHealth,
  Effect.gen(function* () {
    const config = yield* AppConfig
    const targets = yield* Targets
    const deadLetters = yield* DeadLetters
    const mobileOf = yield* mobileLookup
    const { circuitThreshold, circuitCooldownMs, pollIntervalMs } = config.forwarding
    const circuitPolicy = { threshold: circuitThreshold, cooldownMs: circuitCooldownMs }
    const lanes = yield* Lanes
    const { stateOf } = lanes
    const sends = yield* FiberSet.make()
    let stopping = false
    /** deliveries this process claimed and is still sending or recording: never reclaimed under it */
    const sending = new Set<number>()
    const health = makeHealth()

    // circuits open when the bridge stopped are open again, their cool-down over: a probe goes first
    for (const f of yield* recoverAtStart(targets.sending().map((t) => t.name))) stateOf(f.target).circuit = { failures: f.failures, openUntil: Date.now() }

    const deliver = (target: Target, d: Claimed) =>
      Effect.gen(function* () {
        const lane = laneOf(target.name, d.url)
        const state = stateOf(lane)
        const event = d.event
        if (!event) return yield* markEventMissing(d.id)
        // the target as it is now: an edit applies to deliveries already waiting; a deleted one
        // sends nothing more (its deliveries were dead-lettered with it)
        const current = yield* targets.forDelivery(target.name)
        if (!current) return yield* markTargetGone(d.id)
        if (current.rateLimit) {
          const { waitMs, nextSendAt } = rateSlot(state.nextSendAt, yield* Clock.currentTimeMillis, current.rateLimit)
          state.nextSendAt = nextSendAt
          if (waitMs > 0) yield* Effect.sleep(Duration.millis(waitMs))
        }
        const startedAt = Date.now()
        const outcome = yield* attempt(current, event, d.webhook_id, mobileOf, d.url)
        const latencyMs = Date.now() - startedAt
        const now = Date.now()
        const n = d.attempts + 1
        // the circuit moves when the outcome is known, not when it is written (that may take a while, or run twice)
        const { circuit, opened, recovered } = circuitAfter(state.circuit, outcome.kind, now, circuitPolicy)
        state.circuit = circuit
        const next = nextState(outcome, n, current.retry.scheduleMs, now)
        const origin = d.url === null ? undefined : originOf(d.url)
        yield* recordAttempt({ target: current, delivery: d, event, outcome, startedAt, latencyMs, n, next, circuit: { opened, recovered, failures: circuit.failures, origin } }, health)
        yield* attemptLogged(outcome, next, { event: event.type, attempt: n, latencyMs, opened, recovered, openUntil: circuit.openUntil, failures: circuit.failures })
        if (opened && current.autoDisable) {
          yield* targets.save({ ...current, enabled: false }, "api")
          yield* Effect.logWarning("target disabled: its circuit opened and autoDisable is set").pipe(Effect.annotateLogs({ target: current.name }))
        }
      }).pipe(
        Effect.catchAllCause((cause) =>
          Effect.zipRight(
            Effect.logError("delivery failed unexpectedly; it is tried again later", cause),
            releaseLater(d.id, Date.now() + UNEXPECTED_RETRY_MS).pipe(Effect.ignoreLogged)
          )
        ),
        // a freed slot may let the next delivery of this target (or of this call) go: look again at once
        Effect.ensuring(
          Effect.zipRight(
            Effect.sync(() => {
              stateOf(target.name).inFlight--
              const lane = laneOf(target.name, d.url)
              if (lane !== target.name) stateOf(lane).inFlight--
              sending.delete(d.id)
            }),
            targets.wake
          )
        ),
        Effect.annotateLogs({ target: target.name, delivery: d.id })
      )

    /** a claim's filter: each origin up to its lane's free capacity (none while its circuit is open) */
    const admitByOrigin = (target: Target, now: number) => {
      const taken = new Map<string, number>()
      return (d: Claimed) => {
        const lane = laneOf(target.name, d.url)
        const s = stateOf(lane)
        const n = taken.get(lane) ?? 0
        if (capacity(s.circuit, now, target.concurrency, s.inFlight) - n <= 0) return false
        taken.set(lane, n + 1)
        return true
      }
    }

    const pump = Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      for (const target of targets.sending()) {
        if (!target.enabled) continue
        const state = stateOf(target.name)
        const perOrigin = target.name === ADHOC_TARGET
        const free = perOrigin ? ADHOC_IN_FLIGHT - state.inFlight : capacity(state.circuit, now, target.concurrency, state.inFlight)
        if (free <= 0) continue
        const claimed = yield* claim(target, free, now, perOrigin ? () => admitByOrigin(target, now) : undefined)
        for (const d of claimed) {
          sending.add(d.id)
          state.inFlight++
          const lane = laneOf(target.name, d.url)
          if (lane !== target.name) stateOf(lane).inFlight++
          yield* FiberSet.run(sends, deliver(target, d))
        }
      }
      // every claim this pump tried worked, or there was none to try (every target disabled,
      // deleted, cooling down or busy): a claim that failed before fails no more
      yield* health.worked("claim")
    })

    // deliveries held behind a dead letter that is gone (a redrive or purge stopped short: a
    // crash, Ctrl-C of the CLI) are released at start and then every minute
    const sweepHeld = Effect.suspend(() => deadLetters.releaseHeld(targets.sending().map((t) => t.name))).pipe(
      Effect.catchAllCause((cause) => Effect.logError("could not release held deliveries", cause))
    )
    yield* sweepHeld
    let lastSweep = Date.now()

    // a delivery whose outcome could not be recorded in time (storage failing all that time) is
    // left in flight: once its lease is over, and this process is not at it, it is due again
    const sweepLeases = Effect.gen(function* () {
      const reclaimed = yield* reclaimExpired(Date.now(), sending)
      if (reclaimed > 0) yield* Effect.logWarning("deliveries whose lease ended in flight are due again").pipe(Effect.annotateLogs({ count: reclaimed }))
      yield* health.worked("sweep")
    }).pipe(Effect.catchAllCause((cause) => health.failed("sweep", "could not reclaim deliveries whose lease ended", cause)))
    let lastLeaseSweep = Date.now()

    const loop = Effect.gen(function* () {
      while (!stopping) {
        if (Date.now() - lastSweep > HELD_SWEEP_MS) {
          lastSweep = Date.now()
          yield* sweepHeld
        }
        if (Date.now() - lastLeaseSweep >= LEASE_SWEEP_MS) {
          lastLeaseSweep = Date.now()
          yield* sweepLeases
        }
        yield* pump.pipe(Effect.catchAllCause((cause) => health.failed("claim", "could not claim deliveries", cause)))
        yield* Effect.raceFirst(targets.wakeups.take, Effect.sleep(Duration.millis(pollIntervalMs)))
      }
    })
    yield* Effect.forkScoped(loop)
    yield* Effect.addFinalizer(() =>
      Effect.gen(function* () {
        stopping = true
        const until = Date.now() + SHUTDOWN_GRACE_MS
        while (lanes.anyInFlight() && Date.now() < until) yield* Effect.sleep(Duration.millis(20))
      })
    )
    return { current: health.current }
  })
)
