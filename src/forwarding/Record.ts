/**
 * Writing down what came of an attempt: the attempt itself, the delivery's next state, and the
 * operational events (exhausted, target failing, target recovered), in one short transaction
 * through the group commit (under load many outcomes, and pushes, share one commit).
 */
import type { EventType } from "../events/EventTypes.js"
import { Effect, Exit } from "effect"
import { GroupCommit } from "../db/GroupCommit.js"
import { type Prepared, Sqlite } from "../db/Sqlite.js"
import { HELD, holdsOrder, Outbox } from "../events/Outbox.js"
import { Metrics } from "../http/Metrics.js"
import type { Sent } from "./Attempt.js"
import type { Claimed } from "./Claims.js"
import { type NextState, recordRetry } from "./Decisions.js"
import type { StoredEvent } from "../events/Outbox.js"
import type { Health } from "./Health.js"
import type { Target } from "./Target.js"

// attempts are numbered over the delivery's whole life: a redrive restarts the schedule, not the history
const INSERT_ATTEMPT = `INSERT INTO attempts (delivery_id, n, started_at, status, latency_ms, error, response)
  SELECT ?, coalesce(max(n), 0) + 1, ?, ?, ?, ?, ? FROM attempts WHERE delivery_id = ?`
// only a delivery still in flight takes the outcome: one dead-lettered under its send (target deleted) stays dead
const MARK_DELIVERED = `UPDATE deliveries SET status = 'delivered', attempts = ?, lock_expires_at = NULL, last_error = NULL, updated_at = ? WHERE id = ? AND status = 'in_flight'`
const MARK_RETRY = `UPDATE deliveries SET status = 'pending', attempts = ?, next_attempt_at = ?, lock_expires_at = NULL, last_error = ?, updated_at = ? WHERE id = ? AND status = 'in_flight'`
const MARK_DEAD = `UPDATE deliveries SET status = 'dead', attempts = ?, lock_expires_at = NULL, last_error = ?, dead_reason = ?, updated_at = ? WHERE id = ? AND status = 'in_flight'`
const MARK_EVENT_MISSING = `UPDATE deliveries SET status = 'dead', dead_reason = 'event missing' WHERE id = ?`
const MARK_TARGET_GONE = `UPDATE deliveries SET status = 'dead', dead_reason = 'target deleted', lock_expires_at = NULL, updated_at = ? WHERE id = ? AND status = 'in_flight'`
const RELEASE_LATER = `UPDATE deliveries SET status = 'pending', next_attempt_at = ? WHERE id = ? AND status = 'in_flight'`
const REMEMBER_FAILING = `INSERT OR REPLACE INTO failing_targets (target, since, failures) VALUES (?, ?, ?)`
const FORGET_FAILING = `DELETE FROM failing_targets WHERE target = ?`
// the call's later deliveries wait behind this dead letter, out of the due range (see HELD)
const HOLD_LATER = `UPDATE deliveries SET next_attempt_at = ? WHERE target = ? AND order_key = ? AND id > ?
  AND ${holdsOrder()} AND status = 'pending'`

export interface Attempted {
  readonly target: Target
  readonly delivery: Claimed
  readonly event: StoredEvent
  readonly outcome: Sent
  readonly startedAt: number
  readonly latencyMs: number
  /** the delivery's `attempts` after this one */
  readonly n: number
  readonly next: NextState
  /** what this outcome did to the target's circuit, and its failures since */
  readonly circuit: { readonly opened: boolean; readonly recovered: boolean; readonly failures: number; readonly openUntil: number; readonly origin?: string | undefined }
}

type Emit = (prepared: Prepared, event: Parameters<Outbox["emitIn"]>[1]) => unknown

/**
 * The attempt's rows, on the caller's connection inside its transaction. May run twice (group
 * commit): everything it writes is decided before it.
 */
