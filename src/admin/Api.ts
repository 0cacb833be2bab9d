/**
 * The admin JSON API under /admin/api (bearer token), declared once: its paths, verbs,
 * parameters, bodies, answers and errors. Routing, decoding, the bearer check and the admin
 * part of /openapi.json are all derived from this declaration; the handlers are in Http.ts.
 */
import { HttpApi, HttpApiEndpoint, HttpApiGroup, HttpApiMiddleware, HttpApiSchema, HttpApiSecurity, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import * as AdminSchema from "../../schemas/admin.js"
import { DeviceConfig } from "../config/AppConfig.js"
import { CodeItem, CodeList, FieldName, Label } from "../crm/ConfigSchema.js"
import { FlowBody, FlowItem, FlowPatch, SoundBody } from "../flows/FlowSchema.js"
import { StoredTargetSchema, TargetSchema } from "../forwarding/Target.js"
import { TypeBody, TypeItem } from "../workorders/Definition.js"

/**
 * An error answer whose body is exactly the contract's `{code, message}`: the tagged error is
 * what handlers fail with, the body leaves its tag out (clients read `code`, as everywhere else).
 */
const coded = <Self extends { readonly code: number; readonly message: string }, I extends { readonly _tag: string }>(
  error: Schema.Schema<Self, I>,
  code: number,
  status: number,
  description: string,
  make: (body: { readonly code: number; readonly message: string }) => Self
) =>
  Schema.transform(Schema.Struct({ code: Schema.Literal(code), message: Schema.String }), Schema.typeSchema(error), {
    strict: false,
    decode: (body) => make(body),
    encode: (e) => ({ code: e.code, message: e.message })
  }).annotations({ ...HttpApiSchema.annotations({ status }), description })

export class Unauthorized extends Schema.TaggedError<Unauthorized>()("AdminUnauthorized", { code: Schema.Literal(-2), message: Schema.String }) {
  static readonly answer = new Unauthorized({ code: -2, message: "admin API: missing or wrong bearer token" })
}
export class BadRequest extends Schema.TaggedError<BadRequest>()("AdminBadRequest", { code: Schema.Literal(-14), message: Schema.String }) {
  static readonly of = (message: string) => new BadRequest({ code: -14, message })
}
export class NotFound extends Schema.TaggedError<NotFound>()("AdminNotFound", { code: Schema.Literal(-11), message: Schema.String }) {
  static readonly of = (what: string) => new NotFound({ code: -11, message: `${what} does not exist` })
}
export class Conflict extends Schema.TaggedError<Conflict>()("AdminConflict", { code: Schema.Literal(-10), message: Schema.String }) {}
export class TooLarge extends Schema.TaggedError<TooLarge>()("AdminTooLarge", { code: Schema.Literal(-12), message: Schema.String }) {}
export class Full extends Schema.TaggedError<Full>()("AdminFull", { code: Schema.Literal(-12), message: Schema.String }) {}
export class UnsupportedCharset extends Schema.TaggedError<UnsupportedCharset>()("AdminUnsupportedCharset", { code: Schema.Literal(-14), message: Schema.String }) {}
export class Internal extends Schema.TaggedError<Internal>()("AdminInternal", { code: Schema.Literal(-3), message: Schema.String }) {
  static readonly answer = new Internal({ code: -3, message: "internal error" })
}

const UnauthorizedAnswer = coded(Unauthorized, -2, 401, "missing or wrong bearer token", (b) => new Unauthorized({ code: -2, message: b.message }))
const BadRequestAnswer = coded(BadRequest, -14, 400, "refused: a message naming the field", (b) => BadRequest.of(b.message))
const NotFoundAnswer = coded(NotFound, -11, 404, "not found", (b) => new NotFound({ code: -11, message: b.message }))
const ConflictAnswer = coded(Conflict, -10, 409, "exists already", (b) => new Conflict({ code: -10, message: b.message }))
const TooLargeAnswer = coded(TooLarge, -12, 413, "the body is larger than http.bodyLimitBytes", (b) => new TooLarge({ code: -12, message: b.message }))
const FullAnswer = coded(Full, -12, 429, "the queue has its maximum waiting", (b) => new Full({ code: -12, message: b.message }))
const UnsupportedCharsetAnswer = coded(UnsupportedCharset, -14, 415, "the body declares a charset that cannot be read", (b) => new UnsupportedCharset({ code: -14, message: b.message }))
const InternalAnswer = coded(Internal, -3, 500, "internal error (logged)", (b) => new Internal({ code: -3, message: b.message }))

/** The bearer token of the admin API (BRIDGE_ADMIN_TOKEN, or the token in <dataDir>/admin-token). */
export class AdminAuth extends HttpApiMiddleware.Tag<AdminAuth>()("AdminAuth", {
  failure: UnauthorizedAnswer,
  security: {
    bearer: HttpApiSecurity.bearer.pipe(HttpApiSecurity.annotate(OpenApi.Description, "BRIDGE_ADMIN_TOKEN, or the token in <dataDir>/admin-token"))
  }
}) {}

/**
 * A query value as a string; a repeated key counts by its last value, as the bridge's other
 * routes read queries.
 */
const QueryValue = Schema.transform(Schema.Union(Schema.String, Schema.NonEmptyArray(Schema.String)), Schema.String, {
  strict: true,
  decode: (v) => (typeof v === "string" ? v : v[v.length - 1]!),
  encode: (s) => s
}).annotations({ jsonSchema: { type: "string" } })
const query = (description: string) => Schema.optional(QueryValue.annotations({ description, jsonSchema: { type: "string", description } }))

const filterQuery = {
  target: query("target name"),
  type: query("event type or glob (call.*)"),
  ids: query("delivery ids, comma-separated"),
  since: query("ISO 8601 or Unix ms"),
  until: query("ISO 8601 or Unix ms")
}
const pageQuery = { limit: query("1–1000"), before: query("the next of the previous page") }

export const DeadLetterQuery = Schema.Struct({ ...filterQuery, ...pageQuery }).annotations({
  // an unknown key would otherwise read as no filter at all
  parseOptions: { onExcessProperty: "error" }
})
export const FilterQuery = Schema.Struct(filterQuery).annotations({ parseOptions: { onExcessProperty: "error" } })
export const EventsQuery = Schema.Struct({ type: query("event type or glob (call.*)"), since: query("ISO 8601 or Unix ms"), ...pageQuery })
export const DeliveriesQuery = Schema.Struct({
  target: query("target name"),
  type: query("event type or glob"),
  status: query("pending, in_flight, delivered or dead"),
  ...pageQuery
})

export const RecoverBody = Schema.Struct({ since: AdminSchema.DeadLetterFilter.from.fields.since, until: AdminSchema.DeadLetterFilter.from.fields.until })
export const ResendBody = Schema.Struct({ target: Schema.String })
/** A PATCH names the fields it changes; null clears one (back to its default, or gone). */
export const TargetPatch = Schema.partial(Schema.encodedSchema(TargetSchema))

const Ok = { code: Schema.Literal(0), message: Schema.Literal("OK") }
export const TargetAnswer = Schema.Struct({ ...Ok, target: StoredTargetSchema })
export const TargetRemoved = Schema.Struct({ ...Ok, deadLettered: Schema.Int })
export const Resent = Schema.Struct({
  code: Schema.Literal(0, -10).annotations({ description: "-10: the event has a delivery to that target already (redrive it)" }),
  message: Schema.String,
  deliveryId: Schema.Int
})

/** A test-send: an event of the target's (a sample of the type when no data is given), sent unless `send` is false. */
export const TestSendBody = Schema.Struct({
  type: Schema.optional(Schema.String.pipe(Schema.pattern(/^[a-z0-9_.]+$/, { message: () => "expected an event type such as call.hangup" }))),
  data: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Unknown })),
  enterprise: Schema.optional(Schema.NullOr(Schema.String)),
  send: Schema.optionalWith(Schema.Boolean, { default: () => true })
})
const Rendered = Schema.Struct({
  method: Schema.Literal("GET", "POST", "PATCH"),
  url: Schema.String,
  headers: Schema.Record({ key: Schema.String, value: Schema.String }),
  body: Schema.String
}).annotations({ description: "the exact request (an OAuth2 bearer token is shown redacted)" })
export const TestSendAnswer = Schema.Struct({
  ...Ok,
  event: Schema.Struct({ type: Schema.String, enterprise: Schema.NullOr(Schema.String), data: Schema.Record({ key: Schema.String, value: Schema.Unknown }) }),
  request: Schema.NullOr(Rendered).annotations({ description: "null when no request could be made (see outcome)" }),
  answer: Schema.NullOr(Schema.Struct({ status: Schema.Int, body: Schema.String })).annotations({ description: "what the destination answered; null when not sent" }),
  steps: Schema.optional(
    Schema.Array(Schema.Struct({ request: Rendered, answer: Schema.NullOr(Schema.Struct({ status: Schema.Int, body: Schema.String })) }))
  ).annotations({ description: "every request in order, when the delivery took more than one (a CRM's lookup, then its write); request and answer are the last" }),
  outcome: Schema.NullOr(
    Schema.Struct({ kind: Schema.String.annotations({ description: "delivered, retry, refused, unsendable or skipped, as a delivery would count it" }), error: Schema.optional(Schema.String) })
  ).annotations({ description: "null when not sent" })
})
export const TemplateItem = Schema.Struct({
  name: Schema.String,
  title: Schema.String,
  description: Schema.String,
  url: Schema.Struct({ description: Schema.String, example: Schema.String }),
  secret: Schema.NullOr(Schema.Struct({ description: Schema.String, required: Schema.Boolean })).annotations({ description: "null: the template takes no secret" }),
  settings: Schema.Record({ key: Schema.String, value: Schema.Unknown }).annotations({ description: "JSON Schema of the target's settings" }),
  transform: Schema.String.annotations({ description: "the body: JSONata over the event with $message and $settings; a target's own transform overrides it" }),
  events: Schema.Array(Schema.String)
})

