/**
 * The delivery worker's decisions, as plain functions of what happened and when: what an
 * answer means for a delivery, when it is tried again, what it does to its target's circuit,
 * which deliveries left in flight are due again, how long an outcome that cannot be written
 * is tried again. No I/O here: the worker's effectful parts (Claims, Attempt, Record, Worker)
 * act on what these answer.
 */
import type { SqlError } from "@effect/sql/SqlError"
import { Duration, Schedule } from "effect"
import { isStorageUnavailable } from "../shared/Sql.js"

// ---- an attempt's outcome

export type Outcome =
  | { readonly kind: "delivered"; readonly status: number }
  | { readonly kind: "retry"; readonly status: number | null; readonly error: string; readonly retryAfterMs: number | null }
  | { readonly kind: "refused"; readonly status: number; readonly error: string }
  | { readonly kind: "unsendable"; readonly reason: "transform" | "unsendable" | "auth"; readonly error: string }
  /** nothing to send for this event (a template's setting leaves it out): done, without a request */
  | { readonly kind: "skipped"; readonly error: string }

/** A Retry-After header (seconds, or an HTTP date) as a delay from `now`; null when absent or unreadable. */
export const retryAfterMs = (header: string | null, now: number): number | null => {
  if (!header) return null
  if (/^\d+$/.test(header.trim())) return Number(header) * 1000
  const at = Date.parse(header)
  return Number.isNaN(at) ? null : Math.max(0, at - now)
}

/**
 * What the receiver's answer means: 2xx delivered; 408, 429, 5xx and 3xx (redirects are not
 * followed) worth another try, after its Retry-After if it gives one; any other refused, for
 * good (the same event would be refused again).
 */
export const outcomeOfAnswer = (status: number, retryAfter: string | null, now: number): Outcome => {
  if (status >= 200 && status < 300) return { kind: "delivered", status }
  if (status === 408 || status === 429 || status >= 500 || (status >= 300 && status < 400))
    return { kind: "retry", status, error: `HTTP ${status}`, retryAfterMs: retryAfterMs(retryAfter, now) }
  return { kind: "refused", status, error: `HTTP ${status}: refused by the receiver` }
}

/** No answer (DNS, connection, time-out): the target may be back later, unless Node refused the request itself. */
export const outcomeOfNoAnswer = (failure: { readonly message: string; readonly permanent: boolean }): Outcome =>
  failure.permanent
    ? { kind: "unsendable", reason: "unsendable", error: failure.message }
    : { kind: "retry", status: null, error: failure.message, retryAfterMs: null }

// ---- the delivery's next state

/** The delay before the next attempt: the schedule's, ±20 %, or the receiver's Retry-After kept between it and twice it. */
export const nextDelay = (scheduled: number, retryAfter: number | null, random = Math.random()) => {
  const jittered = Math.round(scheduled * (0.8 + 0.4 * random))
  return retryAfter === null ? jittered : Math.min(Math.max(retryAfter, scheduled), 2 * scheduled)
}

export type DeadReason = "refused" | "transform" | "unsendable" | "auth" | "exhausted"

export type NextState =
  | { readonly status: "delivered" }
  | { readonly status: "pending"; readonly at: number }
  | { readonly status: "dead"; readonly reason: DeadReason }

/**
 * Where a delivery goes after its `n`th attempt (counted from 1 since its last redrive): a
 * retry is due after the schedule's `n`th delay; past the schedule's end it is exhausted.
 */
export const nextState = (outcome: Outcome, n: number, scheduleMs: ReadonlyArray<number>, now: number, random = Math.random()): NextState => {
  switch (outcome.kind) {
    case "delivered":
    case "skipped":
      return { status: "delivered" }
    case "retry":
      return n < scheduleMs.length ? { status: "pending", at: now + nextDelay(scheduleMs[n]!, outcome.retryAfterMs, random) } : { status: "dead", reason: "exhausted" }
    case "refused":
      return { status: "dead", reason: "refused" }
    case "unsendable":
      return { status: "dead", reason: outcome.reason }
  }
}

