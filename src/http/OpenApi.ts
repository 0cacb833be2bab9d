/**
 * `GET /openapi.json`, generated from the contract's schemas (OpenAPI 3.1). jsondata
 * methods share one URL and differ by `method=`, which OpenAPI cannot key on, so each
 * method is documented at `/voip/api/jsondata.html?method=<name>` — the URL a client calls.
 */
import { JSONSchema, Schema } from "effect"
import * as admin from "../../schemas/admin.js"
import * as box from "../../schemas/box.js"
import { methods } from "../../schemas/index.js"
import * as push from "../../schemas/push.js"
import { uploadRecordFile } from "../../schemas/upload.js"
import { workOrderEndpoints } from "../../schemas/workorder.js"
import { type AnyMethodSpec, descriptionOf } from "../../schemas/Method.js"
import { TargetSchema } from "../forwarding/Target.js"

type Json = Record<string, unknown>

const CODES_DESCRIPTION =
  "0 成功; -1 网络错误; -2 验证错误; -3 方法内部错误（含未知方法）; -5 没有权限; -6 SQL 语句执行错误; -10 数据已经存在; -11 数据不存在; -12 超过最大值错误; -13 文件保存失败; -14 验证组错误（message 指出参数）"

const credentials: ReadonlyArray<Json> = [
  { name: "sa_user", in: "query", required: false, description: "校验帐号（坐席号）", schema: { type: "string" } },
  { name: "sa_password", in: "query", required: false, description: "MD5 校验密码 32 位 MD5 码（大小写均可）", schema: { type: "string", pattern: "^[0-9a-fA-F]{32}$" } },
  { name: "sessionId", in: "query", required: false, description: "getExtension 返回的会话 ID（可代替 sa_user/sa_password）", schema: { type: "string" } }
]

/** Effect marks some schemas (unknown, {}) with an `$id`; repeated inline they would clash, and nothing refers to them. */
const withoutIds = (value: unknown): unknown =>
  Array.isArray(value)
    ? value.map(withoutIds)
    : typeof value === "object" && value !== null
      ? Object.fromEntries(Object.entries(value).filter(([k]) => k !== "$id").map(([k, v]) => [k, withoutIds(v)]))
      : value

