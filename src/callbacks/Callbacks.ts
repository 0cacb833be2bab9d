/**
 * Callbacks (§2.3): a callbackPhone request becomes a row whose status (0–5) follows its call on
 * the telephony driver. Every change is committed with its `callback.status` event — which the
 * configured targets receive like any event — and, when the request gave a `callbackUrl`, one
 * more delivery of that event to that URL: a delivery that carries its own URL, sent by the
 * built-in ADHOC_TARGET's policy (its retries, dead letters and redrive are every target's).
 */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { NotFound } from "../api/Errors.js"
import type { Caller } from "../auth/Auth.js"
import { AppConfig } from "../config/AppConfig.js"
import { GroupCommit } from "../db/GroupCommit.js"
import type { Prepared } from "../db/Sqlite.js"
import { Outbox } from "../events/Outbox.js"
import { ADHOC_TARGET } from "../forwarding/Target.js"
import { Targets } from "../forwarding/Targets.js"
import { sameSecret } from "../shared/Secret.js"
import { formatLocal } from "../shared/Time.js"
import { type CallState, INTERRUPTED } from "../telephony/Driver.js"
import { Telephony } from "../telephony/Telephony.js"

export interface CallbackRecord {
  readonly cbk_id: number
  readonly comp_number: string
  readonly exte_id: number
  readonly extension: string
  readonly source_phone: string
  readonly desc_phone: string
  readonly status: number
  readonly created_ms: number
  readonly begin_ms: number | null
  readonly success_ms: number | null
  readonly end_ms: number | null
  readonly transfer_success_ms: number | null
  readonly transfer_end_ms: number | null
  readonly times: number
  readonly transfer_times: number
  readonly result_code: string
  readonly error_code: string
  readonly wav_file: string
  readonly type: number
  readonly url: string
  readonly driver: string
  readonly upstream_answer: string | null
  readonly cdr_id: string | null
  readonly seq: number
  readonly upstream_id: string | null
  readonly upstream_key: string | null
}

export interface CallbackFilter {
  readonly compNumber: string
  readonly extension?: string | undefined
  readonly fromMs?: number | undefined
  readonly toMs?: number | undefined
  readonly id?: number | undefined
  readonly start: number
  readonly limit: number
}

/** `{cbkId}` in the callback URL, as §2.3.1 writes it (any case, encoded or not). */
export const resolveCallbackUrl = (template: string, id: number) => template.replace(/\{cbkId\}|%7BcbkId%7D/gi, String(id))

export { INTERRUPTED } from "../telephony/Driver.js"

const SELECT_ONE = `SELECT * FROM callbacks WHERE cbk_id = ?`
const INSERT = `INSERT INTO callbacks (cbk_id, comp_number, exte_id, extension, source_phone, desc_phone, status, created_ms, type, url, driver, upstream_answer,
  upstream_id, upstream_key) VALUES (?, ?, ?, ?, ?, ?, 0, ?, 0, ?, ?, ?, ?, ?)`
const UPDATE = `UPDATE callbacks SET status = ?, begin_ms = ?, success_ms = ?, end_ms = ?, transfer_success_ms = ?, transfer_end_ms = ?,
  times = ?, transfer_times = ?, result_code = ?, error_code = ?, wav_file = ?, cdr_id = ?, seq = seq + 1 WHERE cbk_id = ?`

