/**
 * §2.1.5 recording upload, and recording download (§2.4.1): by path under /voip/record/ and
 * by call record id, as the original or as MP3 (transcoded once, then cached).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import type { SqlError } from "@effect/sql/SqlError"
import { Clock, Effect, Either, Exit, Schema, Scope } from "effect"
import * as P from "../../schemas/Param.js"
import { decodeFileName, uploadRecordFile } from "../../schemas/upload.js"
import { AlreadyExists, FileSaveFailed, InvalidParam, StorageFailed } from "../api/Errors.js"
import { Auth, type Caller } from "../auth/Auth.js"
import type { AppConfigShape } from "../config/AppConfig.js"
import { coded, type Endpoint, endpoint, type Failure, NO_PARAMS, type ResponseDoc, rest, type RouteRequest } from "../http/Endpoint.js"
import { type ByteBudget, type FileOptions, HttpRequestError, type Pairs, toRawParams, type UploadedFile } from "../http/Params.js"
import { type HttpAnswer, json } from "../http/Route.js"
import { Ids } from "../shared/Ids.js"
import { keyedLock } from "../shared/KeyedLock.js"
import { errnoCode } from "../shared/Errno.js"
import { isUniqueViolation } from "../shared/Sql.js"
import { formatLocal } from "../shared/Time.js"
import { clearLeftoversOnce, commitFile, contentTypeOf, mp3CacheDir, NAME_MAX_BYTES, recordDir, resolveInside, sanitizeName, type UploadBudgets, uploadBudgets, uploadTempDir } from "./Files.js"
import { RecordingsStore } from "./RecordingsStore.js"
import { Transcoder } from "./Transcoder.js"

const notFound = json({ code: -11, message: "recording does not exist" }, 404)

const inFlightBudgets = (config: AppConfigShape) => {
  clearLeftoversOnce(config, uploadTempDir(config.dataDir))
  return uploadBudgets(config)
}

const hasCredentials = (params: P.RawParams) => (params.sa_user !== undefined && params.sa_password !== undefined) || params.sessionId !== undefined

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
 * Where an upload's file parts go and what they may hold. Clients send their credentials
 * before the file: refused ones then cost no file bytes at all.
 */
const uploadFiles = (req: RouteRequest, config: AppConfigShape) =>
  Effect.gen(function* () {
    const auth = yield* Auth
    const budgets = inFlightBudgets(config)
    const scope = yield* Effect.scope
    const address = req.socket.remoteAddress ?? ""
    const options: FileOptions<Failure, never> = {
      maxBytes: config.recordings.maxUploadBytes,
      maxCount: 4,
      tempDir: uploadTempDir(config.dataDir),
      budget: budgets.authenticated,
      authorize: (sofar: Pairs): Effect.Effect<ByteBudget, Failure> => {
        const params = toRawParams(sofar)
        return hasCredentials(params) ? Effect.as(auth.authenticate(params, req.socket.remoteAddress), budgets.authenticated) : anonymousShare(budgets, address, scope)
      }
    }
    return options
  })

const upload = endpoint({
  id: "uploadRecordFile",
  summary: `${uploadRecordFile.title} (§${uploadRecordFile.section})`,
  description: "fileGsm 为文件（multipart/form-data）；sa_user/sa_password 或 sessionId 在 query 或文件之前的表单字段中。",
  tags: ["recordings"],
  paths: "/voip/api/upload_record_file.html",
  methods: ["POST"],
  auth: { kind: "credentials" },
  body: { kind: "files", fields: ["fileGsm"], options: uploadFiles },
  params: uploadRecordFile.params,
  answer: coded(uploadRecordFile.result, "编码的应答"),
  handler: ({ config, params: { fileName, fileMd5, isBase }, collected: { files }, caller }) =>
    Effect.gen(function* () {
      const file = files.find((f) => f.field === "fileGsm") ?? files[0]
      if (!file) return yield* new InvalidParam({ param: "fileGsm", problem: "is missing (the file part of the multipart body)" })
      const decodedName = decodeFileName(fileName, isBase)
      if (decodedName === undefined) return yield* new InvalidParam({ param: "fileName", problem: "expected Base64 (isBase is true)" })
      const name = sanitizeName(decodedName)
      if (name === undefined)
        return yield* new InvalidParam({ param: "fileName", problem: `is not a usable file name (at most ${NAME_MAX_BYTES} bytes of UTF-8, not . or ..): ${JSON.stringify(decodedName)}` })
      if (file.md5 !== fileMd5.toLowerCase()) return yield* new FileSaveFailed({ message: `fileMd5 does not match the file's content (got ${file.md5})` })
      return yield* store(caller, config, name, file)
    })
})

