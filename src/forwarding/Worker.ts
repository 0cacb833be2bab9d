/**
 * The delivery worker: a background fiber of the app's layers. It claims due deliveries
 * target by target (never more than a target's concurrency, none while its circuit is open,
 * one probe when the cool-down is over, a call's deliveries one after another), sends each
 * outside any transaction, and records the attempt and the delivery's next state in a short
 * one. Woken by every emit, and polling besides. Deliveries left in flight by a crash are
 * due again at start; on shutdown, sends in flight get a moment to finish.
 *
 * Storage that fails (disk full, the database locked too long) does not stop it: a claim is
 * tried again at the next poll, an outcome is written again with backoff until the
 * delivery's lease (`lock_expires_at`) ends, and a delivery whose lease ended and that this
 * process is not sending any more is due again (the lease sweep). Meanwhile the worker says
 * it is degraded, in the log and in /readyz.
 */
import { SqlClient } from "@effect/sql"
import { Cause, Clock, Context, Duration, Effect, Exit, FiberSet, Layer } from "effect"
import { Webhook } from "standardwebhooks"
import { AppConfig } from "../config/AppConfig.js"
import { GroupCommit } from "../db/GroupCommit.js"
import { type Prepared, Sqlite } from "../db/Sqlite.js"
import { HELD, holdsOrder, Outbox } from "../events/Outbox.js"
import { Metrics } from "../http/Metrics.js"
import { render, type StoredEvent, TransformFailed } from "./Formats.js"
import { DeadLetters } from "./DeadLetters.js"
import {
  capacity,
  type Circuit,
  circuitAfter,
  CLOSED,
  nextState,
  type Outcome,
  outcomeOfAnswer,
  outcomeOfNoAnswer,
  rateSlot,
  RECORD_WINDOW_MS,
  reclaimable,
  recordRetry
} from "./Decisions.js"
import { post } from "./Send.js"
import type { Target } from "./Target.js"
import { Targets } from "./Targets.js"

interface Claimed {
  readonly id: number
  readonly event_id: number
  readonly attempts: number
  readonly webhook_id: string
  readonly order_key: string | null
  /** null when the event is gone (deleted under the delivery) */
  readonly event: StoredEvent | null
}

interface DueRow {
  readonly id: number
  readonly event_id: number
  readonly attempts: number
  readonly webhook_id: string
  readonly order_key: string | null
  readonly e_id: number | null
  readonly e_type: string
  readonly e_occurred_at: number
  readonly e_enterprise: string | null
  readonly e_source: string
  readonly e_data: string
  readonly e_raw: string | null
}

const claimedOf = (r: DueRow): Claimed => ({
  id: r.id,
  event_id: r.event_id,
  attempts: r.attempts,
  webhook_id: r.webhook_id,
  order_key: r.order_key,
  event:
    r.e_id === null
      ? null
      : { id: r.e_id, type: r.e_type, occurred_at: r.e_occurred_at, enterprise: r.e_enterprise, source: r.e_source, data: r.e_data, raw: r.e_raw }
})

interface TargetState {
  inFlight: number
  circuit: Circuit
  nextSendAt: number
}

// with the event itself: one statement per claim rather than one more per delivery
const SELECT_DUE = `SELECT d.id, d.event_id, d.attempts, d.webhook_id, d.order_key,
    e.id AS e_id, e.type AS e_type, e.occurred_at AS e_occurred_at, e.enterprise AS e_enterprise, e.source AS e_source, e.data AS e_data, e.raw AS e_raw
  FROM deliveries d LEFT JOIN events e ON e.id = d.event_id
  WHERE d.target = ? AND d.status = 'pending' AND d.next_attempt_at <= ?
    AND (d.order_key IS NULL OR NOT EXISTS (
      SELECT 1 FROM deliveries p WHERE p.target = d.target AND p.order_key = d.order_key AND p.id < d.id
        AND ${holdsOrder("p")}))
  ORDER BY d.next_attempt_at, d.id LIMIT ?`
const MARK_IN_FLIGHT = `UPDATE deliveries SET status = 'in_flight', lock_expires_at = ? WHERE id = ?`
const MARK_EVENT_MISSING = `UPDATE deliveries SET status = 'dead', dead_reason = 'event missing' WHERE id = ?`
// attempts are numbered over the delivery's whole life: a redrive restarts the schedule, not the history
const INSERT_ATTEMPT = `INSERT INTO attempts (delivery_id, n, started_at, status, latency_ms, error, response)
  SELECT ?, coalesce(max(n), 0) + 1, ?, ?, ?, ?, ? FROM attempts WHERE delivery_id = ?`