// ---- a target's circuit

/** A target's circuit: its consecutive failures, and until when it is open (0: closed). */
export interface Circuit {
  readonly failures: number
  readonly openUntil: number
}

export const CLOSED: Circuit = { failures: 0, openUntil: 0 }

export interface CircuitPolicy {
  /** consecutive failures that open it */
  readonly threshold: number
  /** how long it stays open before one probe */
  readonly cooldownMs: number
}

/** Open: nothing is sent; half-open (its cool-down over): one probe at a time. */
export const circuitState = (c: Circuit, now: number): "closed" | "open" | "half-open" =>
  c.openUntil === 0 ? "closed" : now < c.openUntil ? "open" : "half-open"

/** How many more deliveries of the target may be claimed now. */
export const capacity = (c: Circuit, now: number, concurrency: number, inFlight: number): number => {
  const state = circuitState(c, now)
  return state === "open" ? 0 : Math.max(0, (state === "half-open" ? 1 : concurrency) - inFlight)
}

/**
 * The circuit after an outcome. Continuous failure of the target itself opens it (again: each
 * failure while open pushes the cool-down on); a refusal of one event, or an event that cannot
 * be sent, says nothing about the target. A delivery closes it.
 */
export const circuitAfter = (
  c: Circuit,
  outcome: Outcome["kind"],
  now: number,
  policy: CircuitPolicy
): { readonly circuit: Circuit; readonly opened: boolean; readonly recovered: boolean } => {
  if (outcome === "delivered") return { circuit: CLOSED, opened: false, recovered: c.openUntil > 0 }
  // a skipped event sent nothing: it says nothing about the target
  if (outcome !== "retry") return { circuit: c, opened: false, recovered: false }
  const failures = c.failures + 1
  if (failures < policy.threshold) return { circuit: { failures, openUntil: c.openUntil }, opened: false, recovered: false }
  return { circuit: { failures, openUntil: now + policy.cooldownMs }, opened: c.openUntil === 0, recovered: false }
}

// ---- a target's rate limit

/** A send's turn under a rate limit of `perSecond`: how long it waits, and when the next one may go. */
export const rateSlot = (nextSendAt: number, now: number, perSecond: number) => ({
  waitMs: Math.max(0, nextSendAt - now),
  nextSendAt: Math.max(now, nextSendAt) + 1000 / perSecond
})

// ---- deliveries left in flight

/**
 * A delivery left in flight is due again once its lease has ended (or it has none: left by an
 * older version) and this process is not sending or recording it: its outcome could not be
 * written in time, and nobody else will write it.
 */
export const reclaimable = (d: { readonly id: number; readonly lockExpiresAt: number | null }, now: number, sending: ReadonlySet<number>): boolean =>
  !sending.has(d.id) && (d.lockExpiresAt === null || d.lockExpiresAt <= now)

// ---- an outcome that cannot be written

/**
 * How long an outcome that could not be written is tried again, from when recording starts
 * (not from the claim: a send that ran long must not leave it no time at all). A claim's
 * lease covers the send's time-out and this.
 */
export const RECORD_WINDOW_MS = 60_000

/**
 * An outcome's write is tried again only while storage refuses it for now (disk full, the
 * database locked too long): 100 ms doubling, at most 2 s apart, for RECORD_WINDOW_MS. Any other
 * error would fail again the same way: it fails at once, freeing the target's slot.
 */
export const recordRetry = {
  schedule: Schedule.upTo(
    Schedule.union(Schedule.exponential(Duration.millis(100)), Schedule.spaced(Duration.seconds(2))),
    Duration.millis(RECORD_WINDOW_MS)
  ),
  while: (e: SqlError) => isStorageUnavailable(e)
}
