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
import { Cause, Chunk, Clock, Duration, Effect, FiberSet, Layer, Queue } from "effect"
import * as prom from "prom-client"
import { AppConfig } from "../config/AppConfig.js"
import { GroupCommit } from "../db/GroupCommit.js"
import { Metrics } from "../http/Metrics.js"
import { attempt, attemptPlainly, isPlain, type Sent } from "./Attempt.js"
import { claim, type Claimed, reclaimExpired, recoverAtStart, unclaim } from "./Claims.js"
import { DeadLetters } from "./DeadLetters.js"
import { capacity, circuitAfter, circuitState, type NextState, nextState, type Outcome, rateSlot } from "./Decisions.js"
import { makeHealth, WorkerHealth } from "./Health.js"
import { type Attempted, markEventMissing, markTargetGone, recordAttempt, recordAttempts, releaseLater } from "./Record.js"
import { ADHOC_TARGET, type Target } from "./Target.js"
import type { StoredEvent } from "../events/Outbox.js"
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
/**
 * while pushes arrive in a burst, callbacks' own deliveries go with 1/BURST_SHARE of their slots (the
 * configured targets, which carry every event, wait for the burst to be over): few, and someone waits on each
 */
const BURST_SHARE = 4
/** outcomes of plain deliveries written in one transaction at most */
const RECORDED_AT_ONCE = 512

const originOf = (url: string) => {
  try {
    return new URL(url).origin
  } catch {
    return url
  }
}
/** Whose circuit and concurrency a delivery counts against: its target's, or its own URL origin's. */
const laneOf = (target: string, url: string | null) => (url === null ? target : `${target} ${originOf(url)}`)

/** What a delivery's fiber needs from the app's layers: what writing its outcome, or its dead letter, needs. */
type DeliveryNeeds = Effect.Effect.Context<ReturnType<typeof recordAttempt>> | Effect.Effect.Context<ReturnType<typeof markEventMissing>>

/**
 * What an operator reading the log at info level needs: a retry, a dead letter, a circuit that
 * opens or closes (a delivery is not logged when it simply succeeds: that is what metrics count).
 */
