/**
 * §2.1.5 recording upload, and recording download (§2.4.1): by path under /voip/record/ and
 * by call record id, as the original or as MP3 (transcoded once, then cached).
 */
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Clock, Effect, Either, ParseResult, Schema } from "effect"
import type { RawParams } from "../../schemas/Param.js"
import { decodeFileName, uploadRecordFile } from "../../schemas/upload.js"
import { type ApiError, AlreadyExists, codeOf, FileSaveFailed, InvalidParam } from "../api/Errors.js"
import { toInvalidParam } from "../api/Implementation.js"
import { Auth, type Caller } from "../auth/Auth.js"
import { AppConfig } from "../config/AppConfig.js"
import { Outbox } from "../events/Outbox.js"
import { collect, queryPairs, toRawParams } from "../http/Params.js"
import { type HttpAnswer, json, type Route } from "../http/Route.js"
import { Ids } from "../shared/Ids.js"
import { keyedLock } from "../shared/KeyedLock.js"
import { allowList } from "../shared/Network.js"
import { isUniqueViolation } from "../shared/Sql.js"
import { formatLocal } from "../shared/Time.js"
import { contentTypeOf, mp3CacheDir, recordDir, resolveInside, sanitizeName, writeDurably } from "./Files.js"
import { UnsupportedAudio } from "./Transcode.js"
import { transcodeOnce } from "./Transcoder.js"

interface RecordingRecord {
  readonly id: number
  readonly comp_number: string
  readonly file_name: string
  readonly rel_path: string
  readonly md5: string
  readonly size: number
  readonly content_type: string
}

const coded = (e: ApiError) => json({ code: codeOf(e), message: e.message })
const notFound = json({ code: -11, message: "recording does not exist" }, 404)

const decodeUpload = Schema.decodeUnknownEither(uploadRecordFile.params as unknown as Schema.Schema<{ fileName: string; fileMd5: string; isBase?: boolean | undefined }, RawParams>, { errors: "first", onExcessProperty: "ignore" })

const upload: Route = {
  methods: ["POST"],
  path: "/voip/api/upload_record_file.html",
  handle: (req) =>
    Effect.gen(function* () {
      const config = yield* AppConfig
      const { pairs, files } = yield* collect(req, { bodyLimit: config.http.bodyLimitBytes, files: { maxBytes: config.recordings.maxUploadBytes, maxCount: 4 } })
      const params = toRawParams(pairs)
      const caller = yield* (yield* Auth).authenticate(params)
      const decoded = decodeUpload(params)
      if (Either.isLeft(decoded)) return yield* toInvalidParam(decoded.left as ParseResult.ParseError)
      const { fileName, fileMd5, isBase } = decoded.right
      const file = files.find((f) => f.field === "fileGsm") ?? files[0]
      if (!file) return yield* new InvalidParam({ param: "fileGsm", problem: "is missing (the file part of the multipart body)" })
      const decodedName = decodeFileName(fileName, isBase)
      if (decodedName === undefined) return yield* new InvalidParam({ param: "fileName", problem: "expected Base64 (isBase is true)" })
      const name = sanitizeName(decodedName)
      if (name === undefined) return yield* new InvalidParam({ param: "fileName", problem: `is not a usable file name: ${JSON.stringify(decodedName)}` })
      const md5 = crypto.createHash("md5").update(file.data).digest("hex")
      if (md5 !== fileMd5.toLowerCase()) return yield* new FileSaveFailed({ message: `fileMd5 does not match the file's content (got ${md5})` })
      return yield* store(caller, name, md5, file.data)
    })
}

const storeNow = (caller: Caller, name: string, md5: string, data: Buffer) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const config = yield* AppConfig
    const outbox = yield* Outbox
    const ids = yield* Ids
    const comp = caller.enterprise.comp_number
    const existing = (yield* sql<RecordingRecord>`SELECT * FROM recordings WHERE comp_number = ${comp} AND file_name = ${name}`)[0]
    if (existing) {
      if (existing.md5 === md5) return json({ code: 0, message: "OK", path: existing.rel_path, size: existing.size })
      return yield* new AlreadyExists({ message: `a different recording named ${name} exists already` })
    }
    const now = yield* Clock.currentTimeMillis
    const day = formatLocal(now, config.tz)
    const relPath = `${comp}/${day.slice(0, 4)}${day.slice(5, 7)}/${day.slice(8, 10)}/${name}`
    const absolute = path.join(recordDir(config.dataDir), relPath)
    yield* Effect.try({
      try: () => writeDurably(absolute, data),
      catch: (e) => new FileSaveFailed({ message: `the recording could not be saved: ${e instanceof Error ? e.message : String(e)}` })
    })
    const id = yield* ids.next
    const row = { id, comp_number: comp, file_name: name, rel_path: relPath, md5, size: data.length, content_type: contentTypeOf(name), uploaded_by: caller.extension.exte_id, created_at: now }
    yield* sql
      .withTransaction(
        Effect.zipRight(
          sql`INSERT INTO recordings ${sql.insert(row)}`,
          outbox.emit({ type: "recording.uploaded", enterprise: comp, source: "api:upload_record_file", data: { id, fileName: name, path: relPath, md5, size: data.length, extension: caller.extension.extension } })
        )
      )
      // nothing half-way: a file whose row could not be written is removed again
      .pipe(
        Effect.tapError(() => Effect.sync(() => fs.rmSync(absolute, { force: true }))),
        Effect.catchTag("SqlError", (e): Effect.Effect<never, AlreadyExists | SqlError> =>
          isUniqueViolation(e) ? Effect.fail(new AlreadyExists({ message: `a recording at ${relPath} exists already` })) : Effect.fail(e)
        )
      )
    return json({ code: 0, message: "OK", path: relPath, size: data.length })
  })

