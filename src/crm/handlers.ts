/** §2.6.3, §2.6.6 — field labels and code lists; §2.9 — follow-up memos. */
import { SqlClient } from "@effect/sql"
import { Clock, Effect } from "effect"
import * as spec from "../../schemas/customers.js"
import { InvalidParam, OverLimit } from "../api/Errors.js"
import { implement } from "../api/Implementation.js"
import { AppConfig } from "../config/AppConfig.js"
import { phoneMatchKey } from "../customers/Phones.js"
import { Outbox } from "../events/Outbox.js"
import { Ids } from "../shared/Ids.js"
import { formatLocal, parseLocal } from "../shared/Time.js"
import { codesOf, fieldsOf } from "./Codes.js"
import { CODE_TYPE } from "./Defaults.js"

const DEFAULT_PAGE = 20

interface MemoRow {
  readonly cmm_id: number
  readonly extension: string
  readonly exte_name: string | null
  readonly phone: string
  readonly memo: string
  readonly created_at: number
  readonly phone_name: string | null
}

export const handlers = [
  implement(spec.getTableFields, ({ chinesename }, caller) =>
    Effect.map(fieldsOf(caller.enterprise.comp_number), (fields) => ({
      rows: fields.map((f) => ({ fieldName: f.fieldName, chineseName: chinesename === 1 ? f.systemName : f.label, fieldType: f.fieldType }))
    }))
  ),

  implement(spec.getCodes, ({ codeType }, caller) =>
    // a name no list can have is answered as any unknown type: no codes
    CODE_TYPE.test(codeType) ? Effect.map(codesOf(caller.enterprise.comp_number, codeType), (rows) => ({ rows })) : Effect.succeed({ rows: [] })
  ),

  implement(spec.addMemo, (p, caller) =>
    Effect.gen(function* () {
      const key = phoneMatchKey(p.cdrPhone)
      if (key === "") return yield* new InvalidParam({ param: "cdrPhone", problem: "is empty or a number without digits" })
      if (p.cdrMemo.trim() === "") return yield* new InvalidParam({ param: "cdrMemo", problem: "is empty" })
      const hint = p.nhtIsHint === 1
      if (hint && p.nhtTime === undefined) return yield* new InvalidParam({ param: "nhtTime", problem: "is missing (nhtIsHint=1 needs the time to remind at)" })
      const sql = yield* SqlClient.SqlClient
      const outbox = yield* Outbox
      const { tz } = yield* AppConfig
      const cmmId = yield* Effect.flatMap(Ids, (ids) => ids.next)
      const now = yield* Clock.currentTimeMillis
      const comp = caller.enterprise.comp_number
      const extension = caller.extension.extension
      // a time already past fires at the next sweep
      const hintAt = hint ? parseLocal(p.nhtTime!, tz) : null
      return yield* sql.withTransaction(
        Effect.gen(function* () {
          yield* sql`INSERT INTO crm_memos ${sql.insert({
            cmm_id: cmmId,
            comp_number: comp,
            extension,
            phone: p.cdrPhone,
            phone_key: key,
            memo: p.cdrMemo,
            created_at: now,
            hint_at: hintAt,
            hint_phone: hint ? (p.nhtPhone ?? null) : null,
            fired_at: null
          })}`
          yield* outbox.emit({
            type: "memo.added",
            enterprise: comp,
            source: "api:addMemo",
            data: {
              cmmId,
              extension,
              phone: p.cdrPhone,
              memo: p.cdrMemo,
              time: formatLocal(now, tz),
              remind: hint,
              remindAt: hintAt === null ? null : formatLocal(hintAt, tz),
              hintPhone: hint ? (p.nhtPhone ?? null) : null
            }
          })
          return { cmmId }
        })
      )
    })
  ),

  implement(spec.getMemos, (p, caller) =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const { tz, limits } = yield* AppConfig
      const limit = p.limit ?? DEFAULT_PAGE
      if (limit > limits.pageMax) return yield* new OverLimit({ message: `parameter limit: at most ${limits.pageMax}, got ${limit}` })
      const start = p.start ?? 0
      const comp = caller.enterprise.comp_number
      // no number: the enterprise's memos, newest first (a number of only spaces and dashes matches none: no memo has an empty key)
      const where = p.phoneNum === undefined ? sql`m.comp_number = ${comp}` : sql`m.comp_number = ${comp} AND m.phone_key = ${phoneMatchKey(p.phoneNum)}`
      // COUNT is a bigint on PostgreSQL, read as text: a number either way
      const total = Number((yield* sql<{ n: number | string }>`SELECT COUNT(*) AS n FROM crm_memos m WHERE ${where}`)[0]?.n ?? 0)
      const rows =
        limit === 0 || start >= total
          ? []
          : yield* sql<MemoRow>`SELECT m.cmm_id, m.extension, e.name AS exte_name, m.phone, m.memo, m.created_at,
                (SELECT COALESCE(NULLIF(c.name, ''), c.corp_name) FROM customer_phones p JOIN customers c ON c.cust_id = p.cust_id
                  WHERE p.comp_number = m.comp_number AND p.norm = m.phone_key ORDER BY p.cust_id LIMIT 1) AS phone_name
              FROM crm_memos m LEFT JOIN extensions e ON e.extension = m.extension AND e.comp_number = m.comp_number
              WHERE ${where} ORDER BY m.cmm_id DESC LIMIT CAST(${limit} AS INTEGER) OFFSET ${start}`
      return {
        total,
        rows: rows.map((r) => ({
          cmmId: r.cmm_id,
          cmmExtension: r.extension,
          exteName: r.exte_name ?? "",
          cmmPhone: r.phone,
          // the number's name: its customer's (the first to have it, when several do), as calls are linked
          cmmPhoneName: r.phone_name ?? "",
          cmmTime: formatLocal(r.created_at, tz),
          cmmMemo: r.memo
        }))
      }
    })
  )
]
