/**
 * Dead letters and redrive, for the admin API and the CLI alike. A redrive puts the same
 * delivery row back in the queue, so it goes out with the same webhook-id; filters select
 * every matching dead letter, never just a page.
 */
import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import type { Fragment } from "@effect/sql/Statement"
import { Clock, Effect } from "effect"
import type { Attempt, DeliveryItem } from "../../schemas/admin.js"
import { Sqlite } from "../db/Sqlite.js"
import { storedData } from "../db/StoredJson.js"
import { HELD, holdsOrder, Outbox, orderKeyOf } from "../events/Outbox.js"
import { Lanes } from "./Lanes.js"
import { Targets } from "./Targets.js"

export interface DeadLetterFilter {
  readonly target?: string | undefined
  readonly type?: string | undefined
  readonly ids?: ReadonlyArray<number> | undefined
  /** event time range, Unix ms */
  readonly since?: number | undefined
  readonly until?: number | undefined
}

interface Row {
  readonly id: number
  readonly target: string
  readonly url: string | null
  readonly status: string
  readonly attempts: number
  readonly webhook_id: string
  readonly last_error: string | null
  readonly dead_reason: string | null
  readonly next_attempt_at: number
  readonly updated_at: number
  readonly event_id: number
  readonly type: string
  readonly occurred_at: number
  readonly enterprise: string | null
  readonly source: string
  readonly data: string
}

