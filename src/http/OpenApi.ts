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
 *
 * Every other endpoint is declared once (Endpoint.ts) and documents itself from that
 * declaration; the admin API's part comes from its HttpApi.
 */
import { Effect, Schema } from "effect"
import { adminOpenApi } from "../admin/Api.js"
import { methods } from "../../schemas/index.js"
import * as P from "../../schemas/Param.js"
import { type AnyMethodSpec } from "../../schemas/Method.js"
import { implementationsByName } from "../api/methods.js"
import type { AppConfigShape } from "../config/AppConfig.js"
import { type Endpoint, endpoint, rest } from "./Endpoint.js"
import { CODED as coded, converter, CREDENTIALS as credentials, type Json, MALFORMED as malformed, queryParameters, ref, withoutIds } from "./OpenApiSchemas.js"
import { json } from "./Route.js"

const CODES_DESCRIPTION =
  "0 成功; -1 网络错误; -2 验证错误; -3 方法内部错误（含未知方法）; -5 没有权限; -6 SQL 语句执行错误; -10 数据已经存在; -11 数据不存在; -12 超过最大值错误; -13 文件保存失败; -14 验证组错误（message 指出参数）"

/** The implemented jsondata methods, in the contract's order; the others answer -3 and are only listed as such. */
const implemented = methods.filter((spec) => implementationsByName.has(spec.name))
const namesOf = (spec: AnyMethodSpec) => [spec.name, ...spec.aliases]

const build = (config: AppConfigShape, endpoints: ReadonlyArray<Endpoint>, only: AnyMethodSpec | undefined): Json => {
  const kit = converter()
  const { definitions, structOf, typeOf } = kit

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

  // everything else is declared as an endpoint: its operations come from that declaration
  for (const e of endpoints) Object.assign(paths, e.openApi(config, kit))

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
export const openApiDocument = (config: AppConfigShape, endpoints: ReadonlyArray<Endpoint>, method?: string): Json | undefined => {
  const spec = method === undefined ? undefined : implemented.find((s) => namesOf(s).includes(method))
  if (method !== undefined && spec === undefined) return undefined
  let built = cache.get(config)
  if (!built) cache.set(config, (built = new Map()))
  const key = spec?.name ?? ""
  let doc = built.get(key)
  if (!doc) built.set(key, (doc = JSON.parse(JSON.stringify(build(config, endpoints, spec))) as Json))
  return doc
}

/** `GET /openapi.json`: the document of `endpoints()` — the list this endpoint is itself part of. */
export const documentEndpoint = (endpoints: () => ReadonlyArray<Endpoint>) =>
  endpoint({
    id: "openapi",
    summary: "This document; with method=<name>, the jsondata operations for that method alone",
    tags: ["operations"],
    paths: "/openapi.json",
    methods: ["GET"],
    auth: { kind: "none" },
    body: { kind: "none" },
    params: Schema.Struct({
      method: Schema.optional(P.doc("an implemented jsondata method (its name or an alias)")(P.sentAs({ type: "string", enum: implemented.flatMap(namesOf) })(P.text)))
    }),
    answer: rest({
      "200": { description: "OpenAPI 3.1", content: { "application/json": Schema.Record({ key: Schema.String, value: Schema.Unknown }) } },
      "404": { description: "no such implemented method", content: { "application/json": "coded" } }
    }),
    handler: ({ config, params: { method } }) => {
      const doc = openApiDocument(config, endpoints(), method)
      return Effect.succeed(doc ? json(doc) : json({ code: -11, message: `no implemented jsondata method ${JSON.stringify(method)}` }, 404))
    }
  })
