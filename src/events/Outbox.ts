/**
 * The one way anything becomes an event. `emit` writes the event row with the caller's
 * SQL, so when the caller runs it inside the transaction of its state change both commit
 * together or not at all (transactional outbox). Delivery to targets reads from here.
 */
import { SqlClient } from "@effect/sql"
import { Clock, Effect } from "effect"
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
}

export class Outbox extends Effect.Service<Outbox>()("Outbox", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const ids = yield* Ids

    /** Records the event; answers its id, or null when its dedupKey was seen before. */
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
        return rows[0]?.id ?? null
      })

    return { emit } as const
  }),
  dependencies: [Ids.Default]
}) {}