export class DeadLetters extends Effect.Service<DeadLetters>()("DeadLetters", {
  dependencies: [Outbox.Default, Targets.Default, Lanes.Default],
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const targets = yield* Targets
    const lanes = yield* Lanes
    const sqlite = yield* Sqlite
    const outbox = yield* Outbox

    // One JSON parameter instead of one per id: SQLite refuses statements with more than 32766
    // parameters, and a bulk filter or a purge can name more ids than that.
    const idIn = (column: string, list: ReadonlyArray<number>) => sql`${sql(column)} IN (SELECT value FROM json_each(${JSON.stringify(list)}))`

    const where = (status: string | undefined, f: DeadLetterFilter & { readonly status?: string | undefined }) => {
      const clauses: Array<Fragment> = []
      // with an id list, the ids lead (rowid lookups); `+` keeps SQLite from scanning the status index instead
      if (status) clauses.push(f.ids !== undefined && f.ids.length > 0 ? sql`+d.status = ${status}` : sql`d.status = ${status}`)
      if (f.target !== undefined) clauses.push(sql`d.target = ${f.target}`)
      if (f.type !== undefined) clauses.push(f.type.includes("*") ? sql`e.type GLOB ${f.type}` : sql`e.type = ${f.type}`)
      // an empty id list names no dead letter: it must not widen a redrive or a purge to all of them
      if (f.ids !== undefined) clauses.push(f.ids.length > 0 ? idIn("d.id", f.ids) : sql`1 = 0`)
      if (f.since !== undefined) clauses.push(sql`e.occurred_at >= ${f.since}`)
      if (f.until !== undefined) clauses.push(sql`e.occurred_at <= ${f.until}`)
      return clauses.length > 0 ? sql.and(clauses) : sql`1 = 1`
    }

    const attemptsOf = (deliveryIds: ReadonlyArray<number>) =>
      deliveryIds.length === 0
        ? Effect.succeed(new Map<number, Array<typeof Attempt.Type>>())
        : sql<{ delivery_id: number; n: number; started_at: number; status: number | null; latency_ms: number; error: string | null; response: string | null }>`
            SELECT * FROM attempts WHERE ${idIn("delivery_id", deliveryIds)} ORDER BY delivery_id, n`.pipe(
            Effect.map((rows) => {
              const byDelivery = new Map<number, Array<typeof Attempt.Type>>()
              for (const a of rows) {
                const list = byDelivery.get(a.delivery_id) ?? []
                list.push({ n: a.n, at: new Date(a.started_at).toISOString(), status: a.status, latencyMs: a.latency_ms, error: a.error, response: a.response })
                byDelivery.set(a.delivery_id, list)
              }
              return byDelivery
            })
          )

    /** Deliveries (with their event and every attempt), newest first; `before` (a delivery id) pages on. */
    const list = (status: string | undefined, f: DeadLetterFilter, limit = 1000, before?: number): Effect.Effect<ReadonlyArray<typeof DeliveryItem.Type>, SqlError> =>
      Effect.gen(function* () {
        const page = before === undefined ? where(status, f) : sql.and([where(status, f), sql`d.id < ${before}`])
        const rows = yield* sql<Row>`SELECT d.id, d.target, d.url, d.status, d.attempts, d.webhook_id, d.last_error, d.dead_reason, d.next_attempt_at, d.updated_at,
            e.id AS event_id, e.type, e.occurred_at, e.enterprise, e.source, e.data
          FROM deliveries d JOIN events e ON e.id = d.event_id WHERE ${page} ORDER BY d.id DESC LIMIT CAST(${limit} AS INTEGER)`
        const attempts = yield* attemptsOf(rows.map((r) => r.id))
        return rows.map((r) => ({
          id: r.id,
          target: r.target,
          ...(r.url !== null ? { url: r.url } : {}),
          status: r.status,
          reason: r.dead_reason,
          webhookId: r.webhook_id,
          lastError: r.last_error,
          nextAttemptAt: r.status === "pending" && r.next_attempt_at !== HELD ? new Date(r.next_attempt_at).toISOString() : null,
          held: r.status === "pending" && r.next_attempt_at === HELD,
          updatedAt: new Date(r.updated_at).toISOString(),
          event: { id: r.event_id, type: r.type, occurredAt: new Date(r.occurred_at).toISOString(), enterprise: r.enterprise, source: r.source, ...storedData(r.data) },
          attempts: attempts.get(r.id) ?? []
        }))
      })

    const matchingDead = (f: DeadLetterFilter) => sql<{ id: number; target: string }>`SELECT d.id, d.target FROM deliveries d JOIN events e ON e.id = d.event_id WHERE ${where("dead", f)}`

    /**
     * Deliveries held behind a call's dead letter (see HELD) whose dead letter is gone — redriven
     * or deleted — are due again; the claim's order check still sends them after it.
     */
    const releaseHeld = (names: Iterable<string>) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        for (const name of new Set(names))
          yield* sql`UPDATE deliveries INDEXED BY deliveries_due SET next_attempt_at = ${now}
            WHERE target = ${name} AND status = 'pending' AND next_attempt_at = ${HELD}
              AND NOT EXISTS (SELECT 1 FROM deliveries p WHERE p.target = deliveries.target AND p.order_key = deliveries.order_key AND p.id < deliveries.id
                AND ${sql.literal(holdsOrder("p"))} AND p.status = 'dead')`
      })

    /**
     * Every dead letter the filter matches goes back in the queue, due now, its attempts counted
     * afresh — except those of a target that no longer exists: nothing would send them, so they
     * stay dead letters (counted as skipped) until the target is back.
     */
    // uninterruptible: a client that goes away must not cut a redrive or purge between chunks
    // (what it held back would wait for the worker's sweep)
    const redrive = (f: DeadLetterFilter, onProgress?: (done: number, total: number) => void) =>
      Effect.uninterruptible(Effect.gen(function* () {
        const known = new Set(targets.sending().map((t) => t.name))
        const matched = yield* matchingDead(f)
        const kept = matched.filter((d) => known.has(d.target))
        const chosen = kept.map((d) => d.id)
        const now = yield* Clock.currentTimeMillis
        const CHUNK = 500
        for (let i = 0; i < chosen.length; i += CHUNK) {
          const part = chosen.slice(i, i + CHUNK)
          yield* sql`UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = ${now}, dead_reason = NULL, last_error = NULL, updated_at = ${now}
            WHERE ${idIn("id", part)} AND +status = 'dead'`
          onProgress?.(Math.min(i + CHUNK, chosen.length), chosen.length)
        }
        yield* releaseHeld(kept.map((d) => d.target))
        // the operator has just fixed the target: an open circuit lets a probe through now, not after its cool-down
        const probed = chosen.length > 0 ? lanes.probeNow([...new Set(kept.map((d) => d.target))], now) : 0
        if (chosen.length > 0)
          yield* Effect.logInfo("dead letters redriven").pipe(Effect.annotateLogs({ count: chosen.length, skipped: matched.length - chosen.length, targets: [...new Set(kept.map((d) => d.target))], circuitsProbed: probed }))
        yield* targets.wake
        return { redriven: chosen.length, skipped: matched.length - chosen.length }
      }))

    /**
     * Deletes every dead letter the filter matches with its attempts, a chunk per transaction:
     * pushes keep being committed between chunks, and a chunk never leaves a delivery without
     * its attempts or the reverse.
     */
    const purge = (f: DeadLetterFilter, onProgress?: (done: number, total: number) => void) =>
      Effect.uninterruptible(Effect.gen(function* () {
        const matched = yield* matchingDead(f)
        const chosen = matched.map((d) => d.id)
        const CHUNK = 2000
        for (let i = 0; i < chosen.length; i += CHUNK) {
          const part = chosen.slice(i, i + CHUNK)
          yield* sql.withTransaction(
            Effect.zipRight(sql`DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE ${idIn("id", part)} AND +status = 'dead')`, sql`DELETE FROM deliveries WHERE ${idIn("id", part)} AND +status = 'dead'`)
          )
          onProgress?.(Math.min(i + CHUNK, chosen.length), chosen.length)
        }
        yield* releaseHeld(matched.map((d) => d.target))
        // what waited behind them goes now, not at the next poll
        yield* targets.wake
        return chosen.length
      }))

    /** Sends an event to a target it was never delivered to (a target added later, say). */
    /**
     * Sends an event to a target: one it never went to (a target added later, say) gets a new
     * delivery; one it reached already, or that dead-lettered, is sent again with a new
     * webhook-id (the operator asks for it to be processed again, not deduplicated). A delivery
     * still waiting to be sent is left to it ("waiting").
     */
    const resend = (eventId: number, target: string) =>
      Effect.gen(function* () {
        const existing = yield* sql<{ id: number; status: string }>`SELECT id, status FROM deliveries WHERE event_id = ${eventId} AND target = ${target}`
        if (existing.length > 0) {
          const d = existing[0]!
          if (d.status !== "delivered" && d.status !== "dead") return { created: false as const, waiting: true as const, deliveryId: d.id }
          const now = yield* Clock.currentTimeMillis
          yield* sql`UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = ${now}, dead_reason = NULL, last_error = NULL,
            webhook_id = ${`msg_${d.id}_${now}`}, updated_at = ${now} WHERE id = ${d.id} AND status IN ('delivered', 'dead')`
          yield* targets.wake
          return { created: false as const, waiting: false as const, deliveryId: d.id }
        }
        const event = yield* sql<{ data: string }>`SELECT data FROM events WHERE id = ${eventId}`
        if (event.length === 0) return { created: false as const, waiting: false as const, deliveryId: null }
        const now = yield* Clock.currentTimeMillis
        // in the call's order like any other delivery of it
        const orderKey = orderKeyOf(JSON.parse(event[0]!.data))
        const id = yield* sqlite.exclusive((_, prepared) => outbox.addDeliveryIn(prepared, eventId, target, orderKey, now))
        yield* targets.wake
        return { created: true as const, waiting: false as const, deliveryId: id }
      })

    return { list, redrive, purge, resend, releaseHeld } as const
  })
}) {}
