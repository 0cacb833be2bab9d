/**
 * `GET /openapi.json`, generated from the contract's schemas (OpenAPI 3.1), for what this
 * bridge serves and nothing else.
 *
 * jsondata methods share one URL and differ by `method=`, which OpenAPI cannot key a path
 * on. So `/voip/api/jsondata.html` is one operation per verb: `method` an enum of the
 * implemented methods, the parameters of all of them (optional: which are required depends
 * on `method`), the answer any method's answer or a coded failure. Each method's precise
 * shape is in the operation's `x-jsondata-methods` and in its own document,
 * `/openapi.json?method=<name>`, where the same operations take only that method.
 */
import { JSONSchema, Schema } from "effect"
import { adminOpenApi } from "../admin/Api.js"
import { methods } from "../../schemas/index.js"
import * as push from "../../schemas/push.js"
import { uploadRecordFile } from "../../schemas/upload.js"
import { type AnyMethodSpec, descriptionOf } from "../../schemas/Method.js"
import { implementationsByName } from "../api/methods.js"
import type { AppConfigShape } from "../config/AppConfig.js"
import { receivers } from "../receive/receivers.js"

type Json = Record<string, unknown>
type Struct = Schema.Schema.Any & { readonly fields: Schema.Struct.Fields }

const CODES_DESCRIPTION =
  "0 成功; -1 网络错误; -2 验证错误; -3 方法内部错误（含未知方法）; -5 没有权限; -6 SQL 语句执行错误; -10 数据已经存在; -11 数据不存在; -12 超过最大值错误; -13 文件保存失败; -14 验证组错误（message 指出参数）"

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` })
const responseRef = (name: string) => ({ $ref: `#/components/responses/${name}` })

/** Effect marks some schemas (unknown, {}) with an `$id`; repeated inline they would clash, and nothing refers to them. */
const withoutIds = (value: unknown): unknown =>
  Array.isArray(value)
    ? value.map(withoutIds)
    : typeof value === "object" && value !== null
      ? Object.fromEntries(Object.entries(value).filter(([k]) => k !== "$id").map(([k, v]) => [k, withoutIds(v)]))
      : value

/** JSON Schemas of Effect schemas; named ones land in `definitions`, to be `components.schemas`. */
const converter = () => {
  const definitions: Record<string, JSONSchema.JsonSchema7> = {}
  const schemaOf = (schema: Schema.Schema.Any) =>
    withoutIds(JSONSchema.fromAST(schema.ast, { definitions, definitionPath: "#/components/schemas/", target: "openApi3.1", additionalPropertiesStrategy: "allow" })) as Json
  const structOf = (schema: Struct): Json => {
    // an empty Struct means "any object" to Effect; for an answer with no extra fields say exactly that
    if (Object.keys(schema.fields).length === 0) return { type: "object", properties: {} }
    const clean = schemaOf(schema)
    const properties = (clean.properties ?? {}) as Record<string, Json>
    for (const [name, field] of Object.entries(schema.fields)) {
      const description = descriptionOf(field)
      if (description && properties[name]) properties[name] = { ...properties[name], description }
    }
    return clean
  }
  /**
   * Parameters are documented as what they decode to (`1` for an integer, not "a string"),
   * except a JSON-valued one: it decodes to an object but is sent as JSON text (in a JSON
   * body it may also be the object itself).
   */
  const typeOf = (struct: Struct) => {
    const out = structOf(Object.assign(Schema.typeSchema(struct), { fields: struct.fields }))
    const properties = (out.properties ?? {}) as Record<string, Json>
    for (const [name, schema] of Object.entries(properties))
      if (schema.type === "object")
        properties[name] = { anyOf: [JSON_TEXT, { type: "object" }], ...(typeof schema.description === "string" ? { description: schema.description } : {}) }
    return out
  }
  return { definitions, schemaOf, structOf, typeOf }
}

const JSON_TEXT = { type: "string", contentMediaType: "application/json" }

