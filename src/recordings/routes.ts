/**
 * §2.1.5 recording upload, and recording download (§2.4.1): by path under /voip/record/ and
 * by call record id, as the original or as MP3 (transcoded once, then cached).
 */
import * as fs from "node:fs"
import type { IncomingMessage } from "node:http"
import * as path from "node:path"
import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Clock, Effect, Either, Exit, ParseResult, Schema, Scope } from "effect"
import type { RawParams } from "../../schemas/Param.js"
import { decodeFileName, uploadRecordFile } from "../../schemas/upload.js"
import { type ApiError, AlreadyExists, codeOf, FileSaveFailed, InvalidParam, StorageFailed } from "../api/Errors.js"
import { toInvalidParam } from "../api/Implementation.js"
import { Auth, type Caller } from "../auth/Auth.js"
import { AppConfig, type AppConfigShape } from "../config/AppConfig.js"
import { Outbox } from "../events/Outbox.js"
import { type ByteBudget, collect, HttpRequestError, queryPairs, toRawParams, type UploadedFile } from "../http/Params.js"
import { type HttpAnswer, json, type Route } from "../http/Route.js"
import { Ids } from "../shared/Ids.js"
import { keyedLock } from "../shared/KeyedLock.js"
import { errnoCode } from "../shared/Errno.js"
import { allowList } from "../shared/Network.js"
import { isUniqueViolation } from "../shared/Sql.js"
import { formatLocal } from "../shared/Time.js"
import { byteBudget, commitFile, contentTypeOf, mp3CacheDir, NAME_MAX_BYTES, recordDir, resolveInside, sanitizeName, uploadTempDir } from "./Files.js"
import { reachableThroughCall } from "./Access.js"
import { Transcoder } from "./Transcoder.js"

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

/**
 * Bytes of uploads being received, per running bridge (its config), across its requests. An
 * upload whose credentials come after its file is read before anyone knows who sent it: those
 * draw from a share of their own, one at a time per address, so bytes from anyone can never
 * hold what authenticated uploads need.
 */
interface UploadBudgets {
  /** uploads whose credentials came before their file (checked before a byte of it is read) */
  readonly authenticated: ByteBudget
  readonly anonymous: ByteBudget
  /** addresses with an anonymous upload in progress */
  readonly anonymousFrom: Set<string>
}

/** The part of recordings.maxInFlightBytes uploads that have not yet shown their credentials may hold. */
const ANONYMOUS_SHARE = 1 / 8

const inFlight = new WeakMap<AppConfigShape, UploadBudgets>()
const inFlightBudgets = (config: AppConfigShape) => {
  let budgets = inFlight.get(config)
  if (!budgets) {
    // the bridge's first upload: one bridge owns a data directory, so what is in its tmp now was left by an earlier run that died
    fs.rmSync(uploadTempDir(config.dataDir), { recursive: true, force: true })
    const { maxInFlightBytes } = config.recordings
    const share = Math.max(1, Math.floor(maxInFlightBytes * ANONYMOUS_SHARE))
    budgets = {
      authenticated: byteBudget(maxInFlightBytes),
      anonymous: byteBudget(share, `too many uploads without credentials before their file are in progress (${share} bytes at most); send sa_user and sa_password or sessionId before the file, or try again later`),
      anonymousFrom: new Set()
    }
    inFlight.set(config, budgets)
  }
  return budgets
}

const hasCredentials = (params: RawParams) => (params.sa_user !== undefined && params.sa_password !== undefined) || params.sessionId !== undefined

/** The anonymous share for this request, held by its address until the request's scope closes. */
const anonymousShare = (budgets: UploadBudgets, address: string, scope: Scope.Scope) =>
  // checked, taken and its release registered in one step: an interruption cannot strand the address's slot
  Effect.uninterruptible(
    Effect.suspend(() => {
      if (budgets.anonymousFrom.has(address))
        return Effect.fail(
          new HttpRequestError({
            status: 503,
            code: -12,
            message: "an upload from this address without credentials before its file is in progress; send sa_user and sa_password or sessionId before the file, or try again later"
          })
        )
      budgets.anonymousFrom.add(address)
      return Effect.as(Scope.addFinalizer(scope, Effect.sync(() => budgets.anonymousFrom.delete(address))), budgets.anonymous)
    })
  )

/**
 * An answer given before the body was read through (refused credentials, a limit) closes the
 * connection after it is sent: the rest of the body is not worth receiving.
 */