const name = HttpApiSchema.param("name", Schema.String)
const id = HttpApiSchema.param("id", Schema.String.annotations({ description: "an event id" }))

/** A target as the worker sees it now: its circuit (open: nothing is sent until openUntil, then one probe). */
export const TargetCircuit = Schema.Struct({
  state: Schema.Literal("closed", "open", "half-open"),
  openUntil: Schema.NullOr(Schema.Number).annotations({ description: "when an open circuit lets a probe through (ms); null when closed" }),
  failures: Schema.Number.annotations({ description: "consecutive failures" }),
  inFlight: Schema.Number
})
export const TargetItem = Schema.Struct({
  ...StoredTargetSchema.fields,
  origin: Schema.Literal("config", "api").annotations({ description: "config: from the config file, which wins at every start (PATCH and DELETE refused, 409); api: made through this API" }),
  circuit: TargetCircuit
})

export class TargetsGroup extends HttpApiGroup.make("targets")
  .middleware(AdminAuth)
  .add(
    HttpApiEndpoint.get("list", "/targets")
      .addSuccess(Schema.Struct({ items: Schema.Array(TargetItem) }))
      .annotate(OpenApi.Summary, "Targets, each with its circuit")
  )
  .add(
    HttpApiEndpoint.post("create", "/targets")
      .setPayload(TargetSchema)
      .addSuccess(TargetAnswer, { status: 201 })
      .addError(ConflictAnswer)
      .annotate(OpenApi.Summary, "Add a target")
  )
  .add(HttpApiEndpoint.get("get")`/targets/${name}`.addSuccess(TargetItem).addError(NotFoundAnswer).annotate(OpenApi.Summary, "A target with its circuit"))
  .add(
    HttpApiEndpoint.patch("update")`/targets/${name}`
      .setPayload(TargetPatch)
      .addSuccess(TargetAnswer)
      .addError(NotFoundAnswer)
      .addError(ConflictAnswer)
      .annotate(OpenApi.Summary, "Change a target (applies at once to its pending deliveries); one from the config file: 409")
  )
  .add(
    HttpApiEndpoint.del("remove")`/targets/${name}`
      .addSuccess(TargetRemoved)
      .addError(NotFoundAnswer)
      .addError(ConflictAnswer)
      .annotate(OpenApi.Summary, "Remove a target; its waiting deliveries become dead letters; one from the config file: 409")
  )
  .add(
    HttpApiEndpoint.post("recover")`/targets/${name}/recover`
      .setPayload(RecoverBody)
      .addSuccess(AdminSchema.Redriven)
      .addError(NotFoundAnswer)
      .annotate(OpenApi.Summary, "Send again every dead letter of this target since a time")
  )
  .add(
    HttpApiEndpoint.post("test")`/targets/${name}/test`
      .setPayload(TestSendBody)
      .addSuccess(TestSendAnswer)
      .addError(NotFoundAnswer)
      .annotate(OpenApi.Summary, "Test-send: the exact request an event would make, and what the destination answered (nothing is stored)")
  )
  .add(
    HttpApiEndpoint.get("templates", "/templates")
      .addSuccess(Schema.Struct({ items: Schema.Array(TemplateItem) }))
      .annotate(OpenApi.Summary, "Templates a target may name, with their settings")
  ) {}