/** A query string carries JSON only as text. */
const queryParameters = (object: Json, description?: (name: string, schema: Json) => string | undefined) => {
  const required = new Set((object.required ?? []) as ReadonlyArray<string>)
  return Object.entries((object.properties ?? {}) as Record<string, Json>).map(([name, schema]) => {
    const text = description?.(name, schema) ?? (typeof schema.description === "string" ? schema.description : undefined)
    const inQuery = Array.isArray(schema.anyOf) && schema.anyOf.includes(JSON_TEXT) ? { ...JSON_TEXT, ...(text ? { description: text } : {}) } : schema
    return { name, in: "query", required: required.has(name), ...(text ? { description: text } : {}), schema: inQuery }
  })
}

/** The implemented jsondata methods, in the contract's order; the others answer -3 and are only listed as such. */
const implemented = methods.filter((spec) => implementationsByName.has(spec.name))
const namesOf = (spec: AnyMethodSpec) => [spec.name, ...spec.aliases]

const build = (config: AppConfigShape, only: AnyMethodSpec | undefined): Json => {
  const { definitions, structOf, typeOf } = converter()
  const coded = ref("CodedAnswer")
  const credentials = [{ saUser: [], saPassword: [] }, { sessionId: [] }]
  const malformed = { "4XX": responseRef("Malformed"), "5XX": responseRef("Malformed") }

  // --- jsondata -------------------------------------------------------------------------
  const methodSchemas: Record<string, Json> = {}
  const perMethod = (spec: AnyMethodSpec) => {
    const params = typeOf(spec.params)
    methodSchemas[`${spec.name}Params`] = params
    methodSchemas[`${spec.name}Answer`] = {
      allOf: [
        {
          type: "object",
          required: ["code", "message", ...(spec.success ? ["success"] : [])],
          properties: {
            code: { const: 0, description: CODES_DESCRIPTION },
            message: { type: "string", description: "成功时为 OK" },
            ...(spec.success ? { success: { const: true, description: "true/false 调用成功失败" } } : {})
          }
        },
        structOf(spec.result)
      ]
    }
    return params
  }
  const paramsByMethod = new Map(implemented.map((spec) => [spec.name, perMethod(spec)] as const))
  const served = only ? [only] : implemented
  /** Every parameter any of `served` takes; optional, since which are required depends on `method`. */
  const unionParams = () => {
    const properties: Record<string, Json> = {}
    const takenBy: Record<string, Array<string>> = {}
    const variants: Record<string, Array<Json>> = {}
    for (const spec of served) {
      const params = paramsByMethod.get(spec.name)!
      for (const [name, schema] of Object.entries((params.properties ?? {}) as Record<string, Json>)) {
        ;(takenBy[name] ??= []).push(spec.name)
        const { description: _, ...shape } = schema
        const known = (variants[name] ??= [])
        if (!known.some((v) => JSON.stringify(v) === JSON.stringify(shape))) known.push(shape)
        properties[name] ??= schema
      }
    }
    for (const [name, shapes] of Object.entries(variants))
      if (shapes.length > 1) properties[name] = { anyOf: shapes, ...(typeof properties[name]!.description === "string" ? { description: properties[name]!.description } : {}) }
    if (only) return { type: "object", properties, required: (paramsByMethod.get(only.name)!.required ?? []) as ReadonlyArray<string> }
    return { type: "object", properties, "x-taken-by": takenBy }
  }
  const union = unionParams()
  const methodEnum = { type: "string", enum: served.flatMap(namesOf) }
  const jsondataAnswer = { anyOf: [...served.map((spec) => ref(`${spec.name}Answer`)), coded] }
  const catalogue = Object.fromEntries(
    served.map((spec) => [
      spec.name,
      {
        summary: `${spec.title} (§${spec.section})`,
        aliases: spec.aliases,
        admin: spec.admin,
        params: ref(`${spec.name}Params`),
        answer: ref(`${spec.name}Answer`),
        document: `/openapi.json?method=${spec.name}`
      }
    ])
  )
  const notImplemented = methods.filter((spec) => !implementationsByName.has(spec.name)).map((spec) => ({ name: spec.name, section: spec.section, title: spec.title }))
  const jsondataOperation = (verb: "get" | "post") => {
    const takenBy = (union["x-taken-by"] ?? {}) as Record<string, ReadonlyArray<string>>
    const describe = (name: string, schema: Json) => {
      const text = typeof schema.description === "string" ? schema.description : undefined
      return only ? text : `${text ? `${text} — ` : ""}method: ${takenBy[name]?.join(", ")}`
    }
    const { "x-taken-by": _, ...bodySchema } = union as Json
    const methodParameter = { name: "method", in: "query", required: verb === "get", description: "调用函数名" + (verb === "post" ? "（也可在请求体中）" : ""), schema: methodEnum }
    return {
      operationId: only ? `jsondata_${verb}_${only.name}` : `jsondata_${verb}`,
      summary: only ? `${only.title} (§${only.section})` : `jsondata (${verb.toUpperCase()})`,
      description:
        (only?.admin ? "需要企业管理员权限（否则 -5）。" : "") +
        "参数（含 sa_user/sa_password 或 sessionId）可在 query、x-www-form-urlencoded 或 multipart/form-data 中给出，可混合。" +
        (only ? "" : " 每个 method 的参数与应答见 x-jsondata-methods 及其文档 /openapi.json?method=<name>；未实现的 method（应答 -3）见 x-jsondata-not-implemented。"),
      tags: [only ? `§${only.section.split(".").slice(0, 2).join(".")}` : "jsondata"],
      security: credentials,
      parameters: verb === "get" ? [methodParameter, ...queryParameters(bodySchema, describe)] : [methodParameter],
      ...(verb === "post"
        ? {
            requestBody: {
              required: false,
              content: Object.fromEntries(
                ["application/x-www-form-urlencoded", "multipart/form-data"].map((type) => [
                  type,
                  { schema: { ...bodySchema, properties: { method: methodEnum, ...(bodySchema.properties as Json) } } }
                ])
              )
            }
          }
        : {}),
      responses: {
        "200": { description: "编码的应答（HTTP 状态总是 200）：该 method 的应答，或 {code, message} 失败", content: { "application/json": { schema: jsondataAnswer } } },
        ...malformed
      },
      ...(only ? {} : { "x-jsondata-methods": catalogue, "x-jsondata-not-implemented": notImplemented })
    }
  }

  const paths: Record<string, Json> = {
    "/voip/api/jsondata.html": { get: jsondataOperation("get"), post: jsondataOperation("post") }
  }

  // --- recordings -----------------------------------------------------------------------
  const upload = typeOf(Schema.Struct(uploadRecordFile.params.fields))
  paths["/voip/api/upload_record_file.html"] = {
    post: {
      operationId: "uploadRecordFile",
      summary: `${uploadRecordFile.title} (§${uploadRecordFile.section})`,
      description: "fileGsm 为文件（multipart/form-data）；sa_user/sa_password 或 sessionId 在 query 或文件之前的表单字段中。",
      tags: ["recordings"],
      security: credentials,
      requestBody: {
        required: true,
        content: {
          "multipart/form-data": {
            schema: { type: "object", required: [...((upload.required ?? []) as ReadonlyArray<string>), "fileGsm"], properties: { ...(upload.properties as Json), fileGsm: { type: "string", contentMediaType: "application/octet-stream" } } }
          }
        }
      },
      responses: {
        "200": { description: "编码的应答", content: { "application/json": { schema: { anyOf: [{ allOf: [coded, structOf(uploadRecordFile.result)] }, coded] } } } },
        ...malformed
      }
    }
  }
  // a download open to configured addresses needs no credentials from them
  const downloadSecurity = config.recordings.openTo.length > 0 ? [...credentials, {}] : credentials
  const audio = Object.fromEntries(["audio/wav", "audio/mpeg", "audio/gsm", "audio/amr", "audio/mp4", "audio/aac", "audio/ogg", "application/octet-stream"].map((type) => [type, { schema: { type: "string", contentMediaType: type } }]))
  const fileResponses = {
    "200": { description: "the recording (Range requests answered 206)", content: audio },
    "206": { description: "part of the recording", content: audio },
    "404": { description: "no such recording, or not the caller's (one answer for both)", content: { "application/json": { schema: coded } } },
    ...malformed
  }
  paths["/voip/record/{enterprise}/{month}/{day}/{file}"] = {
    get: {
      operationId: "downloadRecordingByPath",
      summary: "录音下载（按路径）",
      description: "The path an upload answered (`path`): <企业号>/<yyyymm>/<dd>/<file>. An agent gets its own calls' recordings, an administrator the enterprise's.",
      tags: ["recordings"],
      security: downloadSecurity,
      parameters: ["enterprise", "month", "day", "file"].map((name) => ({ name, in: "path", required: true, schema: { type: "string" } })),
      responses: fileResponses
    }
  }
  paths["/voip/api/client/download/record.json"] = {
    get: {
      operationId: "downloadRecordingByCall",
      summary: "录音下载（按通话记录 ID，§2.4.1）",
      tags: ["recordings"],
      security: downloadSecurity,
      parameters: [
        { name: "id", in: "query", required: true, description: "通话记录 ID（平台的或本地的）", schema: { type: "string", pattern: "^\\d{1,20}$" } },
        { name: "ismp3", in: "query", required: false, description: "1: MP3（转码一次后缓存）", schema: { type: "string", enum: ["0", "1"] } }
      ],
      responses: {
        ...fileResponses,
        "200": { description: "the recording, or a coded answer (-14 for a bad id)", content: { ...audio, "application/json": { schema: coded } } },
        "415": { description: "cannot be transcoded to MP3 (-13); ask with ismp3=0", content: { "application/json": { schema: coded } } }
      }
    }
  }

  // --- the platform's pushes (paths and guards from config) --------------------------------
  const pushSchemas = { voip: push.CallPush, workorder: push.WorkOrderPush, callback: push.CallbackPush } as const
  const pushTitles = { voip: "录音推送第三方接口 (§2.10.4)：平台推送，提交后才应答", workorder: "工单推送 (§2.12.9)", callback: "回拨状态推送 (§2.3.1 callbackUrl)" } as const
  const ack = structOf(push.PushAck)
  for (const receiver of receivers) {
    const guard = config.receive[receiver.name]
    const body = typeOf(pushSchemas[receiver.name])
    const operation = (verb: "GET" | "POST") => ({
      operationId: `push_${receiver.name}_${verb.toLowerCase()}`,
      summary: pushTitles[receiver.name],
      description: guard.allowFrom.length > 0 ? "Accepted only from the configured addresses (others -5)." : undefined,
      tags: ["push"],
      security: guard.token !== undefined ? [{ receiverToken: [] }, { receiverTokenHeader: [] }] : [],
      ...(verb === "GET"
        ? { parameters: queryParameters(body) }
        : { requestBody: { required: false, content: Object.fromEntries(["application/x-www-form-urlencoded", "multipart/form-data", "application/json"].map((type) => [type, { schema: body }])) } }),
      responses: { "200": { description: "{code: 0} once stored; a coded failure otherwise", content: { "application/json": { schema: { anyOf: [ack, coded] } } } }, ...malformed }
    })
    paths[guard.path] = Object.fromEntries(receiver.methods.map((verb) => [verb.toLowerCase(), operation(verb)]))
  }

  // --- the bridge's own -------------------------------------------------------------------
  const operational = (operationId: string, summary: string, responses: Json, parameters?: ReadonlyArray<Json>) => ({
    get: { operationId, summary, tags: ["operations"], security: [], ...(parameters ? { parameters } : {}), responses }
  })
  paths["/healthz"] = operational("healthz", "Liveness", { "200": { description: "the process serves", content: { "application/json": { schema: { type: "object", properties: { status: { const: "ok" } } } } } } })
  paths["/readyz"] = operational("readyz", "Readiness: database reachable, migrations applied, writes and the delivery worker not failing", {
    "200": { description: "ready", content: { "application/json": { schema: { type: "object", required: ["status"], properties: { status: { const: "ready" } } } } } },
    "503": { description: "not ready, and why", content: { "application/json": { schema: { type: "object", required: ["status"], properties: { status: { const: "not ready" } } } } } }
  })
  paths["/metrics"] = operational("metrics", "Prometheus metrics", { "200": { description: "Prometheus text exposition", content: { "text/plain": { schema: { type: "string" } } } } })
  paths["/openapi.json"] = operational(
    "openapi",
    "This document; with method=<name>, the jsondata operations for that method alone",
    {
      "200": { description: "OpenAPI 3.1", content: { "application/json": { schema: { type: "object" } } } },
      "404": { description: "no such implemented method", content: { "application/json": { schema: coded } } }
    },
    [{ name: "method", in: "query", required: false, schema: { type: "string", enum: implemented.flatMap(namesOf) } }]
  )

  // the admin API is declared with HttpApi: its part of the document is derived from that declaration
  const adminPart = adminOpenApi()
  Object.assign(paths, adminPart.paths)
  const adminComponents = adminPart.components as { readonly schemas?: Json; readonly securitySchemes?: Json }
  const apiKey = (name: string, where: "query" | "header", description: string) => ({ type: "apiKey", name, in: where, description })
  return {
    openapi: "3.1.0",
    info: {
      title: "voip-bridge",
      version: "0.1.0",
      description: "八百呼 (800ing) platform API as served by voip-bridge. Field names and descriptions are the contract's own." + (only ? ` Only jsondata method ${only.name}.` : "")
    },
    servers: [{ url: "/", description: "the bridge that served this document" }],
    paths,
    components: {
      schemas: { ...(withoutIds(definitions) as Json), ...adminComponents.schemas, ...methodSchemas, CodedAnswer: { type: "object", required: ["code", "message"], properties: { code: { type: "integer", description: CODES_DESCRIPTION }, message: { type: "string", description: "失败信息（成功时为 OK）" } } } },
      responses: { Malformed: { description: "an HTTP request the bridge cannot read (malformed body, over a limit): a coded answer", content: { "application/json": { schema: coded } } } },
      securitySchemes: {
        saUser: apiKey("sa_user", "query", "校验帐号（坐席号）；也可在表单中。与 sa_password 一起使用"),
        saPassword: apiKey("sa_password", "query", "MD5 校验密码 32 位 MD5 码（大小写均可）；也可在表单中"),
        sessionId: apiKey("sessionId", "query", "getExtension 返回的会话 ID（可代替 sa_user/sa_password）；也可在表单中"),
        receiverToken: apiKey("token", "query", "the receiver's shared token (when configured); also as a form field"),
        receiverTokenHeader: apiKey("X-Bridge-Token", "header", "the receiver's shared token (when configured)"),
        ...adminComponents.securitySchemes
      }
    }
  }
}

const cache = new WeakMap<AppConfigShape, Map<string, Json>>()
/**
 * Built once per configuration (the receivers' paths and guards come from it) and method:
 * the schemas do not change while the process runs. `method` (a name or an alias) asks
 * for that method's own document; undefined when it is not an implemented method.
 */
export const openApiDocument = (config: AppConfigShape, method?: string): Json | undefined => {
  const spec = method === undefined ? undefined : implemented.find((s) => namesOf(s).includes(method))
  if (method !== undefined && spec === undefined) return undefined
  let built = cache.get(config)
  if (!built) cache.set(config, (built = new Map()))
  const key = spec?.name ?? ""
  let doc = built.get(key)
  if (!doc) built.set(key, (doc = JSON.parse(JSON.stringify(build(config, spec))) as Json))
  return doc
}