// only a delivery still in flight takes the outcome: one dead-lettered under its send (target deleted) stays dead
const MARK_DELIVERED = `UPDATE deliveries SET status = 'delivered', attempts = ?, lock_expires_at = NULL, last_error = NULL, updated_at = ? WHERE id = ? AND status = 'in_flight'`
const MARK_RETRY = `UPDATE deliveries SET status = 'pending', attempts = ?, next_attempt_at = ?, lock_expires_at = NULL, last_error = ?, updated_at = ? WHERE id = ? AND status = 'in_flight'`
const MARK_DEAD = `UPDATE deliveries SET status = 'dead', attempts = ?, lock_expires_at = NULL, last_error = ?, dead_reason = ?, updated_at = ? WHERE id = ? AND status = 'in_flight'`
const MARK_TARGET_GONE = `UPDATE deliveries SET status = 'dead', dead_reason = 'target deleted', lock_expires_at = NULL, updated_at = ? WHERE id = ? AND status = 'in_flight'`
const REMEMBER_FAILING = `INSERT OR REPLACE INTO failing_targets (target, since, failures) VALUES (?, ?, ?)`
const FORGET_FAILING = `DELETE FROM failing_targets WHERE target = ?`
// the call's later deliveries wait behind this dead letter, out of the due range (see HELD)
const HOLD_LATER = `UPDATE deliveries SET next_attempt_at = ? WHERE target = ? AND order_key = ? AND id > ?
  AND ${holdsOrder()} AND status = 'pending'`
const RELEASE_LATER = `UPDATE deliveries SET status = 'pending', next_attempt_at = ? WHERE id = ? AND status = 'in_flight'`
// deliveries_status's range (status = 'in_flight') holds only what is in flight: a handful of rows
const IN_FLIGHT = `SELECT id, lock_expires_at AS lockExpiresAt FROM deliveries WHERE status = 'in_flight'`
const RECLAIM = `UPDATE deliveries SET status = 'pending', lock_expires_at = NULL, updated_at = ?
  WHERE id IN (SELECT value FROM json_each(?)) AND status = 'in_flight'`

const EXCERPT = 2048
const HELD_SWEEP_MS = 60_000
const SHUTDOWN_GRACE_MS = 5_000
const UNEXPECTED_RETRY_MS = 30_000
/** how often deliveries whose lease ended are looked for */
const LEASE_SWEEP_MS = 1_000

export type WorkerStatus =
  | { readonly status: "ok" }
  | { readonly status: "degraded"; readonly lastError: string; readonly since: number; readonly failures: number }

/** The delivery worker's health, read by /readyz: degraded while its writes fail. */
export class WorkerHealth extends Context.Tag("WorkerHealth")<WorkerHealth, { readonly current: () => WorkerStatus }>() {}

const messageOf = (cause: Cause.Cause<unknown>) => {
  const e = Cause.squash(cause)
  const inner = e instanceof Error && "cause" in e && e.cause instanceof Error ? e.cause : e
  return inner instanceof Error ? inner.message : String(inner)
}

/** Anything thrown while the request is made (a stored event that does not parse, a key that does not sign) can only fail again. */
const unsendable = (what: string) => (defect: unknown) =>
  Effect.fail(new TransformFailed({ message: `${what}: ${defect instanceof Error ? defect.message : String(defect)}`, reason: "unsendable" }))

type Sent = Outcome & { readonly excerpt: string }

const send = (target: Target, event: StoredEvent, webhookId: string): Effect.Effect<Sent> =>
  Effect.gen(function* () {
    const request = yield* Effect.suspend(() => render(target, event)).pipe(Effect.catchAllDefect(unsendable("the request could not be made")))
    const now = yield* Clock.currentTimeMillis
    const own = Object.keys(target.headers).map((h) => h.toLowerCase())
    const headers: Record<string, string> = {
      ...(own.includes("content-type") ? {} : { "content-type": request.contentType }),
      ...(own.includes("user-agent") ? {} : { "user-agent": "voip-bridge" }),
      ...target.headers,
      "webhook-id": webhookId
    }
    if (target.secret) {
      const secret = target.secret
      headers["webhook-timestamp"] = String(Math.floor(now / 1000))
      headers["webhook-signature"] = yield* Effect.try({ try: () => new Webhook(secret).sign(webhookId, new Date(now), request.body), catch: (e) => e }).pipe(
        Effect.catchAll(unsendable("the request could not be signed"))
      )
    }
    const url = request.query ? `${target.url}${target.url.includes("?") ? "&" : "?"}${request.query}` : target.url
    const { status, retryAfter, excerpt } = yield* post(url, headers, request.body, { timeoutMs: target.timeoutMs, excerptBytes: EXCERPT })
    return { ...outcomeOfAnswer(status, retryAfter, Date.now()), excerpt }
  }).pipe(
    Effect.catchTags({
      SendFailed: (e) => Effect.succeed<Sent>({ ...outcomeOfNoAnswer(e), excerpt: "" }),
      TransformFailed: (e) => Effect.succeed<Sent>({ kind: "unsendable", reason: e.reason, error: e.message, excerpt: "" })
    })
  )