const NullOr = Schema.NullOr
const LiveChannel = Schema.Struct({
  ch: Schema.Int,
  extension: NullOr(Schema.String),
  state: Schema.Int.annotations({ description: "0 not connected, 1 idle, 2 ringing, 3 dialling, 4 talking, 5 timed out" }),
  stateText: Schema.String,
  phone: Schema.String,
  timelen: NullOr(Schema.Number),
  peer: NullOr(Schema.Number),
  serial: NullOr(Schema.String),
  changedAt: Schema.Number
})
export const DeviceItem = Schema.Struct({
  mac: Schema.String,
  enterprise: NullOr(Schema.String).annotations({ description: "null while pending" }),
  pending: Schema.Boolean.annotations({ description: "an unknown box that called in, waiting to be assigned" }),
  channels: Schema.Record({ key: Schema.String, value: Schema.String }),
  origin: Schema.String.annotations({ description: "config, admin or pending" }),
  lastAddress: NullOr(Schema.String),
  lastSeenAt: NullOr(Schema.Number),
  status: NullOr(Schema.Record({ key: Schema.String, value: Schema.Unknown })),
  statusAt: NullOr(Schema.Number),
  alert: NullOr(Schema.String),
  presence: Schema.Literal("online", "offline", "unseen").annotations({ description: "offline: silent for box.offlineAfterMs (box.offline raised); unseen: never called in" }),
  offlineAt: NullOr(Schema.Number),
  callListAt: NullOr(Schema.Number).annotations({ description: "when the box first polled getCallList (it then dials through that poll, not its long poll)" }),
  live: Schema.Array(LiveChannel)
})
export const DeviceBody = DeviceConfig
export const DevicePatch = Schema.Struct({ enterprise: Schema.optional(DeviceConfig.fields.enterprise), channels: Schema.optional(DeviceConfig.fields.channels) })
export const DeviceAnswer = Schema.Struct({ ...Ok, device: DeviceItem })
/** A web message (§2.1.10 status 51) for a box's channel, handed out by its getMessageList poll. */
export const DeviceMessageBody = Schema.Struct({
  channel: Schema.Int.pipe(Schema.between(1, 64)).annotations({ description: "the RJ11 channel (mdcWan)" }),
  phone: Schema.optionalWith(Schema.String.pipe(Schema.maxLength(64)), { default: () => "" }),
  functionname: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(100)),
  paramvalue: Schema.optionalWith(Schema.String.pipe(Schema.maxLength(4000)), { default: () => "" })
})
export const DeviceMessageAnswer = Schema.Struct({ ...Ok, id: Schema.Number.annotations({ description: "the message's mdcCode" }) })
const mac = HttpApiSchema.param("mac", Schema.String.annotations({ description: "the box's MAC, any spelling" }))

