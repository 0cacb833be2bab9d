/**
 * Which deliveries are this process's to send: those due that it claims (in flight, under a
 * lease), those left in flight when it last stopped (due again at start), and those whose
 * lease ended with no outcome written (due again, unless it is still at them).
 */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { GroupCommit } from "../db/GroupCommit.js"
import { type Prepared, Sqlite } from "../db/Sqlite.js"
import { holdsOrder } from "../events/Outbox.js"
import { RECORD_WINDOW_MS, reclaimable } from "./Decisions.js"
import type { StoredEvent } from "../events/Outbox.js"
import type { Target } from "./Target.js"

export interface Claimed {
  readonly id: number
  readonly event_id: number
  readonly attempts: number
  readonly webhook_id: string
  readonly order_key: string | null
  /** the delivery's own URL (a callback's callbackUrl), instead of its target's */
  readonly url: string | null
  /** null when the event is gone (deleted under the delivery) */
  readonly event: StoredEvent | null
}

interface DueRow {
  readonly id: number
  readonly event_id: number
  readonly attempts: number
  readonly webhook_id: string
  readonly order_key: string | null
  readonly url: string | null
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
  url: r.url,
  event:
    r.e_id === null
      ? null
      : { id: r.e_id, type: r.e_type, occurred_at: r.e_occurred_at, enterprise: r.e_enterprise, source: r.e_source, data: r.e_data, raw: r.e_raw }
})

// with the event itself: one statement per claim rather than one more per delivery
const SELECT_DUE = `SELECT d.id, d.event_id, d.attempts, d.webhook_id, d.order_key, d.url,
    e.id AS e_id, e.type AS e_type, e.occurred_at AS e_occurred_at, e.enterprise AS e_enterprise, e.source AS e_source, e.data AS e_data, e.raw AS e_raw
  FROM deliveries d LEFT JOIN events e ON e.id = d.event_id
  WHERE d.target = ? AND d.status = 'pending' AND d.next_attempt_at <= ?
    AND (d.order_key IS NULL OR NOT EXISTS (
      SELECT 1 FROM deliveries p WHERE p.target = d.target AND p.order_key = d.order_key AND p.id < d.id
        AND ${holdsOrder("p")}))
  ORDER BY d.next_attempt_at, d.id LIMIT CAST(? AS INTEGER)`
const MARK_IN_FLIGHT = `UPDATE deliveries SET status = 'in_flight', lock_expires_at = ? WHERE id = ?`
// deliveries_status's range (status = 'in_flight') holds only what is in flight: a handful of rows
const IN_FLIGHT = `SELECT id, lock_expires_at AS lockExpiresAt FROM deliveries WHERE status = 'in_flight'`
const RECLAIM = `UPDATE deliveries SET status = 'pending', lock_expires_at = NULL, updated_at = ?
  WHERE id IN (SELECT value FROM json_each(?)) AND status = 'in_flight'`

/**
 * Up to `capacity` of the target's due deliveries, in flight from now on, leased for the send's
 * time-out and the outcome's write. With `admitter`, due deliveries its filter refuses are passed over (not
 * counted): a target whose deliveries carry their own URLs skips the URLs that cannot take more.
 * A fresh filter per run: the group commit may run a write twice.
 */
export const claim = (target: Target, capacity: number, now: number, admitter?: () => (d: Claimed) => boolean) =>
  // a claim lost with its unflushed commit (power lost, not a process crash) is a lease never taken: the delivery is simply due again
  Effect.flatMap(GroupCommit, (commit) => commit.submit((_, prepared) => claimIn(prepared, target, capacity, now, admitter?.()), { durable: false }))

/** `claim`'s work on the caller's connection, inside its transaction (the outage bench times it at 1k and 1M pending). */
export const claimIn = (prepared: Prepared, target: Pick<Target, "name" | "timeoutMs">, capacity: number, now: number, admit?: (d: Claimed) => boolean): Array<Claimed> => {
  const lockUntil = now + target.timeoutMs + RECORD_WINDOW_MS
  const due: Array<Claimed> = []
  if (admit === undefined) due.push(...(prepared(SELECT_DUE).all(target.name, now, capacity) as ReadonlyArray<DueRow>).map(claimedOf))
  else if (capacity > 0) {
    // LIMIT -1: no limit; the walk stops once enough are admitted
    for (const r of prepared(SELECT_DUE).iterate(target.name, now, -1) as IterableIterator<DueRow>) {
      const d = claimedOf(r)
      if (!admit(d)) continue
      due.push(d)
      if (due.length >= capacity) break
    }
  }
  for (const d of due) prepared(MARK_IN_FLIGHT).run(lockUntil, d.id)
  return due
}

/** Claimed deliveries not sent after all (claimed ahead for a target that paused, or whose circuit opened): due again. */
// on the connection itself, not through the group commit: it runs at shutdown too, when the commit loop may be gone
export const unclaim = (ids: ReadonlyArray<number>, now: number) =>
  Effect.flatMap(Sqlite, (sqlite) => sqlite.exclusive((_, prepared) => void prepared(RECLAIM).run(now, JSON.stringify(ids))))

/**
 * At start: what was in flight is due again (a single process: it was not finished), targets
 * gone since are forgotten, their waiting deliveries dead letters. Answers the circuits that
 * were open, to open again.
 */
export const recoverAtStart = (targetNames: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    yield* sql`UPDATE deliveries SET status = 'pending', lock_expires_at = NULL WHERE status = 'in_flight'`
    const known = JSON.stringify(targetNames)
    // a target gone has nothing to recover: a later one of that name starts afresh
    yield* sql`DELETE FROM failing_targets WHERE target NOT IN (SELECT value FROM json_each(${known}))`
    const failing = yield* sql<{ target: string; failures: number }>`SELECT target, failures FROM failing_targets`
    // a target gone while the bridge was down (taken out of the config file): what waited for it
    // becomes dead letters — visible, redrivable once it is back — rather than waiting unseen
    const orphaned = yield* sql<{ id: number }>`UPDATE deliveries SET status = 'dead', dead_reason = 'target deleted', updated_at = ${Date.now()}
      WHERE status = 'pending' AND target NOT IN (SELECT value FROM json_each(${known})) RETURNING id`
    if (orphaned.length > 0) yield* Effect.logWarning("deliveries of targets that no longer exist are dead letters now").pipe(Effect.annotateLogs({ count: orphaned.length }))
    return failing
  })

/** Deliveries whose lease ended in flight and that this process is not `sending`: due again. Answers how many. */
export const reclaimExpired = (now: number, sending: ReadonlySet<number>) =>
  Effect.gen(function* () {
    const sqlite = yield* Sqlite
    // looked for first: the write (and its lock) only when there is something to reclaim
    const inFlight = yield* sqlite.exclusive((_, prepared) => prepared(IN_FLIGHT).all() as ReadonlyArray<{ id: number; lockExpiresAt: number | null }>)
    const expired = inFlight.filter((d) => reclaimable(d, now, sending))
    if (expired.length === 0) return 0
    return yield* sqlite.exclusive((_, prepared) => prepared(RECLAIM).run(now, JSON.stringify(expired.map((r) => r.id))).changes)
  })