const saveFailed = (e: unknown) => new FileSaveFailed({ message: `the recording could not be saved (${errnoCode(e)})` })

const removeStored = (absolute: string) =>
  Effect.try({ try: () => fs.rmSync(absolute, { force: true }), catch: saveFailed }).pipe(
    Effect.catchAll((e) => Effect.logError("a recording whose row failed could not be removed", e.message))
  )

const storeNow = (caller: Caller, config: AppConfigShape, name: string, file: UploadedFile) =>
  Effect.gen(function* () {
    const recordings = yield* RecordingsStore
    const ids = yield* Ids
    const comp = caller.enterprise.comp_number
    const { md5, size } = file
    const existing = yield* recordings.named(comp, name)
    if (existing) {
      if (existing.md5 === md5) return { path: existing.rel_path, size: existing.size }
      return yield* new AlreadyExists({ message: `a different recording named ${name} exists already` })
    }
    const now = yield* Clock.currentTimeMillis
    const day = formatLocal(now, config.tz)
    const relPath = `${comp}/${day.slice(0, 4)}${day.slice(5, 7)}/${day.slice(8, 10)}/${name}`
    const absolute = path.join(recordDir(config.dataDir), relPath)
    const id = yield* ids.next
    const row = { id, comp_number: comp, file_name: name, rel_path: relPath, md5, size, content_type: contentTypeOf(name), uploaded_by: caller.extension.exte_id, created_at: now }
    const event = { type: "recording.uploaded" as const, enterprise: comp, source: "api:upload_record_file", data: { id, fileName: name, path: relPath, md5, size, extension: caller.extension.extension } }
    // from the rename on, the file and its row succeed or fail together: not interrupted half-way, and
    // whatever fails after the rename (an error, or a defect such as a COMMIT that found the disk full) removes the file
    return yield* Effect.uninterruptible(
      Effect.gen(function* () {
        yield* Effect.tryPromise({ try: () => commitFile(file.path, absolute, size), catch: saveFailed })
        yield* recordings.insert(row, event).pipe(
          Effect.catchAllDefect((defect) =>
            Effect.zipRight(Effect.logError("the recording's row could not be stored", defect), Effect.fail(new StorageFailed({ message: "the recording could not be recorded in storage" })))
          ),
          Effect.onExit((exit) => (Exit.isSuccess(exit) ? Effect.void : removeStored(absolute))),
          Effect.catchTag("SqlError", (e): Effect.Effect<never, AlreadyExists | SqlError> =>
            isUniqueViolation(e) ? Effect.fail(new AlreadyExists({ message: `a recording at ${relPath} exists already` })) : Effect.fail(e)
          )
        )
        return { path: relPath, size }
      })
    )
  })

/** Two uploads of one name in one enterprise must not interleave: the second would overwrite the first's file. */
const oneUploadPerName = keyedLock()

const store = (caller: Caller, config: AppConfigShape, name: string, file: UploadedFile) =>
  oneUploadPerName(`${caller.enterprise.comp_number}/${name}`, storeNow(caller, config, name, file))

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
const mayDownload = (caller: Caller, relative: string) => {
  // a recording belongs to an enterprise: its first segment
  if (!relative.startsWith(`${caller.enterprise.comp_number}/`)) return Effect.succeed(false)
  const own = ownCallsOf(caller)
  return own === undefined ? Effect.succeed(true) : Effect.flatMap(RecordingsStore, (recordings) => recordings.reachableByAgent(caller, own, relative))
}