export class DevicesGroup extends HttpApiGroup.make("devices")
  .middleware(AdminAuth)
  .add(HttpApiEndpoint.get("list", "/devices").addSuccess(Schema.Struct({ items: Schema.Array(DeviceItem) })).annotate(OpenApi.Summary, "Recording boxes, pending ones last"))
  .add(
    HttpApiEndpoint.post("create", "/devices")
      .setPayload(DeviceBody)
      .addSuccess(DeviceAnswer, { status: 201 })
      .addError(ConflictAnswer)
      .annotate(OpenApi.Summary, "Register a box (or assign a pending one)")
  )
  .add(HttpApiEndpoint.get("get")`/devices/${mac}`.addSuccess(DeviceItem).addError(NotFoundAnswer).annotate(OpenApi.Summary, "A box with its live channels"))
  .add(
    HttpApiEndpoint.patch("update")`/devices/${mac}`
      .setPayload(DevicePatch)
      .addSuccess(DeviceAnswer)
      .addError(NotFoundAnswer)
      .annotate(OpenApi.Summary, "Change a box's enterprise or channels")
  )
  .add(
    HttpApiEndpoint.post("message")`/devices/${mac}/messages`
      .setPayload(DeviceMessageBody)
      .addSuccess(DeviceMessageAnswer, { status: 201 })
      .addError(NotFoundAnswer)
      .addError(FullAnswer)
      .annotate(OpenApi.Summary, "Queue a web message (status 51) for the box's getMessageList poll")
  )
  .add(HttpApiEndpoint.del("remove")`/devices/${mac}`.addSuccess(Schema.Struct(Ok)).addError(NotFoundAnswer).annotate(OpenApi.Summary, "Forget a box (one from config returns at the next start)")) {}