const closingUnread = (req: IncomingMessage) =>
  Effect.catchAll((e: ApiError | SqlError | HttpRequestError): Effect.Effect<HttpAnswer, ApiError | SqlError | HttpRequestError> => {
    if (req.complete || e._tag === "SqlError") return Effect.fail(e)
    const close = { connection: "close" }
    return Effect.succeed(e._tag === "HttpRequestError" ? json({ code: e.code, message: e.message }, e.status, close) : json({ code: codeOf(e), message: e.message }, 200, close))
  })

const receive = (req: IncomingMessage) =>
  Effect.gen(function* () {
    const config = yield* AppConfig
    const auth = yield* Auth
    const budgets = inFlightBudgets(config)
    const scope = yield* Effect.scope
    const address = req.socket.remoteAddress ?? ""
    const { pairs, files } = yield* collect(req, {
      bodyLimit: config.http.bodyLimitBytes,
      files: {
        maxBytes: config.recordings.maxUploadBytes,
        maxCount: 4,
        tempDir: uploadTempDir(config.dataDir),
        budget: budgets.authenticated,
        // clients send their credentials before the file: refused ones then cost no file bytes at all
        authorize: (sofar): Effect.Effect<ByteBudget, ApiError | SqlError | HttpRequestError> => {
          const params = toRawParams(sofar)
          return hasCredentials(params) ? Effect.as(auth.authenticate(params, req.socket.remoteAddress), budgets.authenticated) : anonymousShare(budgets, address, scope)
        }
      }
    })
    const params = toRawParams(pairs)
    const caller = yield* auth.authenticate(params, req.socket.remoteAddress)
    const decoded = decodeUpload(params)
    if (Either.isLeft(decoded)) return yield* toInvalidParam(decoded.left as ParseResult.ParseError)
    const { fileName, fileMd5, isBase } = decoded.right
    const file = files.find((f) => f.field === "fileGsm") ?? files[0]
    if (!file) return yield* new InvalidParam({ param: "fileGsm", problem: "is missing (the file part of the multipart body)" })
    const decodedName = decodeFileName(fileName, isBase)
    if (decodedName === undefined) return yield* new InvalidParam({ param: "fileName", problem: "expected Base64 (isBase is true)" })
    const name = sanitizeName(decodedName)
    if (name === undefined)
      return yield* new InvalidParam({ param: "fileName", problem: `is not a usable file name (at most ${NAME_MAX_BYTES} bytes of UTF-8, not . or ..): ${JSON.stringify(decodedName)}` })
    if (file.md5 !== fileMd5.toLowerCase()) return yield* new FileSaveFailed({ message: `fileMd5 does not match the file's content (got ${file.md5})` })
    return yield* store(caller, name, file)
  })

const upload: Route = {
  methods: ["POST"],
  path: "/voip/api/upload_record_file.html",
  // the scope holds the upload's temporary file: removed on every way out, moved into place or not
  handle: (req) => receive(req).pipe(Effect.scoped, closingUnread(req))
}

const saveFailed = (e: unknown) => new FileSaveFailed({ message: `the recording could not be saved (${errnoCode(e)})` })

const removeStored = (absolute: string) =>
  Effect.try({ try: () => fs.rmSync(absolute, { force: true }), catch: saveFailed }).pipe(
    Effect.catchAll((e) => Effect.logError("a recording whose row failed could not be removed", e.message))
  )