export const workerLayer = Layer.scoped(
  WorkerHealth,
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const sqlite = yield* Sqlite
    const config = yield* AppConfig
    const targets = yield* Targets
    const outbox = yield* Outbox
    const metrics = yield* Metrics
    const commit = yield* GroupCommit
    const deadLetters = yield* DeadLetters
    const { circuitThreshold, circuitCooldownMs, pollIntervalMs } = config.forwarding
    const circuitPolicy = { threshold: circuitThreshold, cooldownMs: circuitCooldownMs }
    const states = new Map<string, TargetState>()
    const stateOf = (name: string) => {
      let s = states.get(name)
      if (!s) states.set(name, (s = { inFlight: 0, circuit: CLOSED, nextSendAt: 0 }))
      return s
    }
    const sends = yield* FiberSet.make()
    let stopping = false
    /** deliveries this process claimed and is still sending or recording: never reclaimed under it */
    const sending = new Set<number>()

    /** the worker's writes that failed and have not worked since, by what they are (a claim, the sweep, an outcome) */
    const failing = new Map<string, { readonly since: number; readonly lastError: string; readonly at: number; readonly failures: number }>()
    const health = (): WorkerStatus => {
      if (failing.size === 0) return { status: "ok" }
      const all = [...failing.values()]
      const latest = all.reduce((a, b) => (b.at > a.at ? b : a))
      return { status: "degraded", lastError: latest.lastError, since: Math.min(...all.map((f) => f.since)), failures: all.reduce((n, f) => n + f.failures, 0) }
    }
    const writeFailed = (key: string, what: string, cause: Cause.Cause<unknown>) =>
      Effect.suspend(() => {
        const entering = failing.size === 0
        const before = failing.get(key)
        const now = Date.now()
        failing.set(key, { since: before?.since ?? now, lastError: messageOf(cause), at: now, failures: (before?.failures ?? 0) + 1 })
        const { failures, lastError } = health() as Extract<WorkerStatus, { status: "degraded" }>
        const log = entering ? Effect.logError(`delivery worker: ${what}; degraded until storage works again`, cause) : Effect.logWarning(`delivery worker: ${what}`)
        return log.pipe(Effect.annotateLogs({ failures, lastError }))
      })
    const writeWorked = (key: string) =>
      Effect.suspend(() => {
        const was = health()
        if (!failing.delete(key) || failing.size > 0 || was.status === "ok") return Effect.void
        return Effect.logInfo("delivery worker: storage works again").pipe(Effect.annotateLogs({ failures: was.failures }))
      })
    /** an outcome given up at the end of its lease is the lease sweep's to write: its failure is, too */
    const handToSweep = (key: string) =>
      Effect.sync(() => {
        const given = failing.get(key)
        if (!given || !failing.delete(key)) return
        const sweep = failing.get("sweep")
        failing.set("sweep", sweep ? { ...sweep, since: Math.min(sweep.since, given.since), failures: sweep.failures + given.failures } : given)
      })

    // a single process: whatever was in flight when it last stopped was not finished
    yield* sql`UPDATE deliveries SET status = 'pending', lock_expires_at = NULL WHERE status = 'in_flight'`
    const known = JSON.stringify(targets.snapshot().map((t) => t.name))
    // circuits open when the bridge stopped are open again, their cool-down over: a probe goes first
    // (a target gone since has nothing to recover: a later one of that name starts afresh)
    yield* sql`DELETE FROM failing_targets WHERE target NOT IN (SELECT value FROM json_each(${known}))`
    for (const f of yield* sql<{ target: string; failures: number }>`SELECT target, failures FROM failing_targets`) {
      stateOf(f.target).circuit = { failures: f.failures, openUntil: Date.now() }
    }
    // a target gone while the bridge was down (taken out of the config file): what waited for it
    // becomes dead letters — visible, redrivable once it is back — rather than waiting unseen
    const orphaned = yield* sql<{ id: number }>`UPDATE deliveries SET status = 'dead', dead_reason = 'target deleted', updated_at = ${Date.now()}
      WHERE status = 'pending' AND target NOT IN (SELECT value FROM json_each(${known})) RETURNING id`
    if (orphaned.length > 0) yield* Effect.logWarning("deliveries of targets that no longer exist are dead letters now").pipe(Effect.annotateLogs({ count: orphaned.length }))

    const operational = (prepared: Prepared, type: string, target: Target, data: Record<string, unknown>) =>
      outbox.emitIn(prepared, { type, enterprise: null, source: "forwarding", aboutTarget: target.name, data: { target: target.name, ...data } })

    const record = (target: Target, d: Claimed, event: StoredEvent, outcome: Sent, startedAt: number, latency: number) =>
      Effect.gen(function* () {
        const now = Date.now()
        const n = d.attempts + 1
        const state = stateOf(target.name)
        const error = outcome.kind === "delivered" ? null : outcome.error
        const status = "status" in outcome ? outcome.status : null
        // the circuit, decided before the write (a write may run twice)
        const { circuit, opened, recovered } = circuitAfter(state.circuit, outcome.kind, now, circuitPolicy)
        state.circuit = circuit
        const failures = circuit.failures
        const next = nextState(outcome, n, target.retry.scheduleMs, now)
        // recorded through the group commit: under load, many outcomes (and pushes) share one commit;
        // tried again while storage fails, as long as the delivery is still ours (its lease)
        yield* commit.submit((_, prepared) => {
          prepared(INSERT_ATTEMPT).run(d.id, startedAt, status, latency, error, outcome.excerpt, d.id)
          // a delivery no longer in flight was dead-lettered under the send (its target deleted): it
          // stays so, and says nothing more about the target's health
          if (next.status === "delivered") {
            if (prepared(MARK_DELIVERED).run(n, now, d.id).changes === 0) return
          } else if (next.status === "pending") {
            if (prepared(MARK_RETRY).run(n, next.at, error, now, d.id).changes === 0) return
          } else {
            const reason = next.reason
            if (prepared(MARK_DEAD).run(n, error, reason, now, d.id).changes === 0) return
            if (reason === "exhausted" && d.order_key !== null) prepared(HOLD_LATER).run(HELD, target.name, d.order_key, d.id)
            operational(prepared, "delivery.exhausted", target, { deliveryId: d.id, eventId: event.id, eventType: event.type, attempts: n, reason, lastError: error })
          }
          if (recovered) {
            prepared(FORGET_FAILING).run(target.name)
            operational(prepared, "target.recovered", target, { after: failures })
          }
          if (opened) {
            prepared(REMEMBER_FAILING).run(target.name, now, failures)
            operational(prepared, "target.failing", target, { failures, lastError: error })
          }
        }).pipe(
          Effect.tapErrorCause((cause) => writeFailed(`outcome ${d.id}`, "the outcome of a delivery could not be recorded", cause)),
          Effect.retry(recordRetry),
          Effect.onExit((exit) => (Exit.isSuccess(exit) ? writeWorked(`outcome ${d.id}`) : handToSweep(`outcome ${d.id}`)))
        )
        metrics.deliveries.inc({ target: target.name, outcome: outcome.kind })
        if (opened && target.autoDisable) {
          yield* targets.save({ ...target, enabled: false }, "api")
          yield* Effect.logWarning("target disabled: its circuit opened and autoDisable is set").pipe(Effect.annotateLogs({ target: target.name }))
        }
      })

    const deliver = (target: Target, d: Claimed) =>
      Effect.gen(function* () {
        const state = stateOf(target.name)
        const event = d.event
        if (!event) return yield* sqlite.exclusive((_, prepared) => prepared(MARK_EVENT_MISSING).run(d.id))
        // the target as it is now: an edit applies to deliveries already waiting; a deleted one
        // sends nothing more (its deliveries were dead-lettered with it)
        const current = yield* targets.get(target.name)
        if (!current) return yield* sqlite.exclusive((_, prepared) => prepared(MARK_TARGET_GONE).run(Date.now(), d.id))
        if (current.rateLimit) {
          const { waitMs, nextSendAt } = rateSlot(state.nextSendAt, yield* Clock.currentTimeMillis, current.rateLimit)
          state.nextSendAt = nextSendAt
          if (waitMs > 0) yield* Effect.sleep(Duration.millis(waitMs))
        }
        const startedAt = Date.now()
        const outcome = yield* send(current, event, d.webhook_id)
        const latency = Date.now() - startedAt
        yield* record(current, d, event, outcome, startedAt, latency)
      }).pipe(
        Effect.catchAllCause((cause) =>
          Effect.zipRight(
            Effect.logError("delivery failed unexpectedly; it is tried again later", cause),
            sqlite.exclusive((_, prepared) => prepared(RELEASE_LATER).run(Date.now() + UNEXPECTED_RETRY_MS, d.id)).pipe(Effect.ignoreLogged)
          )
        ),
        // a freed slot may let the next delivery of this target (or of this call) go: look again at once
        Effect.ensuring(
          Effect.zipRight(
            Effect.sync(() => {
              stateOf(target.name).inFlight--
              sending.delete(d.id)
            }),
            targets.wake
          )
        ),
        Effect.annotateLogs({ target: target.name, delivery: d.id })
      )

    const claim = (target: Target, capacity: number, now: number) =>
      commit.submit((_, prepared) => {
        const lockUntil = now + target.timeoutMs + RECORD_WINDOW_MS
        const due = (prepared(SELECT_DUE).all(target.name, now, capacity) as ReadonlyArray<DueRow>).map(claimedOf)
        for (const d of due) prepared(MARK_IN_FLIGHT).run(lockUntil, d.id)
        return due
      })

    const pump = Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      for (const target of targets.snapshot()) {
        if (!target.enabled) continue
        const state = stateOf(target.name)
        const free = capacity(state.circuit, now, target.concurrency, state.inFlight)
        if (free <= 0) continue
        const claimed = yield* claim(target, free, now)
        for (const d of claimed) {
          sending.add(d.id)
          state.inFlight++
          yield* FiberSet.run(sends, deliver(target, d))
        }
      }
      // every claim this pump tried worked, or there was none to try (every target disabled,
      // deleted, cooling down or busy): a claim that failed before fails no more
      yield* writeWorked("claim")
    })

    // deliveries held behind a dead letter that is gone (a redrive or purge stopped short: a
    // crash, Ctrl-C of the CLI) are released at start and then every minute
    const sweepHeld = Effect.suspend(() => deadLetters.releaseHeld(targets.snapshot().map((t) => t.name))).pipe(
      Effect.catchAllCause((cause) => Effect.logError("could not release held deliveries", cause))
    )
    yield* sweepHeld
    let lastSweep = Date.now()

    // a delivery whose outcome could not be recorded within its lease (storage failing all that
    // time) is left in flight: once the lease is over, and this process is not at it, it is due again
    const sweepLeases = Effect.gen(function* () {
      const now = Date.now()
      // looked for first: the write (and its lock) only when there is something to reclaim
      const inFlight = yield* sqlite.exclusive((_, prepared) => prepared(IN_FLIGHT).all() as ReadonlyArray<{ id: number; lockExpiresAt: number | null }>)
      const expired = inFlight.filter((d) => reclaimable(d, now, sending))
      if (expired.length > 0) {
        const ids = JSON.stringify(expired.map((r) => r.id))
        const reclaimed = yield* sqlite.exclusive((_, prepared) => prepared(RECLAIM).run(now, ids).changes)
        yield* Effect.logWarning("deliveries whose lease ended in flight are due again").pipe(Effect.annotateLogs({ count: reclaimed }))
      }
      yield* writeWorked("sweep")
    }).pipe(Effect.catchAllCause((cause) => writeFailed("sweep", "could not reclaim deliveries whose lease ended", cause)))
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
        yield* pump.pipe(Effect.catchAllCause((cause) => writeFailed("claim", "could not claim deliveries", cause)))
        yield* Effect.raceFirst(targets.wakeups.take, Effect.sleep(Duration.millis(pollIntervalMs)))
      }
    })
    yield* Effect.forkScoped(loop)
    yield* Effect.addFinalizer(() =>
      Effect.gen(function* () {
        stopping = true
        const until = Date.now() + SHUTDOWN_GRACE_MS
        while ([...states.values()].some((s) => s.inFlight > 0) && Date.now() < until) yield* Effect.sleep(Duration.millis(20))
      })
    )
    return { current: health }
  })
)