export const FieldItem = Schema.Struct({
  fieldName: Schema.String,
  fieldType: Schema.String.annotations({ description: "text, number, date, or code (its values: the code list of the same name)" }),
  systemName: Schema.String.annotations({ description: "getTableFields chinesename=1" }),
  label: Schema.String.annotations({ description: "the enterprise's label (getTableFields chinesename=0)" }),
  origin: Schema.Literal("default", "config", "admin").annotations({ description: "where the label comes from" })
})
export const FieldsAnswer = Schema.Struct({ ...Ok, items: Schema.Array(FieldItem) })
/** The labels to set; null drops the admin API's label (back to the configuration's or the built-in one). */
export const FieldsBody = Schema.Struct({ labels: Schema.Record({ key: FieldName, value: NullOr(Label) }) })
export const CodeRowSchema = Schema.Struct({ codeId: Schema.Number, codeCode: Schema.String, codeName: Schema.String, codeParentId: NullOr(Schema.Number) })
export const CodeListAnswer = Schema.Struct({ ...Ok, codeType: Schema.String, items: Schema.Array(CodeRowSchema) })
export const CodeListsAnswer = Schema.Struct({
  ...Ok,
  items: Schema.Array(Schema.Struct({ codeType: Schema.String, owner: Schema.String.annotations({ description: "config: follows the configuration; admin: edited here" }), items: Schema.Array(CodeRowSchema) }))
})
export const CodeListBody = Schema.Struct({ items: CodeList })
export const CodeBody = CodeItem
export const CodeAnswer = Schema.Struct({ ...Ok, item: CodeRowSchema })
const comp = HttpApiSchema.param("comp", Schema.String.annotations({ description: "the enterprise's 6-digit number" }))
const codeType = HttpApiSchema.param("codeType", Schema.String.annotations({ description: "a code list, e.g. custStatus" }))
const codeId = HttpApiSchema.param("codeId", Schema.String.annotations({ description: "a codeId of the list" }))

