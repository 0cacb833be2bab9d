/**
 * §2.12.1–2.12.8 as HTTP: each method at `/voip/workordermanager/<Name>.json` and, as the
 * contract's own links have it, `/voip/workordermanagernew/<Name>.json`, GET and POST; the
 * attachment upload at `/voip/manage/workorderattachment/upload.json` and its files at
 * `/voip/workorderattachment/<path>` (the `waPath` GetWorkInfoFile answers), with the same auth.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Clock, Effect, Exit, type Schema } from "effect"
import * as spec from "../../schemas/workorder.js"
import type { AnyMethodSpec, ParamsOf, ResultOf } from "../../schemas/Method.js"
import * as P from "../../schemas/Param.js"
import { AuthFailed, FileSaveFailed, InvalidParam, StorageFailed } from "../api/Errors.js"
import { Auth, type Caller } from "../auth/Auth.js"
import type { AppServices } from "../AppServices.js"
import type { AppConfigShape } from "../config/AppConfig.js"
import { coded, type Endpoint, endpoint, type Failure, NO_PARAMS, type ParamsSchema, rest, type RouteRequest } from "../http/Endpoint.js"
import type { FileOptions, Pairs, UploadedFile } from "../http/Params.js"
import { toRawParams } from "../http/Params.js"
import { type HttpAnswer, json } from "../http/Route.js"
import { clearLeftoversOnce, commitFile, resolveInside, sanitizeName, uploadBudgets, uploadTempDir } from "../recordings/Files.js"
import { Ids } from "../shared/Ids.js"
import { errnoCode } from "../shared/Errno.js"
import * as H from "./handlers.js"
import { WorkOrdersStore } from "./WorkOrdersStore.js"

const credentials = { kind: "credentials" } as const

/** One work-order method: both of the contract's paths, GET and POST, its params and answer from the spec. */
const method = <M extends AnyMethodSpec>(s: M, handler: (params: ParamsOf<M>, caller: Caller) => Effect.Effect<ResultOf<M>, Failure, AppServices>) =>
  endpoint({
    id: `workorder_${s.name}`,
    summary: `${s.title} (§${s.section})`,
    description: "sessionId（getExtension 应答中的）或 sa_user/sa_password。",
    tags: ["workorders"],
    paths: [`/voip/workordermanager/${s.name}.json`, `/voip/workordermanagernew/${s.name}.json`],
    methods: ["GET", "POST"],
    auth: credentials,
    body: { kind: "form" },
    // contract schemas never need services; the generic Fields type cannot show that (as in Implementation.ts)
    params: s.params as unknown as ParamsSchema<ParamsOf<M>, Readonly<Record<string, unknown>>>,
    answer: coded(s.result as unknown as Schema.Schema<ResultOf<M>, Readonly<Record<string, unknown>>> & { readonly fields: Schema.Struct.Fields }, "编码的应答"),
    handler: ({ params, caller }) => handler(params, caller)
  })

/** Where attachments live: one directory per enterprise and work order, files named by their id. */
export const attachmentDir = (dataDir: string) => path.join(dataDir, "workorder")

/** An extension worth keeping on the stored name (the content type is told by it); anything else is dropped. */
const safeExtension = (name: string) => {
  const ext = path.extname(name).toLowerCase()
  return /^\.[a-z0-9]{1,10}$/.test(ext) ? ext : ""
}

const TYPES: Record<string, string> = {
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".png": "image/png",
  ".gif": "image/gif",
  ".webp": "image/webp",
  ".pdf": "application/pdf",
  ".txt": "text/plain; charset=utf-8",
  ".wav": "audio/wav",
  ".mp3": "audio/mpeg"
}

/** Credentials come before the file (query or earlier form fields): a refused upload costs no file bytes. */
const uploadFiles = (req: RouteRequest, config: AppConfigShape) =>
  Effect.gen(function* () {
    const auth = yield* Auth
    clearLeftoversOnce(config, uploadTempDir(config.dataDir))
    const budget = uploadBudgets(config).authenticated
    const options: FileOptions<Failure, never> = {
      maxBytes: config.workorders.attachmentMaxBytes,
      maxCount: 1,
      tempDir: uploadTempDir(config.dataDir),
      budget,
      authorize: (sofar: Pairs) => {
        const params = toRawParams(sofar)
        const given = (params.sa_user !== undefined && params.sa_password !== undefined) || params.sessionId !== undefined
        return given
          ? Effect.as(auth.authenticate(params, req.socket.remoteAddress), budget)
          : Effect.fail(new AuthFailed({ message: "authentication failed: send sessionId (or sa_user and sa_password) in the query or before the file" }))
      }
    }
    return options
  })

const saveFailed = (e: unknown) => new FileSaveFailed({ message: `the attachment could not be saved (${errnoCode(e)})` })