/** Two uploads of one name in one enterprise must not interleave: the second would overwrite the first's file. */
const oneUploadPerName = keyedLock()

const store = (caller: Caller, name: string, md5: string, data: Buffer) =>
  oneUploadPerName(`${caller.enterprise.comp_number}/${name}`, storeNow(caller, name, md5, data))

/**
 * Credentials as jsondata takes them, unless the client's address is opened by config
 * (then `caller` is undefined and every recording may be downloaded).
 */
const downloader = (req: Parameters<Route["handle"]>[0]) =>
  Effect.gen(function* () {
    const config = yield* AppConfig
    const params = toRawParams(queryPairs(req.url ?? ""))
    if (allowList(config.recordings.openTo)(req.socket.remoteAddress)) return { params, caller: undefined }
    const caller = yield* (yield* Auth).authenticate(params)
    return { params, caller }
  })

/**
 * findDialrecord's visibility, applied to downloads: an administrator sees the enterprise's
 * calls, an agent only its own — the extension a call is restricted to, or undefined for all.
 */
const ownCallsOf = (caller: Caller): string | undefined => (caller.isAdmin ? undefined : caller.extension.extension)

/**
 * May `caller` download the file at `relative` (under the record directory)? An admin: any
 * file of its enterprise. An agent: a recording it uploaded, or one a call of its own names;
 * a file without a recordings row is nobody's call, so admin only.
 */
const mayDownload = (caller: Caller, relative: string) =>
  Effect.gen(function* () {
    const comp = caller.enterprise.comp_number
    // a recording belongs to an enterprise: its first segment
    if (!relative.startsWith(`${comp}/`)) return false
    const own = ownCallsOf(caller)
    if (own === undefined) return true
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ ok: number }>`SELECT 1 AS ok FROM recordings r WHERE r.comp_number = ${comp} AND r.rel_path = ${relative}
      AND (r.uploaded_by = ${caller.extension.exte_id}
        OR EXISTS (SELECT 1 FROM cdrs c WHERE c.comp_number = r.comp_number AND c.record_file = r.file_name AND c.extension = ${own}))`
    return rows.length > 0
  })

const fileAnswer = (absolute: string, name: string): HttpAnswer => ({
  _tag: "File",
  path: absolute,
  headers: { "content-type": contentTypeOf(name), "content-disposition": `inline; filename*=UTF-8''${encodeURIComponent(name)}` }
})

const PREFIX = "/voip/record/"

const byPath: Route = {
  methods: ["GET"],
  path: "/voip/record/{*rest}",
  handle: (req) =>
    Effect.gen(function* () {
      const config = yield* AppConfig
      const { caller } = yield* downloader(req)
      const raw = (req.url ?? "").split("?")[0]!.slice(PREFIX.length)
      let relative: string
      try {
        relative = decodeURIComponent(raw)
      } catch {
        return json({ code: -14, message: "malformed path" }, 400)
      }
      // one answer for "not yours" and "not there": a download does not reveal what exists
      if (caller !== undefined && !(yield* mayDownload(caller, relative))) return notFound
      const absolute = resolveInside(recordDir(config.dataDir), relative)
      return absolute ? fileAnswer(absolute, path.basename(absolute)) : notFound
    })
}

const byCallRecord: Route = {
  methods: ["GET"],
  path: "/voip/api/client/download/record.json",
  handle: (req) =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const config = yield* AppConfig
      const { params, caller } = yield* downloader(req)
      const id = typeof params.id === "string" ? params.id.trim() : undefined
      if (!id || !/^\d{1,20}$/.test(id)) return coded(new InvalidParam({ param: "id", problem: id ? `expected a call record id, got ${JSON.stringify(id)}` : "is missing" }))
      const asNumber = Number(id)
      const own = caller && ownCallsOf(caller)
      const rows = yield* sql<RecordingRecord>`SELECT r.* FROM cdrs c JOIN recordings r ON r.comp_number = c.comp_number AND r.file_name = c.record_file
        WHERE (c.platform_cdr_id = ${id} ${Number.isSafeInteger(asNumber) ? sql`OR c.cdr_id = ${asNumber}` : sql``})
        ${caller !== undefined ? sql`AND c.comp_number = ${caller.enterprise.comp_number}` : sql``}
        ${own !== undefined ? sql`AND c.extension = ${own}` : sql``} LIMIT 1`
      const recording = rows[0]
      // another agent's call answers as an unknown id does
      if (!recording) return notFound
      const original = resolveInside(recordDir(config.dataDir), recording.rel_path)
      if (!original) return notFound
      if (params.ismp3 !== "1" || recording.content_type === "audio/mpeg") return fileAnswer(original, recording.file_name)
      const mp3Name = `${recording.file_name.replace(/\.[^.]*$/, "")}.mp3`
      const cached = path.join(mp3CacheDir(config.dataDir), `${recording.rel_path}.mp3`)
      if (!fs.existsSync(cached)) {
        const converted = yield* Effect.either(transcodeOnce(original, cached))
        if (Either.isLeft(converted)) {
          const e = converted.left
          return e instanceof UnsupportedAudio ? json({ code: -13, message: `${e.message}; ask with ismp3=0 for the original` }, 415) : coded(e)
        }
      }
      return fileAnswer(cached, mp3Name)
    })
}

export const routes: ReadonlyArray<Route> = [upload, byPath, byCallRecord]