/** Customer field labels and code lists of an enterprise (getTableFields, getCodes). */
export class CrmGroup extends HttpApiGroup.make("crm")
  .middleware(AdminAuth)
  .add(HttpApiEndpoint.get("fields")`/enterprises/${comp}/fields`.addSuccess(FieldsAnswer).addError(NotFoundAnswer).annotate(OpenApi.Summary, "Customer fields with the enterprise's labels"))
  .add(
    HttpApiEndpoint.put("setFields")`/enterprises/${comp}/fields`
      .setPayload(FieldsBody)
      .addSuccess(FieldsAnswer)
      .addError(NotFoundAnswer)
      .annotate(OpenApi.Summary, "Set field labels (null: back to the configuration's)")
  )
  .add(HttpApiEndpoint.get("lists")`/enterprises/${comp}/codes`.addSuccess(CodeListsAnswer).addError(NotFoundAnswer).annotate(OpenApi.Summary, "Every code list of the enterprise"))
  .add(HttpApiEndpoint.get("codes")`/enterprises/${comp}/codes/${codeType}`.addSuccess(CodeListAnswer).addError(NotFoundAnswer).annotate(OpenApi.Summary, "A code list (an unknown type: empty)"))
  .add(
    HttpApiEndpoint.put("replaceCodes")`/enterprises/${comp}/codes/${codeType}`
      .setPayload(CodeListBody)
      .addSuccess(CodeListAnswer)
      .addError(NotFoundAnswer)
      .annotate(OpenApi.Summary, "Replace a code list (codes that stay keep their ids)")
  )
  .add(
    HttpApiEndpoint.post("addCode")`/enterprises/${comp}/codes/${codeType}`
      .setPayload(CodeBody)
      .addSuccess(CodeAnswer, { status: 201 })
      .addError(NotFoundAnswer)
      .addError(ConflictAnswer)
      .annotate(OpenApi.Summary, "Add a code at the end of a list")
  )
  .add(
    HttpApiEndpoint.del("removeCode")`/enterprises/${comp}/codes/${codeType}/${codeId}`
      .addSuccess(Schema.Struct(Ok))
      .addError(NotFoundAnswer)
      .annotate(OpenApi.Summary, "Remove a code (not one that is another's parent)")
  )
  .add(
    HttpApiEndpoint.del("resetCodes")`/enterprises/${comp}/codes/${codeType}`
      .addSuccess(CodeListAnswer)
      .addError(NotFoundAnswer)
      .annotate(OpenApi.Summary, "Drop the admin API's edits of a list: back to the configuration's")
  ) {}

export const WorkOrderTypeAnswer = Schema.Struct({ ...Ok, type: TypeItem })
export const WorkOrderTypesAnswer = Schema.Struct({ ...Ok, items: Schema.Array(TypeItem) })
export const WorkOrderTypeBody = TypeBody
const wotId = HttpApiSchema.param("wotId", Schema.String.annotations({ description: "a work-order type's id (wotId)" }))

/** Work-order types of an enterprise, each a whole definition: steps, their people and pushes, field labels, code trees (§2.12). */
export class WorkOrdersGroup extends HttpApiGroup.make("workorders")
  .middleware(AdminAuth)
  .add(HttpApiEndpoint.get("types")`/enterprises/${comp}/workorder-types`.addSuccess(WorkOrderTypesAnswer).addError(NotFoundAnswer).annotate(OpenApi.Summary, "Work-order types with their steps, people, fields and codes"))
  .add(
    HttpApiEndpoint.post("saveType")`/enterprises/${comp}/workorder-types`
      .setPayload(WorkOrderTypeBody)
      .addSuccess(WorkOrderTypeAnswer)
      .addError(NotFoundAnswer)
      .addError(ConflictAnswer)
      .annotate(OpenApi.Summary, "Create a type, or replace the one of the same name (steps keep their ids by index; people, labels and codes are replaced; -10 when it drops a step work orders are at)")
  )
  .add(HttpApiEndpoint.get("type")`/enterprises/${comp}/workorder-types/${wotId}`.addSuccess(WorkOrderTypeAnswer).addError(NotFoundAnswer).annotate(OpenApi.Summary, "A work-order type"))
  .add(
    HttpApiEndpoint.del("removeType")`/enterprises/${comp}/workorder-types/${wotId}`
      .addSuccess(Schema.Struct(Ok))
      .addError(NotFoundAnswer)
      .addError(ConflictAnswer)
      .annotate(OpenApi.Summary, "Delete a type no work order uses (-10 when one does)")
  ) {}

export class EventsGroup extends HttpApiGroup.make("events")
  .middleware(AdminAuth)
  .add(HttpApiEndpoint.get("list", "/events").setUrlParams(EventsQuery).addSuccess(AdminSchema.Page(AdminSchema.EventItem)).annotate(OpenApi.Summary, "Events, newest first"))
  .add(
    HttpApiEndpoint.post("resend")`/events/${id}/resend`
      .setPayload(ResendBody)
      .addSuccess(Resent)
      .addError(NotFoundAnswer)
      .annotate(OpenApi.Summary, "Send an event to a target: a new delivery, or again (a new webhook-id) where it was delivered or dead-lettered; -10 while one waits")
  ) {}