const storeNow = (caller: Caller, name: string, file: UploadedFile) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const config = yield* AppConfig
    const outbox = yield* Outbox
    const ids = yield* Ids
    const comp = caller.enterprise.comp_number
    const { md5, size } = file
    const existing = (yield* sql<RecordingRecord>`SELECT * FROM recordings WHERE comp_number = ${comp} AND file_name = ${name}`)[0]
    if (existing) {
      if (existing.md5 === md5) return json({ code: 0, message: "OK", path: existing.rel_path, size: existing.size })
      return yield* new AlreadyExists({ message: `a different recording named ${name} exists already` })
    }
    const now = yield* Clock.currentTimeMillis
    const day = formatLocal(now, config.tz)
    const relPath = `${comp}/${day.slice(0, 4)}${day.slice(5, 7)}/${day.slice(8, 10)}/${name}`
    const absolute = path.join(recordDir(config.dataDir), relPath)
    const id = yield* ids.next
    const row = { id, comp_number: comp, file_name: name, rel_path: relPath, md5, size, content_type: contentTypeOf(name), uploaded_by: caller.extension.exte_id, created_at: now }
    // from the rename on, the file and its row succeed or fail together: not interrupted half-way, and
    // whatever fails after the rename (an error, or a defect such as a COMMIT that found the disk full) removes the file
    return yield* Effect.uninterruptible(
      Effect.gen(function* () {
        yield* Effect.try({ try: () => commitFile(file.path, absolute, size), catch: saveFailed })
        yield* sql
          .withTransaction(
            Effect.zipRight(
              sql`INSERT INTO recordings ${sql.insert(row)}`,
              outbox.emit({ type: "recording.uploaded", enterprise: comp, source: "api:upload_record_file", data: { id, fileName: name, path: relPath, md5, size, extension: caller.extension.extension } })
            )
          )
          .pipe(
            Effect.catchAllDefect((defect) =>
              Effect.zipRight(Effect.logError("the recording's row could not be stored", defect), Effect.fail(new StorageFailed({ message: "the recording could not be recorded in storage" })))
            ),
            Effect.onExit((exit) => (Exit.isSuccess(exit) ? Effect.void : removeStored(absolute))),
            Effect.catchTag("SqlError", (e): Effect.Effect<never, AlreadyExists | SqlError> =>
              isUniqueViolation(e) ? Effect.fail(new AlreadyExists({ message: `a recording at ${relPath} exists already` })) : Effect.fail(e)
            )
          )
        return json({ code: 0, message: "OK", path: relPath, size })
      })
    )
  })

/** Two uploads of one name in one enterprise must not interleave: the second would overwrite the first's file. */
const oneUploadPerName = keyedLock()

const store = (caller: Caller, name: string, file: UploadedFile) =>
  oneUploadPerName(`${caller.enterprise.comp_number}/${name}`, storeNow(caller, name, file))

/**
 * Credentials as jsondata takes them, unless the client's address is opened by config
 * (then `caller` is undefined and every recording may be downloaded).
 */
const downloader = (req: Parameters<Route["handle"]>[0]) =>
  Effect.gen(function* () {
    const config = yield* AppConfig
    const params = toRawParams(queryPairs(req.url ?? ""))
    if (allowList(config.recordings.openTo)(req.socket.remoteAddress)) return { params, caller: undefined }
    const caller = yield* (yield* Auth).authenticate(params, req.socket.remoteAddress)
    return { params, caller }
  })

/**
 * findDialrecord's visibility, applied to downloads: an administrator sees the enterprise's
 * calls, an agent only its own — the extension a call is restricted to, or undefined for all.
 */
const ownCallsOf = (caller: Caller): string | undefined => (caller.isAdmin ? undefined : caller.extension.extension)

/**
 * May `caller` download the file at `relative` (under the record directory)? An admin: any
 * file of its enterprise. An agent: a recording it uploaded, or one a call of its own names
 * unless another agent uploaded it (Access.ts); a file without a recordings row is nobody's
 * call, so admin only.
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
        OR (${reachableThroughCall(sql, caller.extension.exte_id)}
          AND EXISTS (SELECT 1 FROM cdrs c WHERE c.comp_number = r.comp_number AND c.record_file = r.file_name AND c.extension = ${own})))`
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
        ${caller !== undefined && own !== undefined ? sql`AND c.extension = ${own} AND ${reachableThroughCall(sql, caller.extension.exte_id)}` : sql``} LIMIT 1`
      const recording = rows[0]
      // another agent's call answers as an unknown id does
      if (!recording) return notFound
      const original = resolveInside(recordDir(config.dataDir), recording.rel_path)
      if (!original) return notFound
      if (params.ismp3 !== "1" || recording.content_type === "audio/mpeg") return fileAnswer(original, recording.file_name)
      const mp3Name = `${recording.file_name.replace(/\.[^.]*$/, "")}.mp3`
      const cached = path.join(mp3CacheDir(config.dataDir), `${recording.rel_path}.mp3`)
      if (!fs.existsSync(cached)) {
        const converted = yield* Effect.either((yield* Transcoder).transcodeOnce(original, cached))
        if (Either.isLeft(converted)) {
          const e = converted.left
          return e._tag === "UnsupportedAudio" ? json({ code: -13, message: `${e.message}; ask with ismp3=0 for the original` }, 415) : coded(e)
        }
      }
      return fileAnswer(cached, mp3Name)
    })
}

export const routes: ReadonlyArray<Route> = [upload, byPath, byCallRecord]
