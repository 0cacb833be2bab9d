/**
 * The events as the admin API lists them, and what removing a target does to its waiting
 * deliveries. The SQL of those listings lives here, not in the HTTP layer.
 */
import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect } from "effect"
import type { EventItem } from "../../schemas/admin.js"
import { storedData } from "../db/StoredJson.js"
import type { StoredEvent } from "./Outbox.js"

export interface EventQuery {
  /** an event type, or a glob (`call.*`) */
  readonly type?: string | undefined
  /** events that occurred at or after this time, Unix ms */
  readonly since: number
  readonly limit: number
  /** an event id: only older ones */
  readonly before?: number | undefined
}

type EventRow = StoredEvent

export class EventsStore extends Effect.Service<EventsStore>()("EventsStore", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient

    /** Events, newest first: at most `limit` of them. */
    const list = (q: EventQuery): Effect.Effect<ReadonlyArray<typeof EventItem.Type>, SqlError> =>
      Effect.map(
        sql<EventRow>`
          SELECT id, type, occurred_at, enterprise, source, data, raw FROM events
          WHERE occurred_at >= ${q.since}
            ${q.type ? (q.type.includes("*") ? sql`AND type GLOB ${q.type}` : sql`AND type = ${q.type}`) : sql``}
            ${q.before === undefined ? sql`` : sql`AND id < ${q.before}`}
          ORDER BY id DESC LIMIT CAST(${q.limit} AS INTEGER)`,
        (rows) =>
          rows.map((r) => ({
            id: r.id,
            type: r.type,
            occurredAt: new Date(r.occurred_at).toISOString(),
            enterprise: r.enterprise,
            source: r.source,
            ...storedData(r.data),
            raw: r.raw
          }))
      )

    /**
     * What was still waiting for a removed target becomes a dead letter: kept, visible,
     * redrivable once the target is back. Answers how many.
     */
    const deadLetterWaiting = (target: string): Effect.Effect<number, SqlError> =>
      Effect.gen(function* () {
        const parked = yield* sql<{ id: number }>`UPDATE deliveries SET status = 'dead', dead_reason = 'target deleted' WHERE target = ${target} AND status IN ('pending', 'in_flight') RETURNING id`
        yield* sql`DELETE FROM failing_targets WHERE target = ${target}`
        return parked.length
      })

    return { list, deadLetterWaiting } as const
  })
}) {}