export class DeliveriesGroup extends HttpApiGroup.make("deliveries")
  .middleware(AdminAuth)
  .add(
    HttpApiEndpoint.get("list", "/deliveries")
      .setUrlParams(DeliveriesQuery)
      .addSuccess(AdminSchema.Page(AdminSchema.DeliveryItem))
      .annotate(OpenApi.Summary, "Deliveries with their attempts, newest first")
  )
  .add(
    HttpApiEndpoint.get("deadLetters", "/dead-letters")
      .setUrlParams(DeadLetterQuery)
      .addSuccess(AdminSchema.Page(AdminSchema.DeliveryItem))
      .annotate(OpenApi.Summary, "Dead letters with their attempts, newest first")
  )
  .add(
    HttpApiEndpoint.post("redrive", "/dead-letters/redrive")
      .setPayload(AdminSchema.DeadLetterFilter)
      .addSuccess(AdminSchema.Redriven)
      .annotate(OpenApi.Summary, "Queue again every dead letter the filter matches, with the same webhook-id")
  )
  .add(
    HttpApiEndpoint.del("purge", "/dead-letters")
      .setUrlParams(FilterQuery)
      .setPayload(AdminSchema.DeadLetterFilter)
      .addSuccess(AdminSchema.Deleted)
      .annotate(OpenApi.Summary, "Delete every dead letter the filter matches (at least one filter; since=0 names all)")
  ) {}

const flowId = HttpApiSchema.param("id", Schema.NumberFromString.annotations({ description: "the flow's id (cflId)" }))
const soundName = HttpApiSchema.param("name", Schema.String.annotations({ description: "the sound's file name, e.g. welcome.wav" }))
const FlowAnswer = Schema.Struct({ ...Ok, flow: FlowItem })

export class FlowsGroup extends HttpApiGroup.make("flows")
  .middleware(AdminAuth)
  .add(
    HttpApiEndpoint.get("list")`/enterprises/${comp}/flows`
      .addSuccess(Schema.Struct({ items: Schema.Array(FlowItem) }))
      .addError(NotFoundAnswer)
      .annotate(OpenApi.Summary, "Call flows (findCallFlow), the example first")
  )
  .add(
    HttpApiEndpoint.post("create")`/enterprises/${comp}/flows`
      .setPayload(FlowBody)
      .addSuccess(FlowAnswer, { status: 201 })
      .addError(NotFoundAnswer)
      .addError(ConflictAnswer)
      .annotate(OpenApi.Summary, "Add a call flow (its sound PUT first)")
  )
  .add(
    HttpApiEndpoint.patch("update")`/enterprises/${comp}/flows/${flowId}`
      .setPayload(FlowPatch)
      .addSuccess(FlowAnswer)
      .addError(NotFoundAnswer)
      .addError(ConflictAnswer)
      .annotate(OpenApi.Summary, "Change a call flow")
  )
  .add(HttpApiEndpoint.del("remove")`/enterprises/${comp}/flows/${flowId}`.addSuccess(Schema.Struct(Ok)).addError(NotFoundAnswer).annotate(OpenApi.Summary, "Delete a call flow"))
  .add(
    HttpApiEndpoint.put("sound")`/enterprises/${comp}/sounds/${soundName}`
      .setPayload(SoundBody)
      .addSuccess(Schema.Struct({ ...Ok, wfPath: Schema.String }))
      .addError(NotFoundAnswer)
      .annotate(OpenApi.Summary, "Store a sound (replacing one of that name), served at /voip/sound/{wfPath}")
  ) {}

export const CaptureBody = Schema.Struct({ enabled: Schema.Boolean.annotations({ description: "true: capture every request from now on; false: stop" }) })
export const CaptureStatus = Schema.Struct({
  enabled: Schema.Boolean,
  file: Schema.String.annotations({ description: "capture.file, or <dataDir>/capture.jsonl" }),
  keepCredentials: Schema.Boolean,
  records: Schema.Int.annotations({ description: "lines written since capturing began" }),
  failures: Schema.Int.annotations({ description: "lines that could not be written (their requests were answered all the same)" })
})
export const CaptureAnswer = Schema.Struct({ ...Ok, capture: CaptureStatus })

