/**
 * Follow-up memos (§2.9) and their reminders. A memo asking for a reminder (nhtIsHint=1) is
 * pending until its time; the sweep claims due reminders by setting fired_at in the same
 * statement that selects them (UPDATE … RETURNING), inside one transaction with the reminder's
 * message and event: a reminder fires once, whichever sweep or process gets to it first, and a
 * crash before the commit leaves it pending for the next sweep.
 */
import { SqlClient } from "@effect/sql"
import { Clock, Effect } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { Outbox } from "../events/Outbox.js"
import type { Job } from "../jobs/Job.js"
import { storeMessage } from "../messaging/handlers.js"
import { formatLocal } from "../shared/Time.js"

/** recvMsg `kind` of a reminder: after the contract's 1–7 (bridge addition) */
export const REMINDER_KIND = 8
/** `client` (sender) of a reminder: the bridge itself, not one of the extension's clients */
export const FROM_BRIDGE = 0
/** reminders claimed per transaction: a backlog (the bridge was down for days) is worked off batch by batch */
const SWEEP_BATCH = 100

interface Claimed {
  readonly cmm_id: number
  readonly comp_number: string
  readonly extension: string
  readonly phone: string
  readonly memo: string
  readonly hint_at: number
  readonly hint_phone: string | null
  readonly created_at: number
}

/** One batch of due reminders, claimed and fired in one transaction; answers how many. */
const sweepBatch = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const outbox = yield* Outbox
  const { tz } = yield* AppConfig
  return yield* sql.withTransaction(
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const due = yield* sql<Claimed>`UPDATE crm_memos SET fired_at = ${now}
        WHERE cmm_id IN (SELECT cmm_id FROM crm_memos WHERE hint_at IS NOT NULL AND fired_at IS NULL AND hint_at <= ${now}
                         ORDER BY hint_at LIMIT CAST(${SWEEP_BATCH} AS INTEGER))
          AND fired_at IS NULL
        RETURNING cmm_id, comp_number, extension, phone, memo, hint_at, hint_phone, created_at`
      for (const r of due) {
        const phone = r.hint_phone ?? r.phone
        // both of the extension's clients (PC and mobile) see it
        for (const toClient of [1, 2])
          yield* storeMessage({ comp: r.comp_number, extension: r.extension, fromClient: FROM_BRIDGE, toClient, kind: REMINDER_KIND, phone, content: r.memo, lon: null, lat: null, time: now, expiresAt: null })
        yield* outbox.emit({
          type: "memo.reminder",
          enterprise: r.comp_number,
          source: "job:crm.reminders",
          data: {
            cmmId: r.cmm_id,
            extension: r.extension,
            phone: r.phone,
            hintPhone: r.hint_phone,
            memo: r.memo,
            remindAt: formatLocal(r.hint_at, tz),
            memoTime: formatLocal(r.created_at, tz),
            firedAt: formatLocal(now, tz)
          },
          dedupKey: `memo.reminder:${r.cmm_id}`
        })
      }
      return due.length
    })
  )
})

/** Whether any reminder is due: a read, so an idle sweep never takes the write lock. */
const anyDue = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const now = yield* Clock.currentTimeMillis
  const rows = yield* sql`SELECT 1 AS due FROM crm_memos WHERE hint_at IS NOT NULL AND fired_at IS NULL AND hint_at <= ${now} LIMIT 1`
  return rows.length > 0
})

/** Fires every due reminder; answers how many. */
export const sweepReminders = Effect.gen(function* () {
  if (!(yield* anyDue)) return 0
  let fired = 0
  for (;;) {
    const n = yield* sweepBatch
    fired += n
    if (n < SWEEP_BATCH) return fired
  }
})

/** Reminders are asked for to the second: the sweep runs every 5 s (one indexed read when nothing is due). */
export const reminderJob: Job = {
  name: "crm.reminders",
  schedule: "*/5 * * * * *",
  run: Effect.asVoid(sweepReminders)
}
