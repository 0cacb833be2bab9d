/**
 * §2.1.3–2.1.4 — the desktop client (client 1) and the mobile app (client 2) of one
 * extension talk through the server: what one sends, the other receives by polling recvMsg
 * with the last waterLine it saw.
 */
import { SqlClient } from "@effect/sql"
import { Clock, Effect, Option } from "effect"
import { parseEmbeddedJson } from "../../schemas/Param.js"
import * as spec from "../../schemas/records.js"
import { NoPermission, NotFound, OverLimit } from "../api/Errors.js"
import { implement } from "../api/Implementation.js"
import { AppConfig } from "../config/AppConfig.js"
import { Outbox } from "../events/Outbox.js"
import { ExtensionsRepo } from "../extensions/ExtensionsRepo.js"
import type { Job } from "../jobs/Job.js"

const DEFAULT_LIMIT = 100

interface MessageRecord {
  readonly water_line: number
  readonly from_client: number
  readonly kind: number
  readonly phone: string
  readonly content: string
  readonly lon: number | null
  readonly lat: number | null
  readonly time_ms: number
}

/** For calls (kind 1/2) the content is a JS object (`{status:0,talkTimes:10}`): its fields are answered too. */
const callFields = (kind: number, content: string) => {
  if ((kind !== 1 && kind !== 2) || content.trim() === "") return {}
  const parsed = parseEmbeddedJson(content)
  if (!parsed.parsed || typeof parsed.value !== "object" || parsed.value === null) return {}
  const v = parsed.value as Record<string, unknown>
  const number = (x: unknown) => (typeof x === "number" ? x : typeof x === "string" && x.trim() !== "" && Number.isFinite(Number(x)) ? Number(x) : undefined)
  const status = number(v.status)
  const talkTimes = number(v.talkTimes)
  const cdrId = typeof v.cdrId === "number" || typeof v.cdrId === "string" ? v.cdrId : undefined
  return { ...(status !== undefined ? { status } : {}), ...(talkTimes !== undefined ? { talkTimes } : {}), ...(cdrId !== undefined ? { cdrId } : {}) }
}

const toMessage = (m: MessageRecord) => ({
  kind: String(m.kind),
  phone: m.phone,
  content: m.content,
  time: m.time_ms,
  waterLine: m.water_line,
  client: m.from_client,
  ...(m.lon !== null ? { lon: m.lon } : {}),
  ...(m.lat !== null ? { lat: m.lat } : {}),
  ...callFields(m.kind, m.content)
})

export interface NewMessage {
  readonly comp: string
  readonly extension: string
  /** 1 PC, 2 mobile; 0 the bridge itself (a reminder) */
  readonly fromClient: number
  readonly toClient: number
  readonly kind: number
  readonly phone: string
  readonly content: string
  readonly lon: number | null
  readonly lat: number | null
  readonly time: number
  readonly expiresAt: number | null
}

/**
 * Stores a message for one client of an extension, for its recvMsg; answers its waterLine.
 * Run inside the caller's transaction: one writer at a time (SQLite), so max+1 keeps the
 * stamps strictly increasing even within a millisecond.
 */
export const storeMessage = (m: NewMessage) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const now = yield* Clock.currentTimeMillis
    const last = (yield* sql<{ w: number | null }>`SELECT max(water_line) AS w FROM messages WHERE comp_number = ${m.comp} AND extension = ${m.extension}`)[0]?.w ?? 0
    const waterLine = Math.max(now, last + 1)
    yield* sql`INSERT INTO messages ${sql.insert({
      water_line: waterLine,
      comp_number: m.comp,
      extension: m.extension,
      from_client: m.fromClient,
      to_client: m.toClient,
      kind: m.kind,
      phone: m.phone,
      content: m.content,
      lon: m.lon,
      lat: m.lat,
      time_ms: m.time,
      expires_at: m.expiresAt
    })}`
    return waterLine
  })

export const handlers = [
  implement(spec.sendMsg, (p, caller) =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const outbox = yield* Outbox
      const comp = caller.enterprise.comp_number
      let extension = caller.extension.extension
      if (p.extension !== undefined && p.extension !== extension) {
        if (!caller.isAdmin) return yield* new NoPermission({ message: "only an enterprise administrator may send to another extension's clients" })
        const repo = yield* ExtensionsRepo
        const target = yield* repo.findByExtension(p.extension)
        if (Option.isNone(target) || target.value.comp_number !== comp)
          return yield* new NotFound({ message: `extension ${p.extension} does not exist` })
        extension = p.extension
      }
      const now = yield* Clock.currentTimeMillis
      const lostTime = p.lostTime ?? 0
      const content = p.content ?? ""
      return yield* sql.withTransaction(
        Effect.gen(function* () {
          const waterLine = yield* storeMessage({
            comp,
            extension,
            fromClient: p.client,
            toClient: p.client === 1 ? 2 : 1,
            kind: p.kind,
            phone: p.phone,
            content,
            lon: p.lon ?? null,
            lat: p.lat ?? null,
            time: p.time ?? now,
            expiresAt: lostTime > 0 ? now + lostTime * 1000 : null
          })
          yield* outbox.emit({
            type: "message.sent",
            enterprise: comp,
            source: "api:sendMsg",
            data: { extension, fromClient: p.client, kind: p.kind, phone: p.phone, content, time: p.time ?? now, waterLine, lostTime, ...(p.lon !== undefined ? { lon: p.lon } : {}), ...(p.lat !== undefined ? { lat: p.lat } : {}) }
          })
          return { waterLine }
        })
      )
    })
  ),

  implement(spec.recvMsg, (p, caller) =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const { limits } = yield* AppConfig
      const limit = p.limit ?? DEFAULT_LIMIT
      if (limit > limits.pageMax) return yield* new OverLimit({ message: `parameter limit: at most ${limits.pageMax}, got ${limit}` })
      const now = yield* Clock.currentTimeMillis
      const after = p.waterLine ?? 0
      const rows = yield* sql<MessageRecord>`SELECT water_line, from_client, kind, phone, content, lon, lat, time_ms FROM messages
        WHERE comp_number = ${caller.enterprise.comp_number} AND extension = ${caller.extension.extension}
          AND to_client = ${p.client} AND water_line > ${after} AND (expires_at IS NULL OR expires_at > ${now})
        ORDER BY water_line LIMIT CAST(${limit} AS INTEGER)`
      const msgs = rows.map(toMessage)
      return { msgs, waterLine: msgs.at(-1)?.waterLine ?? after }
    })
  )
]

/** Messages past their lostTime are never delivered; this removes them. */
export const purgeExpired: Job = {
  name: "messages.purge",
  schedule: "*/1 * * * *",
  run: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const now = yield* Clock.currentTimeMillis
    yield* sql`DELETE FROM messages WHERE expires_at IS NOT NULL AND expires_at <= ${now}`
  })
}