export class Callbacks extends Effect.Service<Callbacks>()("Callbacks", {
  dependencies: [Outbox.Default, GroupCommit.Default, Targets.Default, Telephony.Default],
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const commit = yield* GroupCommit
    const outbox = yield* Outbox
    const targets = yield* Targets
    const { tz } = yield* AppConfig
    const time = (ms: number | null) => (ms === null ? null : formatLocal(ms, tz))

    /** A row in the contract's cbk* fields (§2.3.1 push, §2.3.2 rows). */
    const fieldsOf = (r: CallbackRecord) => ({
      cbkId: r.cbk_id,
      cbk_exteId: r.exte_id,
      cbkSourcePhone: r.source_phone,
      cbkDescPhone: r.desc_phone,
      cbkStatus: r.status,
      cbkCreateTime: formatLocal(r.created_ms, tz),
      cbkBeginTime: time(r.begin_ms),
      cbkSuccessTime: time(r.success_ms),
      cbkEndTime: time(r.end_ms),
      cbkTimes: r.times,
      cbkTransferSuccessTime: time(r.transfer_success_ms),
      cbkTransferEndTime: time(r.transfer_end_ms),
      cbkTransferTimes: r.transfer_times,
      cbkResultCode: r.result_code,
      cbkErrorCode: r.error_code,
      cbkWavFile: r.wav_file,
      cbkExtension: r.extension,
      cbkType: r.type,
      cbkUrl: r.url
    })

    /** The row's event, and its push to the row's own URL, on the caller's connection. */
    const announceIn = (prepared: Prepared, row: CallbackRecord) => {
      const data = fieldsOf(row)
      const eventId = outbox.emitIn(prepared, {
        type: "callback.status",
        enterprise: row.comp_number,
        source: `telephony:${row.driver}`,
        data,
        dedupKey: `callback:${row.cbk_id}:${row.seq}`
      })
      if (eventId !== null && row.url !== "") outbox.addDeliveryIn(prepared, eventId, ADHOC_TARGET, `cbk:${row.cbk_id}`, Date.now(), row.url)
    }

    /** A new callback (status 0), its event and push committed with it. */
    const create = (input: {
      readonly id: number
      readonly caller: Caller
      readonly sourcePhone: string
      readonly descPhone: string
      readonly urlTemplate: string | undefined
      readonly driver: string
      readonly answer: Readonly<Record<string, unknown>> | null
      readonly upstream?: { readonly id: string | null; readonly key: string } | undefined
    }) =>
      Effect.gen(function* () {
        const url = input.urlTemplate === undefined ? "" : resolveCallbackUrl(input.urlTemplate, input.id)
        yield* commit.submit((_, prepared) => {
          const { caller } = input
          prepared(INSERT).run(
            input.id,
            caller.enterprise.comp_number,
            caller.extension.exte_id,
            caller.extension.extension,
            input.sourcePhone,
            input.descPhone,
            Date.now(),
            url,
            input.driver,
            input.answer === null ? null : JSON.stringify(input.answer),
            input.upstream?.id ?? null,
            input.upstream?.key ?? null
          )
          announceIn(prepared, prepared(SELECT_ONE).get(input.id) as CallbackRecord)
        })
        yield* targets.wake
      })

    /** The call moved on: the row follows, announced as a new status (unless `stale` says the row, as it is now, is past it). */
    const store = (id: number, s: CallState, stale?: (row: CallbackRecord) => boolean) =>
      Effect.gen(function* () {
        yield* commit.submit((_, prepared) => {
          if (stale !== undefined) {
            const now = prepared(SELECT_ONE).get(id) as CallbackRecord | undefined
            if (now === undefined || stale(now)) return
          }
          prepared(UPDATE).run(
            s.status,
            s.beginMs,
            s.successMs,
            s.endMs,
            s.transferSuccessMs,
            s.transferEndMs,
            s.talkSecs,
            s.transferSecs,
            s.resultCode,
            s.errorCode,
            s.recordFile,
            s.cdrId,
            id
          )
          const row = prepared(SELECT_ONE).get(id) as CallbackRecord | undefined
          if (row) announceIn(prepared, row)
        })
        yield* targets.wake
      })
    const progress = (id: number, s: CallState) => store(id, s).pipe(Effect.catchAll((e) => Effect.logError("a callback's progress could not be stored", e)))

    /**
     * A status the platform pushed for a callback relayed to it (src/callbacks/routes.ts): the row
     * it names by the platform's id, proven by the key its URL was given, follows it — announced
     * as every change is, with our cbkId. A push that changes nothing (a retry) announces nothing.
     */
    const fromUpstream = (upstreamId: string, key: string | undefined, s: CallState) =>
      Effect.gen(function* () {
        const [row] = yield* sql<CallbackRecord>`SELECT * FROM callbacks WHERE upstream_id = ${upstreamId} AND upstream_key IS NOT NULL`
        // one answer for an unknown id and a wrong key: which ids exist is not told
        if (row === undefined || !sameSecret(key, row.upstream_key ?? "")) return yield* new NotFound({ message: `no callback relayed to the platform as ${upstreamId} with this key` })
        const same =
          row.status === s.status && row.begin_ms === s.beginMs && row.success_ms === s.successMs && row.end_ms === s.endMs &&
          row.transfer_success_ms === s.transferSuccessMs && row.transfer_end_ms === s.transferEndMs && row.times === s.talkSecs &&
          row.transfer_times === s.transferSecs && row.result_code === s.resultCode && row.error_code === s.errorCode && row.wav_file === s.recordFile
        // an ended call stays ended: a late or retried push of an earlier status (or one without an end) is
        // answered as taken, and stores and announces nothing. Checked again in the write, as pushes may cross.
        const behind = (now: CallbackRecord) => now.end_ms !== null && (s.endMs === null || s.status < now.status)
        if (!same && !behind(row)) yield* store(row.cbk_id, { ...s, cdrId: row.cdr_id }, behind)
        return row.cbk_id
      })

    // a call whose end the driver learns later (the box's upload) ends here, as a change it plays would
    // its failure keeps the end to be delivered again (src/telephony/BoxDriver.ts)
    yield* (yield* Telephony).onEnd("callback", (id, s) => store(id, s))

    // a simulated call does not outlive the process that played it: one a stop cut short has ended, and says so
    const cut = yield* sql<CallbackRecord>`SELECT * FROM callbacks WHERE driver = 'simulator' AND end_ms IS NULL`
    for (const r of cut)
      yield* progress(r.cbk_id, {
        status: r.status < 4 ? 3 : (r.status as CallState["status"]),
        beginMs: r.begin_ms,
        successMs: r.success_ms,
        endMs: Date.now(),
        transferSuccessMs: r.transfer_success_ms,
        transferEndMs: r.transfer_success_ms === null ? null : Date.now(),
        talkSecs: r.times,
        transferSecs: r.transfer_times,
        resultCode: INTERRUPTED,
        errorCode: "",
        recordFile: r.wav_file,
        cdrId: r.cdr_id,
        ended: true
      })

    const list = (f: CallbackFilter) =>
      Effect.gen(function* () {
        const where = sql.and([
          sql`comp_number = ${f.compNumber}`,
          ...(f.extension !== undefined ? [sql`extension = ${f.extension}`] : []),
          ...(f.fromMs !== undefined ? [sql`created_ms >= ${f.fromMs}`] : []),
          ...(f.toMs !== undefined ? [sql`created_ms <= ${f.toMs}`] : []),
          ...(f.id !== undefined ? [sql`cbk_id = ${f.id}`] : [])
        ])
        const counted = yield* sql<{ n: number }>`SELECT count(*) AS n FROM callbacks WHERE ${where}`
        const rows = yield* sql<CallbackRecord>`SELECT * FROM callbacks WHERE ${where} ORDER BY created_ms DESC, cbk_id DESC LIMIT CAST(${f.limit} AS INTEGER) OFFSET ${f.start}`
        return { total: counted[0]?.n ?? 0, rows: rows.map(fieldsOf) }
      })

    return { create, progress, fromUpstream, list, fieldsOf } as const
  })
}) {}
