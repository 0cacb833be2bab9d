/**
 * The one way anything becomes an event. `emit` writes the event row and one delivery per
 * matching enabled target with the caller's SQL, so when the caller runs it inside the
 * transaction of its state change, all of it commits together or not at all (transactional
 * outbox). The delivery worker is woken afterwards; it only sees committed rows.
 */
import { SqlClient } from "@effect/sql"
import { Clock, Effect } from "effect"
import { matches } from "../forwarding/Target.js"
import { Targets } from "../forwarding/Targets.js"
import { Ids } from "../shared/Ids.js"

export interface NewEvent {
  /** e.g. `extension.created`, `call.hangup` */
  readonly type: string
  readonly enterprise: string | null
  /** where it came from: `api:<method>`, `push:voip`, `box`, … */
  readonly source: string
  readonly data: unknown
  /** the request as received, for passthrough formats */
  readonly raw?: string
  /** natural key: a second event with the same key is not recorded */
  readonly dedupKey?: string
  /** operational events about a target are not sent to that target */
  readonly aboutTarget?: string
}

/** Deliveries of one call to one target keep their order: the call's id, wherever the event carries it. */
export const orderKeyOf = (data: unknown): string | null => {
  if (typeof data !== "object" || data === null) return null
  const d = data as Record<string, unknown>
  const memo = typeof d.memo === "object" && d.memo !== null ? (d.memo as Record<string, unknown>) : undefined
  const id = d.cdrId ?? memo?.cdrId
  return typeof id === "string" || typeof id === "number" ? String(id) : null
}

export class Outbox extends Effect.Service<Outbox>()("Outbox", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const ids = yield* Ids
    const targets = yield* Targets

    /** Records the event and its deliveries; answers the event id, or null when its dedupKey was seen before. */
    const emit = (event: NewEvent) =>
      Effect.gen(function* () {
        const id = yield* ids.next
        const now = yield* Clock.currentTimeMillis
        const rows = yield* sql<{ id: number }>`
          INSERT INTO events (id, type, occurred_at, enterprise, source, data, raw, dedup_key)
          VALUES (${id}, ${event.type}, ${now}, ${event.enterprise}, ${event.source},
                  ${JSON.stringify(event.data)}, ${event.raw ?? null}, ${event.dedupKey ?? null})
          ON CONFLICT (dedup_key) DO NOTHING
          RETURNING id`
        if (rows.length === 0) return null
        const orderKey = orderKeyOf(event.data)
        for (const target of targets.snapshot()) {
          if (!target.enabled || target.name === event.aboutTarget || !matches(target, event.type)) continue
          const deliveryId = yield* ids.next
          yield* sql`INSERT INTO deliveries (id, event_id, target, status, next_attempt_at, order_key, webhook_id, created_at, updated_at)
            VALUES (${deliveryId}, ${id}, ${target.name}, 'pending', ${now}, ${orderKey}, ${`msg_${deliveryId}`}, ${now}, ${now})`
        }
        yield* targets.wake
        return id
      })

    return { emit } as const
  })
}) {}
