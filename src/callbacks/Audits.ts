/**
 * Voice verification calls (§2.4.2–2.4.3): a phoneAudit request becomes a row whose status
 * follows its call on the telephony driver; each change is committed with a
 * `phoneaudit.status` event (the contract names no push of its own for these).
 */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import type { Caller } from "../auth/Auth.js"
import { AppConfig } from "../config/AppConfig.js"
import { GroupCommit } from "../db/GroupCommit.js"
import type { Prepared } from "../db/Sqlite.js"
import { Outbox } from "../events/Outbox.js"
import { formatLocal } from "../shared/Time.js"
import { type CallState, initialState } from "../telephony/Driver.js"
import { Telephony } from "../telephony/Telephony.js"
import { INTERRUPTED } from "./Callbacks.js"

export interface AuditRecord {
  readonly ws_id: number
  readonly comp_number: string
  readonly exte_id: number
  readonly extension: string
  readonly login_id: string
  readonly phone: string
  readonly value: string
  readonly type: number
  readonly is_record: number
  readonly command_no: string
  readonly connect_id: string | null
  readonly status: number
  readonly created_ms: number
  readonly begin_ms: number | null
  readonly success_ms: number | null
  readonly end_ms: number | null
  readonly talk_secs: number
  readonly record_path: string
  readonly result_key: string
  readonly sip_round: string
  readonly show_phone: string
  readonly driver: string
  readonly upstream_answer: string | null
  readonly cdr_id: string | null
  /** how many changes the row went through: each one's event is told apart by it */
  readonly seq: number
}

export interface AuditFilter {
  readonly compNumber: string
  readonly loginId?: string | undefined
  readonly id?: string | undefined
  readonly fromMs?: number | undefined
  readonly toMs?: number | undefined
  readonly statuses?: ReadonlyArray<number> | undefined
  readonly showPhone: boolean
  readonly offset: number
  readonly limit: number
}

const SELECT_ONE = `SELECT * FROM phone_audits WHERE ws_id = ?`
const INSERT = `INSERT INTO phone_audits (ws_id, comp_number, exte_id, extension, login_id, phone, value, type, is_record, command_no, connect_id,
  status, created_ms, sip_round, show_phone, driver, upstream_answer) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?)`
const UPDATE = `UPDATE phone_audits SET status = ?, begin_ms = ?, success_ms = ?, end_ms = ?, talk_secs = ?, record_path = ?, cdr_id = ?, seq = seq + 1 WHERE ws_id = ?`