const build = () => {
  const definitions: Record<string, JSONSchema.JsonSchema7> = {}
  const toJsonSchema = (schema: Schema.Schema.Any & { readonly fields: Schema.Struct.Fields }): Json => {
    // an empty Struct means "any object" to Effect; for an answer with no extra fields say exactly that
    if (Object.keys(schema.fields).length === 0) return { type: "object", properties: {} }
    const out = JSONSchema.fromAST(schema.ast, {
      definitions,
      definitionPath: "#/components/schemas/",
      target: "openApi3.1",
      additionalPropertiesStrategy: "allow"
    }) as unknown as Json
    const clean = withoutIds(out) as Json
    const properties = (clean.properties ?? {}) as Record<string, Json>
    for (const [name, field] of Object.entries(schema.fields)) {
      const description = descriptionOf(field)
      if (description && properties[name]) properties[name] = { ...properties[name], description }
    }
    return clean
  }

  const operation = (spec: AnyMethodSpec, verb: "get" | "post") => {
    const params = toJsonSchema(Object.assign(Schema.typeSchema(spec.params), { fields: spec.params.fields }))
    const properties = (params.properties ?? {}) as Record<string, Json>
    const required = new Set((params.required ?? []) as ReadonlyArray<string>)
    const result = toJsonSchema(spec.result)
    const envelope = {
      allOf: [
        {
          type: "object",
          required: ["code", "message"],
          properties: {
            code: { type: "integer", description: CODES_DESCRIPTION },
            message: { type: "string", description: "失败信息（成功时为 OK）" },
            ...(spec.success ? { success: { type: "boolean", description: "true/false 调用成功失败" } } : {})
          }
        },
        result
      ]
    }
    const methodParam = { name: "method", in: "query", required: true, description: "调用函数名", schema: { type: "string", enum: [spec.name, ...spec.aliases] } }
    const common = {
      operationId: `${verb}_${spec.name}`,
      summary: `${spec.title} (§${spec.section})`,
      description: `${spec.admin ? "需要企业管理员权限（否则 -5）。" : ""}参数可在 query、x-www-form-urlencoded 或 multipart/form-data 中给出，可混合。`,
      tags: [`§${spec.section.split(".").slice(0, 2).join(".")}`],
      responses: {
        "200": { description: "编码的应答（HTTP 状态总是 200）", content: { "application/json": { schema: envelope } } }
      }
    }
    if (verb === "get")
      return {
        ...common,
        parameters: [
          methodParam,
          ...credentials,
          ...Object.entries(properties).map(([name, schema]) => ({
            name,
            in: "query",
            required: required.has(name),
            ...(typeof schema.description === "string" ? { description: schema.description } : {}),
            schema
          }))
        ]
      }
    const form = { type: "object", properties: { ...properties }, required: [...required] }
    return {
      ...common,
      parameters: [methodParam, ...credentials],
      requestBody: {
        required: false,
        content: { "application/x-www-form-urlencoded": { schema: form }, "multipart/form-data": { schema: form } }
      }
    }
  }

  type Struct = Schema.Schema.Any & { readonly fields: Schema.Struct.Fields }
  const typeOf = (struct: Struct) => toJsonSchema(Object.assign(Schema.typeSchema(struct), { fields: struct.fields }))
  const answer = (schema: Json, description = "应答") => ({ "200": { description, content: { "application/json": { schema } } } })
  const codedEnvelope = (extra: Json) => ({
    allOf: [
      { type: "object", required: ["code", "message"], properties: { code: { type: "integer", description: CODES_DESCRIPTION }, message: { type: "string" } } },
      extra
    ]
  })
  /** A surface other than jsondata: its fields as a form body (and query), one answer schema. */
  const formOperation = (summary: string, struct: Struct, response: Json, options: { readonly files?: boolean; readonly get?: boolean; readonly tag: string }) => {
    const body = typeOf(struct)
    const form = { type: "object", properties: { ...((body.properties ?? {}) as Json), ...(options.files ? { file: { type: "string", contentMediaType: "application/octet-stream" } } : {}) }, required: (body.required ?? []) as ReadonlyArray<string> }
    const post = {
      summary,
      tags: [options.tag],
      requestBody: { content: { "multipart/form-data": { schema: form }, ...(options.files ? {} : { "application/x-www-form-urlencoded": { schema: form } }) } },
      responses: answer(response)
    }
    return options.get ? { post, get: { summary, tags: [options.tag], parameters: Object.entries((body.properties ?? {}) as Record<string, Json>).map(([name, schema]) => ({ name, in: "query", required: form.required.includes(name), schema })), responses: answer(response) } } : { post }
  }

  const paths: Record<string, Json> = {}
  for (const spec of methods) {
    paths[`/voip/api/jsondata.html?method=${spec.name}`] = { get: operation(spec, "get"), post: operation(spec, "post") }
  }
  paths["/voip/api/upload_record_file.html"] = formOperation(
    `${uploadRecordFile.title} (§${uploadRecordFile.section})：fileGsm 为文件；sa_user/sa_password 或 sessionId`,
    Schema.Struct({ ...uploadRecordFile.params.fields, fileGsm: Schema.String }),
    codedEnvelope(toJsonSchema(uploadRecordFile.result)),
    { tag: "§2.1", files: true }
  )
  paths["/voip/upload_record"] = {
    post: {
      summary: "八百呼设备状态及录音记录上传 (§2.1.10)：只支持 POST 与 HTTP；按 cmd 区分",
      tags: ["§2.1"],
      requestBody: {
        content: Object.fromEntries(
          ["multipart/form-data", "application/x-www-form-urlencoded"].map((type) => [type, { schema: { oneOf: Object.values(box.boxCommands).map((cmd) => typeOf(cmd)) } }])
        )
      },
      responses: answer({ oneOf: [toJsonSchema(box.StatusAnswer), toJsonSchema(box.RecordingAnswer), toJsonSchema(box.MessageListAnswer)] }, "status 0 成功；3001 设备未注册或未分配用户；3002 缺少 satellite；3003 没有可处理的消息")
    }
  }
  const ack = toJsonSchema(push.PushAck)
  paths["/api/voip.json"] = formOperation("录音推送第三方接口 (§2.10.4)：平台推送，提交后才应答", push.CallPush, ack, { tag: "push", get: true })
  paths["/api/workorder.json"] = formOperation("工单推送 (§2.12.9)", push.WorkOrderPush, ack, { tag: "push" })
  paths["/api/callback.json"] = formOperation("回拨状态推送 (§2.3.1 callbackUrl)", push.CallbackPush, ack, { tag: "push", get: true })
  for (const endpoint of workOrderEndpoints) {
    const path = endpoint.name === "upload" ? "/voip/manage/workorderattachment/upload.json" : `/voip/workordermanager/${endpoint.name}.json`
    paths[path] = formOperation(`${endpoint.title} (§${endpoint.section})：sessionId 或 sa_user/sa_password`, endpoint.params, codedEnvelope(toJsonSchema(endpoint.result)), {
      tag: "§2.12",
      get: endpoint.name !== "upload",
      files: endpoint.name === "upload"
    })
  }

  // the admin API: ours, not the platform's; bearer token, JSON in and out, HTTP status codes
  const schemaOf = (schema: Schema.Schema.Any) =>
    withoutIds(JSONSchema.fromAST(schema.ast, { definitions, definitionPath: "#/components/schemas/", target: "openApi3.1", additionalPropertiesStrategy: "allow" })) as Json
  const problemAnswer = { description: "refused: code -14 and a message naming the field (400), -11 not found (404), -10 exists (409)", content: { "application/json": { schema: { type: "object", required: ["code", "message"], properties: { code: { type: "integer" }, message: { type: "string" } } } } } }
  const adminOperation = (
    summary: string,
    options: { readonly query?: ReadonlyArray<readonly [string, string]>; readonly body?: Schema.Schema.Any; readonly answer: Schema.Schema.Any | Json; readonly pathName?: string; readonly status?: string }
  ) => ({
    summary,
    tags: ["admin"],
    security: [{ bearer: [] }],
    parameters: [
      ...(options.pathName ? [{ name: options.pathName, in: "path", required: true, schema: { type: "string" } }] : []),
      ...(options.query ?? []).map(([name, description]) => ({ name, in: "query", required: false, description, schema: { type: "string" } }))
    ],
    ...(options.body ? { requestBody: { required: false, content: { "application/json": { schema: schemaOf(options.body) } } } } : {}),
    responses: {
      [options.status ?? "200"]: { description: "OK", content: { "application/json": { schema: Schema.isSchema(options.answer) ? schemaOf(options.answer) : options.answer } } },
      "400": problemAnswer,
      "401": { description: "missing or wrong bearer token" }
    }
  })
  const filterQuery = [
    ["target", "target name"],
    ["type", "event type or glob (call.*)"],
    ["ids", "delivery ids, comma-separated"],
    ["since", "ISO 8601 or Unix ms"],
    ["until", "ISO 8601 or Unix ms"]
  ] as const
  const pageQuery = [
    ["limit", "1–1000"],
    ["before", "the next of the previous page"]
  ] as const
  const ok = { type: "object", required: ["code"], properties: { code: { type: "integer", const: 0 }, message: { type: "string" } } }
  const targetAnswer = { ...ok, properties: { ...ok.properties, target: schemaOf(TargetSchema) } }
  paths["/admin/api/targets"] = {
    get: adminOperation("Targets", { answer: { type: "object", properties: { items: { type: "array", items: schemaOf(TargetSchema) } } } }),
    post: adminOperation("Add a target", { body: TargetSchema, answer: targetAnswer, status: "201" })
  }
  paths["/admin/api/targets/{name}"] = {
    get: adminOperation("A target", { pathName: "name", answer: TargetSchema }),
    patch: adminOperation("Change a target (applies at once to its pending deliveries)", { pathName: "name", body: Schema.partial(Schema.encodedSchema(TargetSchema)), answer: targetAnswer }),
    delete: adminOperation("Remove a target; its waiting deliveries become dead letters", { pathName: "name", answer: { ...ok, properties: { ...ok.properties, deadLettered: { type: "integer" } } } })
  }
  paths["/admin/api/targets/{name}/recover"] = {
    post: adminOperation("Send again every dead letter of this target since a time", { pathName: "name", body: Schema.Struct({ since: admin.DeadLetterFilter.from.fields.since, until: admin.DeadLetterFilter.from.fields.until }), answer: admin.Redriven })
  }
  paths["/admin/api/events"] = {
    get: adminOperation("Events, newest first", { query: [["type", "event type or glob (call.*)"], ["since", "ISO 8601 or Unix ms"], ...pageQuery], answer: admin.Page(admin.EventItem) })
  }
  paths["/admin/api/events/{id}/resend"] = {
    post: adminOperation("Send an event to a target it was never delivered to", { pathName: "id", body: Schema.Struct({ target: Schema.String }), answer: { ...ok, properties: { ...ok.properties, deliveryId: { type: "integer" } } } })
  }
  paths["/admin/api/deliveries"] = {
    get: adminOperation("Deliveries with their attempts, newest first", { query: [["target", "target name"], ["type", "event type or glob"], ["status", "pending, in_flight, delivered or dead"], ...pageQuery], answer: admin.Page(admin.DeliveryItem) })
  }
  paths["/admin/api/dead-letters"] = {
    get: adminOperation("Dead letters with their attempts, newest first", { query: [...filterQuery, ...pageQuery], answer: admin.Page(admin.DeliveryItem) }),
    delete: adminOperation("Delete every dead letter the filter matches (at least one filter; since=0 names all)", { query: filterQuery, body: admin.DeadLetterFilter, answer: admin.Deleted })
  }
  paths["/admin/api/dead-letters/redrive"] = {
    post: adminOperation("Queue again every dead letter the filter matches, with the same webhook-id", { body: admin.DeadLetterFilter, answer: admin.Redriven })
  }

  const plain = (summary: string) => ({
    get: { summary, responses: { "200": { description: "OK", content: { "application/json": { schema: { type: "object" } } } } } }
  })
  paths["/healthz"] = plain("Liveness")
  paths["/readyz"] = {
    get: {
      summary: "Readiness: database reachable, migrations applied",
      responses: { "200": { description: "ready" }, "503": { description: "not ready" } }
    }
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "voip-bridge",
      version: "0.1.0",
      description: "八百呼 (800ing) platform API as served by voip-bridge. Field names and descriptions are the contract's own."
    },
    paths,
    components: { schemas: withoutIds(definitions), securitySchemes: { bearer: { type: "http", scheme: "bearer", description: "BRIDGE_ADMIN_TOKEN, or the token in <dataDir>/admin-token" } } }
  }
}

let cached: Json | undefined
/** Built once: the schemas do not change while the process runs. */
export const openApiDocument = (): Json => (cached ??= build())
