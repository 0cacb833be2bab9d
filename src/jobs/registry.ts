/** The one list of scheduled jobs. */
import { SqlClient } from "@effect/sql"
import { Clock, Effect } from "effect"
import { presenceSweep } from "../box/DevicesStore.js"
import { reminderJob } from "../crm/Memos.js"
import { retention } from "../forwarding/Retention.js"
import { purgeExpired } from "../messaging/handlers.js"
import type { Job } from "./Job.js"

const sweepSessions: Job = {
  name: "sessions.sweep",
  schedule: "*/10 * * * *",
  run: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const now = yield* Clock.currentTimeMillis
    yield* sql`DELETE FROM sessions WHERE expires_at <= ${now}`
  })
}

export const jobs: ReadonlyArray<Job> = [sweepSessions, purgeExpired, retention, presenceSweep, reminderJob]
