/**
 * Retention: events older than `forwarding.retentionDays` whose every delivery succeeded are
 * deleted with their deliveries and attempts. An event with a pending or dead delivery is
 * kept whatever its age — dead letters stay until redriven or purged by an operator.
 */
import { SqlClient } from "@effect/sql"
import { Clock, Effect } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import type { Job } from "../jobs/Job.js"

const DAY_MS = 86_400_000
const CHUNK = 1000

export const retention: Job = {
  name: "events.retention",
  schedule: "17 3 * * *",
  run: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const { retentionDays } = (yield* AppConfig).forwarding
    if (retentionDays === 0) return
    const before = (yield* Clock.currentTimeMillis) - retentionDays * DAY_MS
    // in chunks: each transaction stays short, so pushes are not held up behind a large clean-up
    // the choice and the deletion share a transaction: an event re-sent to a target in between
    // (its new delivery pending) is not deleted under it
    for (;;) {
      const count = yield* sql.withTransaction(
        Effect.gen(function* () {
          const old = yield* sql<{ id: number }>`SELECT e.id FROM events e WHERE e.occurred_at < ${before}
            AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.status <> 'delivered') LIMIT CAST(${CHUNK} AS INTEGER)`
          if (old.length === 0) return 0
          const ids = old.map((r) => r.id)
          yield* sql`DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE ${sql.in("event_id", ids)})`
          yield* sql`DELETE FROM deliveries WHERE ${sql.in("event_id", ids)}`
          yield* sql`DELETE FROM events WHERE ${sql.in("id", ids)}`
          return ids.length
        })
      )
      if (count === 0) return
      yield* Effect.logInfo("retention removed delivered events").pipe(Effect.annotateLogs({ count }))
    }
  })
}