const attemptLogged = (
  outcome: Outcome,
  next: NextState,
  at: { readonly event: string; readonly attempt: number; readonly latencyMs: number; readonly opened: boolean; readonly recovered: boolean; readonly openUntil: number; readonly failures: number }
) =>
  // the common case, a delivery that simply went, costs nothing here
  next.status === "delivered" && !at.opened && !at.recovered ? Effect.void : Effect.gen(function* () {
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
    const commit = yield* GroupCommit
    const { registry } = yield* Metrics
    /** pushes arrive in a burst, and deliveries yield to them (`forwarding.holdDuringBursts`) */
    const holding = config.forwarding.holdDuringBursts ? () => commit.busy() : () => false
    /**
     * How many of the target's deliveries may be in flight now: none while pushes arrive in a
     * burst (acknowledging them comes first; the backlog goes as soon as the burst is over, or
     * once it has been held its longest and is steady load: src/db/Bursts.ts), all of its
     * concurrency otherwise.
     */
    const slots = (target: Target) => (holding() ? 0 : target.concurrency)
    const deadLetters = yield* DeadLetters
    const mobileOf = yield* mobileLookup
    const { circuitThreshold, circuitCooldownMs, pollIntervalMs } = config.forwarding
    const circuitPolicy = { threshold: circuitThreshold, cooldownMs: circuitCooldownMs }
    const lanes = yield* Lanes
    const { stateOf } = lanes
    let stopping = false
    /** deliveries this process claimed and is still sending or recording: never reclaimed under it */
    const sending = new Set<number>()
    /**
     * Deliveries claimed ahead of a free slot, per target (up to its concurrency, while its
     * circuit is closed and it has no rate limit): a slot that frees takes the next at once
     * instead of waiting for a claim's commit, which under synchronous=FULL waits for the disk.
     * Like any claimed delivery they are in flight in the store, leased, and in `sending`; given
     * back when the target pauses or its circuit leaves closed, due again at start after a crash.
     */
    const ready = new Map<string, { target: Target; queue: Array<Claimed> }>()

    const sends = yield* FiberSet.make()
    // a delivery's fiber is started from plain code too (a plain delivery's answer frees a slot)
    const runInSet = yield* FiberSet.runtime(sends)<DeliveryNeeds>()
    /** plain deliveries whose receiver has not answered yet: cancelled at shutdown, once the grace is over */
    const plainInFlight = new Set<{ cancel: () => void }>()
    /** what plain deliveries came to, waiting to be written (many in one transaction) */
    const recorded = yield* Queue.unbounded<Attempted>()
    const plainTargets = new WeakMap<Target, boolean>()
    const plain = (target: Target) => {
      let p = plainTargets.get(target)
      if (p === undefined) plainTargets.set(target, (p = isPlain(target)))
      return p
    }

    /**
     * Sends a claimed delivery. One of a plain target (Attempt.isPlain) without its own URL goes
     * in plain code, its outcome written with others' (`recorded`): a fiber per delivery, and a
     * commit's wait per outcome, cost more of the one thread than the request did. Any other
     * (a transform, OAuth2, a rate limit, a callback's own URL, an event or target gone) in a fiber.
     */
    const startNow = (target: Target, d: Claimed): void => {
      stateOf(target.name).inFlight++
      const lane = laneOf(target.name, d.url)
      if (lane !== target.name) stateOf(lane).inFlight++
      // the target as it is now: an edit applies to deliveries already waiting
      const current = d.url === null && d.event !== null ? targets.targetFor(target.name) : undefined
      if (current && d.event && plain(current)) deliverPlainly(current, d, d.event)
      else runInSet(deliver(target, d))
    }
    const start = (target: Target, d: Claimed) => Effect.sync(() => startNow(target, d))

    /** A slot of the target freed: the next delivery claimed ahead goes, if the target still sends. */
    const sendNextNow = (name: string) => {
      const r = ready.get(name)
      if (stopping || !r || r.queue.length === 0) return
      const current = targets.targetFor(name)
      const state = stateOf(name)
      // paused: the pump gives them back; deleted: sent, each finds its target gone (a dead letter)
      if (current && (!current.enabled || capacity(state.circuit, Date.now(), slots(current), state.inFlight) <= 0)) return
      const d = r.queue.shift()
      if (d) startNow(r.target, d)
    }

    /**
     * The pump, woken only when it has something to do for the target: a slot free with nothing
     * claimed ahead, the claimed-ahead half gone, or a circuit not closed (its claimed-ahead go
     * back). Waking it at every answer and every outcome cost more than the claims.
     */
    const wakeIfUsefulNow = (name: string) => {
      const r = ready.get(name)
      const state = stateOf(name)
      if (r && state.circuit.openUntil === 0 && r.queue.length > r.target.concurrency / 2 && state.inFlight >= r.target.concurrency) return
      if (name === ADHOC_TARGET) targets.wakeSync()
      else targets.wakeTargetsSync()
    }

    /** a delivery's slot in its target (and lane) given back: the next one claimed ahead goes */
    const releaseSlot = (name: string, url: string | null) => {
      stateOf(name).inFlight--
      const lane = laneOf(name, url)
      if (lane !== name) stateOf(lane).inFlight--
      sendNextNow(name)
      wakeIfUsefulNow(name)
    }

    /** What was claimed ahead for the target goes back to pending (its lease and `sending` with it). */
    const giveBack = (name: string) =>
      Effect.suspend(() => {
        const r = ready.get(name)
        if (!r || r.queue.length === 0) return Effect.void
        const ids = r.queue.splice(0).map((d) => d.id)
        // not given back (storage failing): their lease ends and the sweep makes them due again
        return Effect.ensuring(unclaim(ids, Date.now()), Effect.sync(() => ids.forEach((id) => sending.delete(id))))
      })
    const health = makeHealth()

    // circuits open when the bridge stopped are open again, their cool-down over: a probe goes first
    for (const f of yield* recoverAtStart(targets.sending().map((t) => t.name))) stateOf(f.target).circuit = { failures: f.failures, openUntil: Date.now() }

    const deliver = (target: Target, d: Claimed) => {
      let released = false
      /** the delivery's slot in its target (and lane), given back once: at the answer, or at the end */
      const release = Effect.sync(() => {
        if (released) return
        released = true
        releaseSlot(target.name, d.url)
      })
      return Effect.gen(function* () {
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
        // the receiver has answered: the slot takes the next send while this outcome is written
        // (concurrency bounds the receiver's requests, not our commits); the call's next delivery
        // still waits for this one's outcome, which is in flight until it is committed
        yield* release
        const attempted: Attempted = { target: current, delivery: d, event, outcome, startedAt, latencyMs, n, next, circuit: { opened, recovered, failures: circuit.failures, openUntil: circuit.openUntil, origin } }
        yield* recordAttempt(attempted, health)
        yield* afterRecorded(attempted)
      }).pipe(
        Effect.catchAllCause((cause) => unexpected(d, cause)),
        // a freed slot, or a recorded outcome, may let the next delivery of this target (or of
        // this call) go: look again at once
        Effect.ensuring(
          Effect.zipRight(
            release,
            Effect.sync(() => {
              sending.delete(d.id)
              wakeIfUsefulNow(target.name)
            })
          )
        ),
        Effect.annotateLogs({ target: target.name, delivery: d.id })
      )
    }

    /** Something unforeseen went wrong with the delivery: it is due again later. */
    const unexpected = (d: Claimed, cause: Cause.Cause<unknown>) =>
      Effect.zipRight(
        Effect.logError("delivery failed unexpectedly; it is tried again later", cause),
        releaseLater(d.id, Date.now() + UNEXPECTED_RETRY_MS).pipe(Effect.ignoreLogged)
      )

    /** What an attempt's outcome, once written, says to an operator, and does to a target set to `autoDisable`. */
    const afterRecorded = (a: Attempted) =>
      a.next.status === "delivered" && !a.circuit.opened && !a.circuit.recovered
        ? Effect.void
        : Effect.gen(function* () {
            yield* attemptLogged(a.outcome, a.next, { event: a.event.type, attempt: a.n, latencyMs: a.latencyMs, ...a.circuit })
            // the target as it is now, not as the send found it: an operator's edit or deletion
            // made while the request was out stands (a deleted target is not made again)
            const current = targets.targetFor(a.target.name)
            if (a.circuit.opened && current?.autoDisable && current.enabled) {
              yield* targets.save({ ...current, enabled: false }, "api")
              yield* Effect.logWarning("target disabled: its circuit opened and autoDisable is set").pipe(Effect.annotateLogs({ target: current.name }))
            }
          }).pipe(Effect.annotateLogs({ target: a.target.name, delivery: a.delivery.id }))

    /**
     * A plain delivery (see `startNow`): sent in plain code; at the answer its slot takes the
     * next send and its outcome joins `recorded`. Like a delivery's fiber, it is in `sending`
     * until the outcome is written, and the call's next delivery waits for that.
     */
    const deliverPlainly = (target: Target, d: Claimed, event: StoredEvent) => {
      const state = stateOf(target.name)
      const startedAt = Date.now()
      const sent = { cancel: () => {} }
      plainInFlight.add(sent)
      const settle = (outcome: Sent) => {
        plainInFlight.delete(sent)
        try {
          const now = Date.now()
          const n = d.attempts + 1
          // the circuit moves when the outcome is known, not when it is written
          const { circuit, opened, recovered } = circuitAfter(state.circuit, outcome.kind, now, circuitPolicy)
          state.circuit = circuit
          const next = nextState(outcome, n, target.retry.scheduleMs, now)
          recorded.unsafeOffer({ target, delivery: d, event, outcome, startedAt, latencyMs: now - startedAt, n, next, circuit: { opened, recovered, failures: circuit.failures, openUntil: circuit.openUntil } })
        } catch (e) {
          runInSet(unexpected(d, Cause.die(e)).pipe(Effect.ensuring(Effect.sync(() => sending.delete(d.id))), Effect.annotateLogs({ target: target.name, delivery: d.id })))
        }
        try {
          releaseSlot(target.name, null)
        } catch (e) {
          // on a receiver's answer's callback: thrown, it would end the process
          runInSet(Effect.logError("the next delivery could not be started", Cause.die(e)))
        }
      }
      sent.cancel = attemptPlainly(target, event, d.webhook_id, settle)
    }

    /** The outcomes of plain deliveries, written as they gather: many per transaction while the last one commits. */
    const writeRecorded = Effect.gen(function* () {
      const all = Chunk.toReadonlyArray(yield* Queue.takeBetween(recorded, 1, RECORDED_AT_ONCE))
      // one not written (recordAttempts gave up on it) stays in flight, for the lease sweep once this process lets go of it
      const written = yield* recordAttempts(all, health).pipe(
        Effect.catchAllCause((cause) => Effect.as(Effect.logError("outcomes of deliveries could not be written", cause), []))
      )
      const names = new Set<string>()
      for (const a of all) {
        sending.delete(a.delivery.id)
        names.add(a.target.name)
      }
      // a written outcome may let the call's next delivery go: look again
      for (const name of names) wakeIfUsefulNow(name)
      for (const a of written) yield* afterRecorded(a).pipe(Effect.catchAllCause((cause) => Effect.logError("could not act on a delivery's outcome", cause)))
    })

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
      const sendingNow = targets.sending()
      for (const [name, r] of ready) {
        if (sendingNow.some((t) => t.name === name)) continue
        // claimed ahead for a target deleted since: each is sent, finds its target gone, and stays the dead letter the deletion made it
        ready.delete(name)
        for (const d of r.queue) yield* start(r.target, d)
      }
      for (const target of sendingNow) {
        if (!target.enabled) {
          yield* giveBack(target.name)
          continue
        }
        const state = stateOf(target.name)
        if (target.name === ADHOC_TARGET) {
          // claimed when woken for (a callback's push added, one of its slots freed, a redrive)
          // and at every poll (a retry come due, another process's redrive), not at every push
          if (!targets.takeAdhocWoken()) continue
          // due as of the wake just taken, not of this look's start: a push written (and woken
          // for) while the look claimed for other targets is due after `now`, and would wait for the poll
          const woken = yield* Clock.currentTimeMillis
          // callbacks' own deliveries yield to a burst of pushes in part (BURST_SHARE), where targets' wait whole
          const free = (holding() ? ADHOC_IN_FLIGHT / BURST_SHARE : ADHOC_IN_FLIGHT) - state.inFlight
          if (free <= 0) continue
          for (const d of yield* claim(target, free, woken, () => admitByOrigin(target, woken))) {
            sending.add(d.id)
            yield* start(target, d)
          }
          continue
        }
        let r = ready.get(target.name)
        if (!r) ready.set(target.name, (r = { target, queue: [] }))
        r.target = target
        let free = capacity(state.circuit, now, slots(target), state.inFlight)
        for (; free > 0 && r.queue.length > 0; free--) yield* start(target, r.queue.shift()!)
        const ahead = target.rateLimit || circuitState(state.circuit, now) !== "closed" ? 0 : slots(target)
        if (ahead === 0) yield* giveBack(target.name)
        // topped up once half is gone: claims come in batches, not one per answer
        const want = free + (r.queue.length <= ahead / 2 ? ahead - r.queue.length : 0)
        if (want <= 0) continue
        for (const d of yield* claim(target, want, now)) {
          sending.add(d.id)
          // slots may have freed while the claim was committed
          if (!stopping && capacity(state.circuit, Date.now(), slots(target), state.inFlight) > 0) yield* start(target, d)
          else r.queue.push(d)
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
          lanes.prune(lastSweep)
        }
        if (Date.now() - lastLeaseSweep >= LEASE_SWEEP_MS) {
          lastLeaseSweep = Date.now()
          yield* sweepLeases
        }
        yield* pump.pipe(Effect.catchAllCause((cause) => health.failed("claim", "could not claim deliveries", cause)))
        // during a burst, the next look waits for the pushes' next batch to commit rather than
        // looking at every push's wake: the targets send nothing then, and `$adhoc` its share
        // (when targets still sent a quarter, unpaced looks sent a fifth to a third more
        // meanwhile, and ingest with a target fell from 0.78 to 0.75 of express)
        if (holding()) yield* commit.nextCommit
        yield* targets.wakeups.take
      }
    })
    yield* Effect.forkScoped(loop)
    // the poll: every target woken every interval, so the loop waits on the one queue (racing a
    // sleep at every wait, hundreds of times a second under a burst, cost a fiber and a timer each)
    yield* Effect.forkScoped(Effect.forever(Effect.zipRight(Effect.sleep(Duration.millis(pollIntervalMs)), targets.wake)))
    // an operator sees how long deliveries were held back for bursts, graphed against time (a
    // load of many short bursts would be a log line every few hundred ms: the log says only when
    // a burst ran so long that deliveries went again alongside it)
    const { holdDuringBursts } = config.forwarding
    new prom.Counter({
      name: "bridge_delivery_held_for_bursts_seconds_total",
      help: "Time deliveries to targets were held back (whether or not any waited) while pushes arrived in a burst, acknowledged first",
      registers: [registry],
      collect() {
        this.reset()
        if (holdDuringBursts) this.inc(commit.heldForBurstsMs() / 1000)
      }
    })
    // what a burst held goes when it is over, not at the next poll
    if (holdDuringBursts)
      yield* Effect.forkScoped(
        Effect.forever(
          Effect.gen(function* () {
            const { heldMs, cut } = yield* commit.burstOver
            yield* targets.wake
            if (cut) yield* Effect.logInfo("pushes kept arriving in a burst: deliveries go again alongside them").pipe(Effect.annotateLogs({ heldMs }))
            else yield* Effect.logDebug("a burst of pushes is over: the deliveries it held go now").pipe(Effect.annotateLogs({ heldMs }))
          })
        )
      )
    // forked before the finalizer below is added: it runs (writing what plain deliveries came to) until that is done
    yield* Effect.forkScoped(Effect.forever(writeRecorded))
    yield* Effect.addFinalizer(() =>
      Effect.gen(function* () {
        stopping = true
        for (const name of ready.keys()) yield* giveBack(name).pipe(Effect.ignoreLogged)
        const until = Date.now() + SHUTDOWN_GRACE_MS
        // sends in flight, and outcomes still being written
        while ((lanes.anyInFlight() || sending.size > 0) && Date.now() < until) yield* Effect.sleep(Duration.millis(20))
        // not answered in time: in flight in the store, due again at the next start
        for (const sent of plainInFlight) sent.cancel()
      })
    )
    return { current: health.current }
  })
)
