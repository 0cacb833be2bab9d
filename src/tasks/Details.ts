/**
 * findTaskMx (§2.10.3): a task's numbers in the contract's ctd* shape, their count, and the
 * counts per status of the tasks matched (`groupData`, whatever page or `type` is asked for).
 * An administrator sees the enterprise's tasks; an agent those it owns or is allotted.
 */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import type { Caller } from "../auth/Auth.js"
import { formatLocal } from "../shared/Time.js"
import type { NumberRow } from "./Tasks.js"

export interface DetailFilter {
  readonly caller: Caller
  readonly tz: string
  readonly cflId: number | undefined
  /** 0 all, 1 not started (status 0), 2 done (status 3–5) */
  readonly type: number
  readonly ctkId: number | undefined
  readonly ctkName: string | undefined
  readonly fromMs: number | undefined
  readonly toMs: number | undefined
  readonly start: number
  readonly limit: number
}

/**
 * ctdResultCode as a number: the SIP-like status of how the call ended (200 talked, 480 no
 * answer, 486 busy, 503 rejected, 487 cut by a stop, 403 blacklisted, 500 any other failure),
 * 0 while it has not ended.
 */
const RESULT_CODES: Readonly<Record<string, number>> = {
  NORMAL_CLEARING: 200,
  NO_ANSWER: 480,
  USER_BUSY: 486,
  CALL_REJECTED: 503,
  INTERRUPTED: 487,
  BLACKLISTED: 403
}

type Row = NumberRow & { readonly task_name: string; readonly exte_name: string | null; readonly attri_exte: string }

const escapeLike = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`)

export const findDetails = (f: DetailFilter) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const own = f.caller.extension.extension
    const tasks = sql.and([
      sql`t.comp_number = ${f.caller.enterprise.comp_number}`,
      ...(f.caller.isAdmin ? [] : [sql`(t.attri_exte = ${own} OR EXISTS (SELECT 1 FROM call_task_agents a WHERE a.ctk_id = t.ctk_id AND a.extension = ${own}))`]),
      ...(f.cflId !== undefined ? [sql`t.cfl_id = ${f.cflId}`] : []),
      ...(f.ctkId !== undefined ? [sql`t.ctk_id = ${f.ctkId}`] : []),
      ...(f.ctkName !== undefined ? [sql`t.name LIKE ${`%${escapeLike(f.ctkName)}%`} ESCAPE '\\'`] : []),
      ...(f.fromMs !== undefined ? [sql`t.created_ms >= ${f.fromMs}`] : []),
      ...(f.toMs !== undefined ? [sql`t.created_ms <= ${f.toMs}`] : [])
    ])
    const numbers = f.type === 1 ? sql`n.status = 0` : f.type === 2 ? sql`n.status >= 3` : sql`1 = 1`
    const [counted] = yield* sql<{ n: number }>`SELECT count(*) AS n FROM call_tasks t JOIN call_task_numbers n ON n.ctk_id = t.ctk_id WHERE ${tasks} AND ${numbers}`
    const groupData = yield* sql<{ ctkId: number; ctdStatus: number; num: number }>`SELECT n.ctk_id AS ctkId, n.status AS ctdStatus, count(*) AS num
      FROM call_tasks t JOIN call_task_numbers n ON n.ctk_id = t.ctk_id WHERE ${tasks} GROUP BY n.ctk_id, n.status ORDER BY n.ctk_id DESC, n.status`
    const rows = yield* sql<Row>`SELECT n.*, t.name AS task_name, t.attri_exte AS attri_exte, e.name AS exte_name
      FROM call_tasks t JOIN call_task_numbers n ON n.ctk_id = t.ctk_id LEFT JOIN extensions e ON e.extension = n.claimed_by
      WHERE ${tasks} AND ${numbers} ORDER BY t.ctk_id DESC, n.seq LIMIT CAST(${f.limit} AS INTEGER) OFFSET ${f.start}`
    const time = (ms: number | null) => (ms === null ? "" : formatLocal(ms, f.tz))
    const clock = (ms: number) => formatLocal(ms, f.tz).slice(11, 16)
    return {
      data: rows.map((r) => {
        const ended = r.end_ms !== null && r.status >= 3
        const round =
          r.begin_ms === null
            ? ""
            : `${clock(r.begin_ms)} SIP/${r.claimed_by ?? r.attri_exte}/${r.phone};${r.success_ms === null ? "" : `${clock(r.success_ms)} answer;`}${r.end_ms === null ? "" : `${clock(r.end_ms)} hangup;`}`
        return {
          ctdId: String(r.ctd_id),
          ctd_ctkId: String(r.ctk_id),
          ctkName: r.task_name,
          ctdPhone: r.phone,
          ctdPhoneName: "",
          ctdStatus: r.status,
          ctdKey: r.key,
          ctdText: r.memo,
          ctdType: "",
          ctdExtension: r.claimed_by ?? "",
          exteName: r.exte_name ?? "",
          ctdCallTime: time(r.call_ms),
          ctdBeginTime: time(r.begin_ms),
          ctdSuccessTime: time(r.success_ms),
          ctdEndTime: time(r.end_ms),
          ctdTimes: r.begin_ms === null ? "" : String(r.talk_secs),
          ctdCallTalktimes: r.begin_ms === null || r.end_ms === null ? "" : String(Math.round((r.end_ms - r.begin_ms) / 1000)),
          ctdTransferPhone: r.transfer_success_ms === null ? "" : (r.claimed_by ?? ""),
          ctdTransferSuccessTime: time(r.transfer_success_ms),
          ctdTransferEndTime: time(r.transfer_end_ms),
          ctdTransferTimes: r.transfer_success_ms === null ? "" : String(r.transfer_secs),
          ctdSmsSendStatus: 0,
          ctdResultCode: ended ? (RESULT_CODES[r.result_code] ?? 500) : 0,
          ctdResultValue: 0,
          ctdResultJson: "",
          ctd_ResultText: "",
          ctd_word: "",
          ctd_all_word: "",
          ctd_wordSum: 0,
          ctd_timeArea: "",
          ctdWavFile: r.wav_file,
          ctdWavPaths: r.wav_file,
          ctdSipRound: round,
          ctdReNum: r.re_num,
          ctdWheelSum: r.call_ms === null ? 0 : r.re_num + 1,
          cnrReasonType: r.result_code
        }
      }),
      count: counted?.n ?? 0,
      groupData: [...groupData]
    }
  })