const fileAnswer = (absolute: string, name: string): HttpAnswer => ({
  _tag: "File",
  path: absolute,
  headers: { "content-type": contentTypeOf(name), "content-disposition": `inline; filename*=UTF-8''${encodeURIComponent(name)}` }
})

const PREFIX = "/voip/record/"

const AUDIO = ["audio/wav", "audio/mpeg", "audio/gsm", "audio/amr", "audio/mp4", "audio/aac", "audio/ogg", "application/octet-stream"]
const audio = Object.fromEntries(AUDIO.map((type) => [type, Schema.String.annotations({ jsonSchema: { type: "string", contentMediaType: type } })]))
const fileResponses: Readonly<Record<string, ResponseDoc>> = {
  "200": { description: "the recording (Range requests answered 206)", content: audio },
  "206": { description: "part of the recording", content: audio },
  "404": { description: "no such recording, or not the caller's (one answer for both)", content: { "application/json": "coded" } }
}
/** Credentials as jsondata takes them, unless the client's address is opened by config (then every recording may be downloaded). */
const downloaders = { kind: "credentials", openTo: (config: AppConfigShape) => config.recordings.openTo } as const

const byPath = endpoint({
  id: "downloadRecordingByPath",
  summary: "录音下载（按路径）",
  description: "The path an upload answered (`path`): <企业号>/<yyyymm>/<dd>/<file>. An agent gets its own calls' recordings, an administrator the enterprise's.",
  tags: ["recordings"],
  paths: "/voip/record/{*rest}",
  documentedPath: "/voip/record/{enterprise}/{month}/{day}/{file}",
  methods: ["GET"],
  auth: downloaders,
  body: { kind: "none" },
  params: NO_PARAMS,
  answer: rest(fileResponses),
  handler: ({ req, config, caller }) =>
    Effect.gen(function* () {
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
})

const byCallRecord = endpoint({
  id: "downloadRecordingByCall",
  summary: "录音下载（按通话记录 ID，§2.4.1）",
  tags: ["recordings"],
  paths: "/voip/api/client/download/record.json",
  methods: ["GET"],
  auth: downloaders,
  body: { kind: "none" },
  params: Schema.Struct({
    id: P.doc("通话记录 ID（平台的或本地的）")(P.sentAs({ type: "string", pattern: "^\\d{1,20}$" })(P.idText)),
    ismp3: Schema.optional(P.doc("1: MP3（转码一次后缓存）")(P.sentAs({ type: "string", enum: ["0", "1"] })(P.text)))
  }),
  answer: rest({ ...fileResponses, "415": { description: "cannot be transcoded to MP3 (-13); ask with ismp3=0", content: { "application/json": "coded" } } }),
  handler: ({ config, params: { id, ismp3 }, caller }) =>
    Effect.gen(function* () {
      // another agent's call answers as an unknown id does
      const recording = yield* (yield* RecordingsStore).forCallRecord(id, caller, caller && ownCallsOf(caller))
      if (!recording) return notFound
      const original = resolveInside(recordDir(config.dataDir), recording.rel_path)
      if (!original) return notFound
      if (ismp3 !== "1" || recording.content_type === "audio/mpeg") return fileAnswer(original, recording.file_name)
      const mp3Name = `${recording.file_name.replace(/\.[^.]*$/, "")}.mp3`
      const cached = path.join(mp3CacheDir(config.dataDir), `${recording.rel_path}.mp3`)
      if (!fs.existsSync(cached)) {
        const converted = yield* Effect.either((yield* Transcoder).transcodeOnce(original, cached))
        if (Either.isLeft(converted)) {
          const e = converted.left
          if (e._tag === "UnsupportedAudio") return json({ code: -13, message: `${e.message}; ask with ismp3=0 for the original` }, 415)
          return yield* e
        }
      }
      return fileAnswer(cached, mp3Name)
    })
})

export const endpoints: ReadonlyArray<Endpoint> = [upload, byPath, byCallRecord]