const storeAttachment = (caller: Caller, config: AppConfigShape, woIdText: string, file: UploadedFile) =>
  Effect.gen(function* () {
    const wo = yield* H.workOrderOf(caller, woIdText)
    const store = yield* WorkOrdersStore
    const waId = yield* (yield* Ids).next
    const now = yield* Clock.currentTimeMillis
    // the name as the client had it, reduced to a plain file name, is only ever shown; the stored name is the id
    const name = sanitizeName(file.filename) ?? `attachment${safeExtension(file.filename)}`
    const relPath = `${caller.enterprise.comp_number}/${wo.wo_id}/${waId}${safeExtension(name)}`
    const absolute = path.join(attachmentDir(config.dataDir), relPath)
    // the file and its row succeed or fail together
    return yield* Effect.uninterruptible(
      Effect.gen(function* () {
        yield* Effect.tryPromise({ try: () => commitFile(file.path, absolute, file.size, { replace: false }), catch: saveFailed })
        yield* store
          .insertAttachment({ wa_id: waId, wo_id: wo.wo_id, comp_number: caller.enterprise.comp_number, name, rel_path: relPath, size: file.size, md5: file.md5, uploaded_by: caller.extension.exte_id, created_ms: now })
          .pipe(
            Effect.catchAllDefect((defect) => Effect.zipRight(Effect.logError("an attachment's row could not be stored", defect), Effect.fail(new StorageFailed({ message: "the attachment could not be recorded in storage" })))),
            Effect.onExit((exit) =>
              Exit.isSuccess(exit)
                ? Effect.void
                : Effect.tryPromise(() => fs.promises.rm(absolute, { force: true })).pipe(
                    Effect.catchAll((e) => Effect.logError("an attachment whose row failed could not be removed", e))
                  )
            )
          )
        return { waName: name, waPath: H.attachmentUrl(relPath) }
      })
    )
  })

const upload = endpoint({
  id: "workorder_upload",
  summary: `${spec.upload.title} (§${spec.upload.section})`,
  description: "file 为文件（multipart/form-data）；sessionId（或 sa_user/sa_password）与 woId 在 query 或文件之前的表单字段中。",
  tags: ["workorders"],
  paths: "/voip/manage/workorderattachment/upload.json",
  methods: ["POST"],
  auth: credentials,
  body: { kind: "files", fields: ["file"], options: uploadFiles },
  params: spec.upload.params,
  answer: coded(spec.upload.result, "编码的应答"),
  handler: ({ config, params: { woId }, collected: { files }, caller }) =>
    Effect.gen(function* () {
      const file = files.find((f) => f.field === "file") ?? files[0]
      if (!file) return yield* new InvalidParam({ param: "file", problem: "is missing (the file part of the multipart body)" })
      return yield* storeAttachment(caller, config, woId, file)
    })
})

const notFound = json({ code: -11, message: "attachment does not exist" }, 404)

const download = endpoint({
  id: "workorder_attachment",
  summary: "工单附件下载（GetWorkInfoFile 的 waPath）",
  tags: ["workorders"],
  paths: `${H.ATTACHMENT_PREFIX}{*rest}`,
  documentedPath: `${H.ATTACHMENT_PREFIX}{enterprise}/{woId}/{file}`,
  methods: ["GET"],
  auth: credentials,
  body: { kind: "none" },
  params: NO_PARAMS,
  answer: rest({
    "200": { description: "the attachment", content: { "application/octet-stream": P.doc("the file")(P.text) } },
    "404": { description: "no such attachment, or not the caller's (one answer for both)", content: { "application/json": "coded" } }
  }),
  handler: ({ req, config, caller }): Effect.Effect<HttpAnswer, Failure, AppServices> =>
    Effect.gen(function* () {
      let relative: string
      try {
        relative = decodeURIComponent((req.url ?? "").split("?")[0]!.slice(H.ATTACHMENT_PREFIX.length))
      } catch {
        return json({ code: -14, message: "malformed path" }, 400)
      }
      const store = yield* WorkOrdersStore
      const row = yield* store.attachmentAt(relative)
      // one answer for "not yours" and "not there"
      if (row === undefined || row.comp_number !== caller.enterprise.comp_number) return notFound
      const wo = yield* store.find(row.comp_number, row.wo_id)
      if (wo === undefined || !(yield* store.visible(wo, caller.isAdmin ? undefined : caller.extension.exte_id))) return notFound
      const absolute = resolveInside(attachmentDir(config.dataDir), relative)
      if (absolute === undefined) return notFound
      return {
        _tag: "File",
        path: absolute,
        headers: {
          "content-type": TYPES[path.extname(absolute)] ?? "application/octet-stream",
          "content-disposition": `attachment; filename*=UTF-8''${encodeURIComponent(row.name)}`,
          "x-content-type-options": "nosniff"
        }
      } satisfies HttpAnswer
    })
})

export const endpoints: ReadonlyArray<Endpoint> = [
  method(spec.GetWorkOrderType, H.getWorkOrderType),
  method(spec.GetWorkOrderStep, H.getWorkOrderStep),
  method(spec.GetDeptPersonTree, H.getDeptPersonTree),
  method(spec.loadWorkCode, H.loadWorkCode),
  method(spec.GetWorkList, H.getWorkList),
  method(spec.UpdateWorkOrder, H.updateWorkOrder),
  method(spec.GetWorkInfoFile, H.getWorkInfoFile),
  upload,
  download
]