const writeOutcome = (prepared: Prepared, emitIn: Emit, a: Attempted, now: number) => {
  const { target, delivery: d, event, outcome, n, next, circuit } = a
  const error = outcome.kind === "delivered" ? null : outcome.error
  const status = "status" in outcome ? outcome.status : null
  // a circuit of one URL origin (a delivery with its own URL) is not the target's: said so, not kept over a restart
  const origin = circuit.origin
  const operational = (type: EventType, data: Record<string, unknown>) =>
    emitIn(prepared, { type, enterprise: null, source: "forwarding", aboutTarget: target.name, data: { target: target.name, ...(origin === undefined ? {} : { origin }), ...data } })
  prepared(INSERT_ATTEMPT).run(d.id, a.startedAt, status, a.latencyMs, error, outcome.excerpt, d.id)
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
    operational("delivery.exhausted", { deliveryId: d.id, eventId: event.id, eventType: event.type, attempts: n, reason, lastError: error })
  }
  if (circuit.recovered) {
    if (origin === undefined) prepared(FORGET_FAILING).run(target.name)
    operational("target.recovered", { after: circuit.failures })
  }
  if (circuit.opened) {
    if (origin === undefined) prepared(REMEMBER_FAILING).run(target.name, now, circuit.failures)
    operational("target.failing", { failures: circuit.failures, lastError: error })
  }
}

/** What metrics count of an attempt recorded: the retry that exhausts the schedule is counted as what it made, a dead letter (a refusal stays a refusal). */
const counted = (metrics: Metrics, a: Attempted) =>
  metrics.deliveries.inc({ target: a.target.name, outcome: a.outcome.kind === "retry" && a.next.status === "dead" ? "dead" : a.outcome.kind })

/**
 * Records an attempt; while storage is unavailable, tries again (Decisions.recordRetry), the
 * worker degraded meanwhile. Given up, the delivery stays in flight for the lease sweep.
 */
export const recordAttempt = (a: Attempted, health: Health) =>
  Effect.gen(function* () {
    const commit = yield* GroupCommit
    const outbox = yield* Outbox
    const metrics = yield* Metrics
    const now = Date.now()
    const key = `outcome ${a.delivery.id}`
    // It resumes at the commit, not the disk's flush: only a power loss (not a crashed process:
    // the WAL is in the kernel's hands) can undo it, and then the delivery is in flight again and
    // sent again, in its call's order, with the same webhook-id — at least once, as any crash
    // between send and record
    yield* commit.submit((_, prepared) => writeOutcome(prepared, outbox.emitIn, a, now), { durable: false }).pipe(
      Effect.tapErrorCause((cause) => health.failed(key, "the outcome of a delivery could not be recorded", cause)),
      Effect.retry(recordRetry),
      Effect.onExit((exit) => (Exit.isSuccess(exit) ? health.worked(key) : health.handToSweep(key)))
    )
    counted(metrics, a)
  })

/**
 * Records many attempts in one write (the worker's plain deliveries, gathered while the last
 * write was committed). One that fails makes each be recorded on its own, as `recordAttempt`
 * does: a write one outcome cannot make fails only that one. Answers those recorded.
 */
export const recordAttempts = (all: ReadonlyArray<Attempted>, health: Health) =>
  Effect.gen(function* () {
    const commit = yield* GroupCommit
    const outbox = yield* Outbox
    const metrics = yield* Metrics
    const now = Date.now()
    const written = yield* commit.submit((_, prepared) => {
      for (const a of all) writeOutcome(prepared, outbox.emitIn, a, now)
    }, { durable: false }).pipe(Effect.either)
    if (written._tag === "Right") {
      for (const a of all) counted(metrics, a)
      return all
    }
    const each = yield* Effect.forEach(
      all,
      (a) =>
        recordAttempt(a, health).pipe(
          Effect.as([a]),
          // given up: the lease sweep makes it due again (the worker forgets it was sending it)
          Effect.catchAllCause((cause) => Effect.as(Effect.logError("the outcome of a delivery could not be recorded; it is due again once its lease ends", cause), []))
        ),
      { concurrency: "unbounded" }
    )
    return each.flat()
  })

const exclusive = (statement: string, ...params: ReadonlyArray<number>) =>
  Effect.flatMap(Sqlite, (sqlite) => sqlite.exclusive((_, prepared) => void prepared(statement).run(...params)))

/** The delivery's event was deleted under it: nothing to send, ever. */
export const markEventMissing = (id: number) => exclusive(MARK_EVENT_MISSING, id)

/** The delivery's target was deleted under it: it stays the dead letter the deletion made it. */
export const markTargetGone = (id: number) => exclusive(MARK_TARGET_GONE, Date.now(), id)

/** Something unforeseen went wrong with the delivery: due again at `at`. */
export const releaseLater = (id: number, at: number) => exclusive(RELEASE_LATER, at, id)
