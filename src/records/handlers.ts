/** §2.1.6, §2.1.7, §2.4.1 / §2.7.1 — call and SMS records uploaded by clients, and the call-record query. */
import { SqlClient } from "@effect/sql"
import { Clock, Effect } from "effect"
import * as spec from "../../schemas/records.js"
import { implement } from "../api/Implementation.js"
import { InvalidParam, NotFound, OverLimit } from "../api/Errors.js"
import { AppConfig } from "../config/AppConfig.js"
import { Outbox } from "../events/Outbox.js"
import { Ids } from "../shared/Ids.js"
import { parseLocal } from "../shared/Time.js"
import { CdrStore } from "./CdrStore.js"

const DEFAULT_PAGE = 20

export const handlers = [
  implement(spec.addCdrRecord, (p, caller) =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const store = yield* CdrStore
      const outbox = yield* Outbox
      const comp = caller.enterprise.comp_number
      const { dialId, dialPhoneNum, dialStartTime, dialHangupTime, dialTalktime, dialPeer, dialRecordFile, ...extra } = p
      return yield* sql.withTransaction(
        Effect.gen(function* () {
          const { cdrId, created } = yield* store.upsertFromClient(comp, caller.extension.extension, {
            dialId,
            phone: dialPhoneNum,
            startLocal: dialStartTime,
            hangupLocal: dialHangupTime,
            talkSecs: dialTalktime,
            peer: dialPeer,
            recordFile: dialRecordFile,
            extra: { ...extra, dialId }
          })
          const row = yield* store.findRow(cdrId)
          yield* outbox.emit({ type: created ? "cdr.added" : "cdr.updated", enterprise: comp, source: "api:addCdrRecord", data: row })
          return { cdrId }
        })
      )
    })
  ),

  implement(spec.addSmsRecord, (p, caller) =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const outbox = yield* Outbox
      const ids = yield* Ids
      const comp = caller.enterprise.comp_number
      const extension = caller.extension.extension
      const now = yield* Clock.currentTimeMillis
      return yield* sql.withTransaction(
        Effect.gen(function* () {
          const existing =
            p.id === undefined
              ? undefined
              : (yield* sql<{ sms_id: number }>`SELECT sms_id FROM sms_records WHERE comp_number = ${comp} AND extension = ${extension} AND local_id = ${p.id}`)[0]
          const values = { kind: p.kind ?? null, phone: p.phone, content: p.content ?? "", time_ms: p.time, updated_at: now }
          const smsId = existing?.sms_id ?? (yield* ids.next)
          if (existing) yield* sql`UPDATE sms_records SET ${sql.update(values)} WHERE sms_id = ${smsId}`
          else yield* sql`INSERT INTO sms_records ${sql.insert({ sms_id: smsId, comp_number: comp, extension, local_id: p.id ?? null, created_at: now, ...values })}`
          yield* outbox.emit({
            type: existing ? "sms.updated" : "sms.added",
            enterprise: comp,
            source: "api:addSmsRecord",
            data: { smsId, id: p.id ?? null, extension, kind: p.kind ?? null, phone: p.phone, content: p.content ?? "", time: p.time }
          })
          return { smsId }
        })
      )
    })
  ),

  implement(spec.findDialrecord, (p, caller) =>
    Effect.gen(function* () {
      const store = yield* CdrStore
      const { tz, limits } = yield* AppConfig
      const limit = p.limit ?? DEFAULT_PAGE
      if (limit > limits.pageMax) return yield* new OverLimit({ message: `parameter limit: at most ${limits.pageMax}, got ${limit}` })
      const comp = caller.enterprise.comp_number
      // an agent sees its own calls; an administrator sees the enterprise's
      let extensions = p.extension
      if (!caller.isAdmin) {
        const own = caller.extension.extension
        if (extensions && !extensions.includes(own)) return { total: 0, recordTotal: 0, rows: [] }
        extensions = [own]
      }
      if (extensions?.some((e) => !e.startsWith(comp)))
        return yield* new NotFound({ message: `parameter extension: ${extensions.find((e) => !e.startsWith(comp))} is not an extension of this enterprise` })
      if (p.talktime === undefined && p.talktimeSql !== undefined)
        return yield* new InvalidParam({ param: "talktime", problem: "is missing (talktimeSql needs it)" })
      const from = p.startTime ?? p.statrTime
      const fromMs = from === undefined ? undefined : parseLocal(from, tz)
      const toMs = p.endTime === undefined ? undefined : parseLocal(p.endTime, tz)
      if (fromMs !== undefined && toMs !== undefined && fromMs > toMs)
        return yield* new InvalidParam({ param: "endTime", problem: "is before startTime" })
      const { total, rows } = yield* store.search({
        compNumber: comp,
        extensions,
        viewer: caller.isAdmin ? undefined : caller.extension.exte_id,
        phone: p.phoneNum,
        talk: p.talktime === undefined ? undefined : { op: p.talktimeSql === 1 ? "<" : ">", secs: p.talktime },
        fromMs,
        toMs,
        peer: p.cdrPeer,
        cdrId: p.scdrId,
        start: p.start ?? 0,
        limit
      })
      return { total, recordTotal: total, rows }
    })
  )
]