export class Audits extends Effect.Service<Audits>()("Audits", {
  dependencies: [Outbox.Default, GroupCommit.Default, Telephony.Default],
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const commit = yield* GroupCommit
    const outbox = yield* Outbox
    const { tz } = yield* AppConfig
    const time = (ms: number | null) => (ms === null ? null : formatLocal(ms, tz))

    /** A row in the contract's ws* fields (§2.4.3). `showPhone`: sipShowPhone=1, the line's caller ID shown. */
    const fieldsOf = (r: AuditRecord, showPhone = true) => ({
      wsId: r.ws_id,
      wsStatus: r.status,
      wsTalkTimes: r.talk_secs,
      wsPhone: r.phone,
      wsCreateTime: formatLocal(r.created_ms, tz),
      wsBeginTime: time(r.begin_ms),
      wsSuccessTime: time(r.success_ms),
      wsEndTime: time(r.end_ms),
      ws_exteId: r.exte_id,
      wsValue: r.value,
      wsType: r.type,
      wsRecordPath: r.record_path,
      WsResultKey: r.result_key,
      ws_tyConnectId: r.connect_id,
      wsSipRound: r.sip_round,
      wsShowPhone: showPhone ? r.show_phone : ""
    })

    // the spoken code is the driver's to say and getPhoneAudit's to answer; the event, sent to
    // whoever subscribes (globs included), carries it masked
    const announceIn = (prepared: Prepared, row: AuditRecord) =>
      outbox.emitIn(prepared, {
        type: "phoneaudit.status",
        enterprise: row.comp_number,
        source: `telephony:${row.driver}`,
        data: { ...fieldsOf(row), wsValue: row.value.replace(/[0-9A-Za-z]/g, "*") },
        // a change written twice (group commit) is one event
        dedupKey: `phoneaudit:${row.ws_id}:${row.seq}`
      })

    const create = (input: {
      readonly id: number
      readonly caller: Caller
      readonly phone: string
      readonly value: string
      readonly type: number
      readonly isRecord: number
      readonly commandNo: string
      readonly connectId: string | undefined
      readonly sipRound: string
      readonly showPhone: string
      readonly driver: string
      readonly answer: Readonly<Record<string, unknown>> | null
    }) =>
      commit.submit((_, prepared) => {
        const { caller } = input
        prepared(INSERT).run(
          input.id,
          caller.enterprise.comp_number,
          caller.extension.exte_id,
          caller.extension.extension,
          caller.extension.login_name || caller.extension.extension,
          input.phone,
          input.value,
          input.type,
          input.isRecord,
          input.commandNo,
          input.connectId ?? null,
          Date.now(),
          input.sipRound,
          input.showPhone,
          input.driver,
          input.answer === null ? null : JSON.stringify(input.answer)
        )
        announceIn(prepared, prepared(SELECT_ONE).get(input.id) as AuditRecord)
      })

    const store = (id: number, s: CallState) =>
      commit.submit((_, prepared) => {
        prepared(UPDATE).run(s.status, s.beginMs, s.successMs, s.endMs, s.talkSecs, s.recordFile, s.cdrId, id)
        const row = prepared(SELECT_ONE).get(id) as AuditRecord | undefined
        if (row) announceIn(prepared, row)
      })
    const progress = (id: number, s: CallState) => store(id, s).pipe(Effect.catchAll((e) => Effect.logError("a verification call's progress could not be stored", e)))

    // its failure keeps the end to be delivered again (src/telephony/BoxDriver.ts)
    yield* (yield* Telephony).onEnd("audit", store)

    // a simulated call does not outlive the process that played it (as Callbacks.ts)
    const cut = yield* sql<AuditRecord>`SELECT * FROM phone_audits WHERE driver = 'simulator' AND end_ms IS NULL`
    for (const r of cut)
      yield* progress(r.ws_id, {
        ...initialState,
        status: r.status < 4 ? 3 : (r.status as CallState["status"]),
        beginMs: r.begin_ms,
        successMs: r.success_ms,
        endMs: Date.now(),
        talkSecs: r.talk_secs,
        resultCode: INTERRUPTED,
        recordFile: r.record_path,
        cdrId: r.cdr_id,
        ended: true
      })

    const list = (f: AuditFilter) =>
      Effect.gen(function* () {
        const where = sql.and([
          sql`comp_number = ${f.compNumber}`,
          ...(f.loginId !== undefined ? [sql`(login_id = ${f.loginId} OR extension = ${f.loginId})`] : []),
          ...(f.id !== undefined ? [sql`ws_id = ${f.id}`] : []),
          ...(f.fromMs !== undefined ? [sql`created_ms >= ${f.fromMs}`] : []),
          ...(f.toMs !== undefined ? [sql`created_ms <= ${f.toMs}`] : []),
          ...(f.statuses !== undefined && f.statuses.length > 0 ? [sql.in("status", f.statuses)] : [])
        ])
        const counted = yield* sql<{ n: number }>`SELECT count(*) AS n FROM phone_audits WHERE ${where}`
        const rows = yield* sql<AuditRecord>`SELECT * FROM phone_audits WHERE ${where} ORDER BY created_ms DESC, ws_id DESC LIMIT CAST(${f.limit} AS INTEGER) OFFSET ${f.offset}`
        return { total: counted[0]?.n ?? 0, rows: rows.map((r) => fieldsOf(r, f.showPhone)) }
      })

    return { create, progress, list } as const
  })
}) {}