/** Capture of every inbound request (src/capture), for `npm start -- replay`. */
export class CaptureGroup extends HttpApiGroup.make("capture")
  .middleware(AdminAuth)
  .add(
    HttpApiEndpoint.post("set", "/capture")
      .setPayload(CaptureBody)
      .addSuccess(CaptureAnswer)
      .annotate(OpenApi.Summary, "Start or stop capturing every request as JSON lines")
  )
  .add(HttpApiEndpoint.get("status", "/capture/status").addSuccess(CaptureAnswer).annotate(OpenApi.Summary, "Whether requests are being captured, where, and how many lines so far"))
  .add(
    HttpApiEndpoint.get("download", "/capture")
      .addSuccess(Schema.String.pipe(HttpApiSchema.withEncoding({ kind: "Text", contentType: "application/x-ndjson" })))
      .addError(NotFoundAnswer)
      .annotate(OpenApi.Summary, "The capture file (JSON lines; rotated files are not included)")
  ) {}

export class AdminApi extends HttpApi.make("admin")
  .add(TargetsGroup)
  .add(EventsGroup)
  .add(DeliveriesGroup)
  .add(DevicesGroup)
  .add(CrmGroup)
  .add(FlowsGroup)
  .add(WorkOrdersGroup)
  .add(CaptureGroup)
  .addError(BadRequestAnswer)
  .addError(TooLargeAnswer)
  .addError(UnsupportedCharsetAnswer)
  .addError(InternalAnswer)
  .prefix("/admin/api")
  .annotate(OpenApi.Title, "voip-bridge admin API") {}

type Json = Record<string, unknown>
const isJson = (u: unknown): u is Json => typeof u === "object" && u !== null && !Array.isArray(u)

// The platform declares its own decode error on every API; ours answers it as AdminBadRequest
// (see CodedDecodeErrors in Http.ts), so the document shows that instead.
const PLATFORM_ONLY = ["HttpApiDecodeError", "Issue", "PropertyKey"]
const platformRef = (u: unknown) => isJson(u) && u.$ref === "#/components/schemas/HttpApiDecodeError"

const codedResponse = (response: unknown, schemas: Json): unknown => {
  const content = isJson(response) && isJson(response.content) ? response.content["application/json"] : undefined
  const schema = isJson(content) ? content.schema : undefined
  if (!isJson(schema) || !Array.isArray(schema.anyOf) || !schema.anyOf.some(platformRef)) return response
  const rest = schema.anyOf.filter((s) => !platformRef(s))
  const only = rest.length === 1 ? rest[0] : { anyOf: rest }
  const name = isJson(only) && typeof only.$ref === "string" ? only.$ref.replace("#/components/schemas/", "") : undefined
  const component = name === undefined ? undefined : schemas[name]
  const description = isJson(component) && typeof component.description === "string" ? component.description : "refused"
  return { description, content: { "application/json": { schema: only } } }
}

// Effect marks Schema.Unknown and friends with an `$id` each use repeats: ids must be unique in a document
const withoutIds = (value: unknown): unknown =>
  Array.isArray(value)
    ? value.map(withoutIds)
    : isJson(value)
      ? Object.fromEntries(Object.entries(value).filter(([k]) => k !== "$id").map(([k, v]) => [k, withoutIds(v)]))
      : value

/**
 * The admin part of /openapi.json, derived from the declaration: its paths (each operation
 * with its bearer requirement) and the components they refer to (schemas, the security scheme).
 */
export const adminOpenApi = (): { paths: Record<string, unknown>; components: Record<string, unknown> } => {
  const spec = OpenApi.fromApi(AdminApi)
  const schemas: Json = Object.fromEntries(Object.entries(spec.components.schemas).filter(([name]) => !PLATFORM_ONLY.includes(name)))
  const paths: Record<string, unknown> = {}
  for (const [path, item] of Object.entries(spec.paths)) {
    paths[path] = Object.fromEntries(
      Object.entries(item).map(([verb, op]) => [
        verb,
        isJson(op) && isJson(op.responses)
          ? {
              ...op,
              // the admin API is ours, not the platform's: its operations are grouped under one tag
              tags: ["admin"],
              responses: Object.fromEntries(Object.entries(op.responses).map(([status, r]) => [status, codedResponse(r, schemas)]))
            }
          : op
      ])
    )
  }
  return { paths: withoutIds(paths) as Json, components: { schemas: withoutIds(schemas), securitySchemes: spec.components.securitySchemes } }
}
