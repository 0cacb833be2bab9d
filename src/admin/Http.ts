/**
 * The admin API's handlers (one per endpoint of Api.ts) and the Node handler that serves
 * them, built on the app's own runtime: express hands it every request under /admin/api.
 */
import { HttpApiBuilder, HttpApiError, HttpBody, HttpServerError, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import { SqlError } from "@effect/sql/SqlError"
import { Cause, Clock, Effect, Either, JSONSchema, Layer, Option, ParseResult, Redacted, Schema } from "effect"
import * as AdminSchema from "../../schemas/admin.js"
import { problemsOf } from "../../schemas/Param.js"
import { ensureAdminToken } from "../Bootstrap.js"
import { AppConfig } from "../config/AppConfig.js"
import { EventsStore } from "../events/EventsStore.js"
import { type DeadLetterFilter, DeadLetters } from "../forwarding/DeadLetters.js"
import { StoredTargetSchema, type Target, TargetSchema } from "../forwarding/Target.js"
import { Targets } from "../forwarding/Targets.js"
import { collect } from "../http/Params.js"
import { sameSecret } from "../shared/Secret.js"
import { BoxQueue, MAX_WAITING_PER_CHANNEL } from "../box/BoxQueue.js"
import { DevicesStore } from "../box/DevicesStore.js"
import { Lanes } from "../forwarding/Lanes.js"
import { FlowBody, FlowPatch, SoundBody, SoundName } from "../flows/FlowSchema.js"
import { FlowsStore, type Refused as FlowRefused } from "../flows/FlowsStore.js"
import { normalizeMac } from "../shared/Mac.js"
import { addCode, allCodesOf, codesOf, type Edit, fieldsOf, removeCode, replaceList, resetList, setLabels } from "../crm/Codes.js"
import { CODE_TYPE } from "../crm/Defaults.js"
import { SqlClient } from "@effect/sql"
import * as fs from "node:fs"
import * as NodeStream from "@effect/platform-node/NodeStream"
import { Capture } from "../capture/Capture.js"
import { PUSH_TARGET_PREFIX, pushTargetType } from "../workorders/PushTarget.js"
import { WorkOrdersStore } from "../workorders/WorkOrdersStore.js"
import { exchange } from "../forwarding/Attempt.js"
import { mobileLookup } from "../forwarding/Mentions.js"
import { TEMPLATES } from "../forwarding/templates/registry.js"
import { sampleFor, sampleOf } from "../forwarding/templates/Samples.js"
import { AdminApi, AdminAuth, BadRequest, CaptureBody, TestSendBody, CodeBody, CodeListBody, Conflict, DeviceBody, DeviceMessageBody, DevicePatch, FieldsBody, Full, Internal, NotFound, RecoverBody, ResendBody, TooLarge, Unauthorized, UnsupportedCharset, WorkOrderTypeBody } from "./Api.js"

const problem = (e: ParseResult.ParseError) => {
  const [issue] = problemsOf(e)
  return `${issue?.path || "(body)"}: ${issue?.message ?? "invalid"}`
}

/** Decodes with the endpoint's declared schema; the first problem, field named, is the 400. */
const decoder = <A, I>(schema: Schema.Schema<A, I>) => {
  const decode = Schema.decodeUnknownEither(schema, { errors: "first", onExcessProperty: "error" })
  return (input: unknown): Either.Either<A, BadRequest> => Either.mapLeft(decode(input), (e) => BadRequest.of(problem(e)))
}

/**
 * The JSON object of the body (an empty body is `{}`). Read by the bridge's own reader, not the
 * platform's: it keeps the configured body limit (413), the declared charset (415 for one it
 * cannot read) and the coded 400 for malformed JSON, where the platform's would die with a 500.
 */
const jsonBody = (request: HttpServerRequest.HttpServerRequest) =>
  Effect.gen(function* () {
    const { bodyLimitBytes } = (yield* AppConfig).http
    const { bodyText } = yield* collect(NodeHttpServerRequest.toIncomingMessage(request), { bodyLimit: bodyLimitBytes })
    const text = bodyText?.trim() ?? ""
    if (text === "") return {}
    const value = yield* Effect.try({ try: () => JSON.parse(text) as unknown, catch: () => BadRequest.of("malformed JSON body") })
    if (typeof value !== "object" || value === null || Array.isArray(value)) return yield* Effect.fail(BadRequest.of("(body): expected a JSON object"))
    return value as Record<string, unknown>
  }).pipe(
    Effect.catchTag("HttpRequestError", (e) =>
      Effect.fail(
        e.status === 413
          ? new TooLarge({ code: -12, message: e.message })
          : e.status === 415
            ? new UnsupportedCharset({ code: -14, message: e.message })
            : BadRequest.of(e.message)
      )
    )
  )

/** A storage failure is logged and answered 500/-3: the statement's text stays in the log. */
const storage = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.catchIf(
    effect,
    (e): e is Extract<E, SqlError> => e instanceof SqlError,
    (e) => Effect.zipRight(Effect.logError("admin API failed", e), Effect.fail(Internal.answer))
  )

const decodeTarget = decoder(TargetSchema)
// a stored target is shown as it is, even one that fails a check added since it was saved
const encodeTarget = Schema.encodeSync(StoredTargetSchema)
const decodeFilter = decoder(AdminSchema.DeadLetterFilter)

/** Filters from the query string (`ids=1,2`, ISO or ms times) or a JSON body. */
const filterFrom = (source: Record<string, unknown>): Either.Either<DeadLetterFilter, BadRequest> => {
  const input: Record<string, unknown> = { ...source }
  if (typeof input.ids === "string") input.ids = input.ids.split(",").filter(Boolean)
  if (Array.isArray(input.ids)) input.ids = input.ids.map((id: unknown) => (typeof id === "string" ? Number(id) : id))
  for (const k of ["since", "until"]) if (typeof input[k] === "string" && /^\d+$/.test(input[k] as string)) input[k] = Number(input[k])
  return decodeFilter(input)
}

/** Only the keys that were given: an absent query value is no filter, not an undefined one. */
const given = <T extends Record<string, string | undefined>>(q: T): Record<string, string> =>
  Object.fromEntries(Object.entries(q).filter((e): e is [string, string] => e[1] !== undefined))

interface PageRequest {
  readonly limit: number
  readonly before: number | undefined
}

/**
 * A page of a listing: `limit` (≤ 1000) rows older than `before` (an id of the listing); the
 * answer's `next` is the `before` of the following page, absent on the last one.
 */
const pageFrom = (q: { readonly limit?: string | undefined; readonly before?: string | undefined }, defaultLimit: number): Either.Either<PageRequest, BadRequest> => {
  const limit = q.limit === undefined ? defaultLimit : Number(q.limit)
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > 1000) return Either.left(BadRequest.of("limit: expected a whole number from 1 to 1000"))
  const before = q.before === undefined ? undefined : Number(q.before)
  if (before !== undefined && !Number.isSafeInteger(before)) return Either.left(BadRequest.of("before: expected an id from the previous page's next"))
  return Either.right({ limit, before })
}

/** One more row than the page is asked for: its presence says there is a next page. */
const paged = <A extends { readonly id: number }>(rows: ReadonlyArray<A>, page: PageRequest) =>
  rows.length > page.limit ? { items: rows.slice(0, page.limit), next: rows[page.limit - 1]!.id } : { items: rows }

const listPage = (status: string | undefined, filter: DeadLetterFilter, page: PageRequest) =>
  Effect.map(
    Effect.flatMap(DeadLetters, (d) => d.list(status, filter, page.limit + 1, page.before)),
    (rows) => paged(rows, page)
  )
const DELIVERY_STATUSES: ReadonlyArray<string> = ["pending", "in_flight", "delivered", "dead"]

const redriven = (r: { readonly redriven: number; readonly skipped: number }): typeof AdminSchema.Redriven.Type =>
  r.skipped === 0
    ? { code: 0, redriven: r.redriven }
    : { code: 0, redriven: r.redriven, skipped: r.skipped, message: `${r.skipped} dead letter(s) of targets that no longer exist were left as they are` }

/** A work-order type's push target is its type's: events `*` would push every event there, a deletion strand its pushes. */
const unmanaged = (name: string): Effect.Effect<void, BadRequest> => {
  const wotId = pushTargetType(name)
  return wotId === undefined
    ? Effect.void
    : Effect.fail(BadRequest.of(`target ${name}: names starting with ${PUSH_TARGET_PREFIX} are managed by work-order type ${wotId}: change the type's pushUrl (POST /admin/api/enterprises/:comp/workorder-types) instead`))
}

/** A target of the config file is the file's: changed through the API, the next start would undo it without a word. */
const notFromConfig = (name: string): Effect.Effect<void, Conflict, Targets> =>
  Effect.flatMap(Targets, (t) =>
    t.fromConfig(name)
      ? Effect.fail(new Conflict({ code: -10, message: `target ${name} comes from the config file (config/bridge.json or BRIDGE_CONFIG), which wins at every start: change it there` }))
      : Effect.void
  )

const existing = (name: string): Effect.Effect<Target, NotFound, Targets> =>
  Effect.flatMap(Targets, (t) => t.get(name)).pipe(Effect.flatMap((t) => (t ? Effect.succeed(t) : Effect.fail(NotFound.of(`target ${name}`)))))

const decodeTestSend = decoder(TestSendBody)

const templateItems = TEMPLATES.map((t) => ({
  name: t.name,
  title: t.title,
  description: t.description,
  url: { description: t.url.description, example: t.url.example },
  secret: t.secret ? { description: t.secret.description, required: t.secret.required ?? false } : null,
  settings: JSONSchema.make(t.settings) as unknown as Record<string, unknown>,
  transform: t.transform,
  events: t.events
}))

/**
 * A test-send: the event given (or a sample of the target's events) made into the request a
 * delivery would make, sent unless told not to. Nothing is stored and the target's circuit
 * does not move: it is the operator's look, not a delivery.
 */
const testSend = (target: Target, body: typeof TestSendBody.Type) =>
  Effect.gen(function* () {
    const sample = body.type === undefined ? sampleFor(target.events) : { type: body.type, data: sampleOf(body.type) ?? {} }
    const data = body.data ?? sample.data
    const enterprise = body.enterprise === undefined ? "100008" : body.enterprise
    const now = Date.now()
    const event = { id: 0, type: sample.type, occurred_at: now, enterprise, source: "admin:test", data: JSON.stringify(data), raw: null }
    const mobileOf = yield* mobileLookup
    const x = yield* exchange(target, event, `msg_test_${now}`, { mobileOf, send: body.send })
    const o = x.outcome
    const step = (s: (typeof x.steps)[number]) => ({ request: s.request, answer: s.answer === null ? null : { status: s.answer.status, body: s.answer.excerpt } })
    const last = x.steps.length === 0 ? undefined : step(x.steps[x.steps.length - 1]!)
    return {
      code: 0,
      message: "OK",
      event: { type: sample.type, enterprise, data },
      request: last?.request ?? null,
      answer: last?.answer ?? null,
      ...(x.steps.length > 1 ? { steps: x.steps.map(step) } : {}),
      outcome: !body.send && x.steps.length > 0 ? null : { kind: o.kind, ...(o.kind === "delivered" ? {} : { error: o.error }) }
    } as const
  })

// Endpoints with a body are `handleRaw`: the platform leaves the body alone, `jsonBody` reads it,
// and the endpoint's declared payload schema decodes it.
const TargetsLive = HttpApiBuilder.group(AdminApi, "targets", (handlers) =>
  handlers
    .handle("list", () =>
      Effect.gen(function* () {
        const lanes = yield* Lanes
        const now = yield* Clock.currentTimeMillis
        const targets = yield* Targets
        return { items: targets.snapshot().map((t) => ({ ...t, origin: targets.fromConfig(t.name) ? ("config" as const) : ("api" as const), circuit: lanes.view(t.name, now) })) }
      })
    )
    .handleRaw("create", ({ request }) =>
      Effect.gen(function* () {
        const target = yield* decodeTarget(yield* jsonBody(request))
        yield* unmanaged(target.name)
        const targets = yield* Targets
        if (yield* targets.get(target.name)) return yield* Effect.fail(new Conflict({ code: -10, message: `target ${target.name} exists already` }))
        yield* storage(targets.save(target, "api"))
        return { code: 0, message: "OK", target } as const
      })
    )
    .handle("get", ({ path }) =>
      Effect.gen(function* () {
        const target = yield* existing(path.name)
        return { ...target, origin: (yield* Targets).fromConfig(target.name) ? ("config" as const) : ("api" as const), circuit: (yield* Lanes).view(target.name, yield* Clock.currentTimeMillis) }
      })
    )
    .handleRaw("update", ({ path, request }) =>
      Effect.gen(function* () {
        const current = yield* existing(path.name)
        yield* unmanaged(path.name)
        const body = yield* jsonBody(request)
        // pausing and resuming is operating a target, not configuring it: allowed for the file's own
        // too (autoDisable may have paused one); the file's `enabled` applies again at the next start
        const onlyEnabled = Object.keys(body).length > 0 && Object.keys(body).every((k) => k === "enabled")
        if (!onlyEnabled) yield* notFromConfig(path.name)
        // null clears a field: an optional one is gone (transform, secret, rateLimit), one with a default is back to it
        const patched: Record<string, unknown> = { ...encodeTarget(current), ...body, name: current.name }
        for (const [k, v] of Object.entries(body)) if (v === null) delete patched[k]
        const merged = yield* decodeTarget(patched)
        // pending deliveries read their target when they are sent: the change applies to them at once
        yield* storage((yield* Targets).save(merged, "api"))
        return { code: 0, message: "OK", target: merged } as const
      })
    )
    .handle("remove", ({ path }) =>
      Effect.gen(function* () {
        yield* unmanaged(path.name)
        yield* notFromConfig(path.name)
        const removed = yield* storage((yield* Targets).remove(path.name))
        if (!removed) return yield* Effect.fail(NotFound.of(`target ${path.name}`))
        const deadLettered = yield* storage((yield* EventsStore).deadLetterWaiting(path.name))
        return { code: 0, message: "OK", deadLettered } as const
      })
    )
    .handleRaw("recover", ({ path, request }) =>
      Effect.gen(function* () {
        yield* existing(path.name)
        const body = yield* jsonBody(request)
        const other = Object.keys(body).find((k) => !(k in RecoverBody.fields))
        if (other !== undefined) return yield* Effect.fail(BadRequest.of(`${other}: not a field of recover (since, until)`))
        const filter = yield* filterFrom({ ...body, target: path.name })
        return redriven(yield* storage((yield* DeadLetters).redrive(filter)))
      })
    )
    .handleRaw("test", ({ path, request }) =>
      Effect.gen(function* () {
        const target = yield* existing(path.name)
        return yield* testSend(target, yield* decodeTestSend(yield* jsonBody(request)))
      })
    )
    .handle("templates", () => Effect.succeed({ items: templateItems }))
)

// other fields are ignored, as they always were
const decodeResend = Schema.decodeUnknownEither(ResendBody)

const EventsLive = HttpApiBuilder.group(AdminApi, "events", (handlers) =>
  handlers
    .handle("list", ({ urlParams: q }) =>
      Effect.gen(function* () {
        const since = q.since ? (/^\d+$/.test(q.since) ? Number(q.since) : Date.parse(q.since)) : 0
        if (Number.isNaN(since)) return yield* Effect.fail(BadRequest.of(`since: expected an ISO time or Unix ms, got ${JSON.stringify(q.since)}`))
        const page = yield* pageFrom(q, 100)
        const rows = yield* storage((yield* EventsStore).list({ type: q.type, since, limit: page.limit + 1, before: page.before }))
        return paged(rows, page)
      })
    )
    .handleRaw("resend", ({ path, request }) =>
      Effect.gen(function* () {
        const body = yield* jsonBody(request)
        const { target } = yield* Either.mapLeft(decodeResend(body), () => BadRequest.of("target: is missing"))
        yield* existing(target)
        const result = yield* storage((yield* DeadLetters).resend(Number(path.id), target))
        if (result.deliveryId === null) return yield* Effect.fail(NotFound.of(`event ${path.id}`))
        return result.waiting
          ? { code: -10, message: "the event's delivery to that target is waiting to be sent already", deliveryId: result.deliveryId }
          : { code: 0, message: "OK", deliveryId: result.deliveryId }
      })
    )
)

const DeliveriesLive = HttpApiBuilder.group(AdminApi, "deliveries", (handlers) =>
  handlers
    .handle("list", ({ urlParams: q }) =>
      Effect.gen(function* () {
        const filter = yield* filterFrom({ ...(q.target ? { target: q.target } : {}), ...(q.type ? { type: q.type } : {}) })
        if (q.status !== undefined && !DELIVERY_STATUSES.includes(q.status))
          return yield* Effect.fail(BadRequest.of(`status: expected one of ${DELIVERY_STATUSES.join(", ")}`))
        const page = yield* pageFrom(q, 100)
        return yield* storage(listPage(q.status, filter, page))
      })
    )
    .handle("deadLetters", ({ urlParams }) =>
      Effect.gen(function* () {
        const { limit, before, ...rest } = urlParams
        const filter = yield* filterFrom(given(rest))
        const page = yield* pageFrom({ limit, before }, 1000)
        return yield* storage(listPage("dead", filter, page))
      })
    )
    .handleRaw("redrive", ({ request }) =>
      Effect.gen(function* () {
        const filter = yield* filterFrom(yield* jsonBody(request))
        return redriven(yield* storage((yield* DeadLetters).redrive(filter)))
      })
    )
    .handleRaw("purge", ({ request, urlParams }) =>
      Effect.gen(function* () {
        const filter = yield* filterFrom({ ...given(urlParams), ...(yield* jsonBody(request)) })
        if (Object.keys(filter).length === 0)
          return yield* Effect.fail(BadRequest.of("(filter): name what to delete (target, type, ids, since/until); deleting every dead letter takes since=0"))
        return { code: 0, deleted: yield* storage((yield* DeadLetters).purge(filter)) } as const
      })
    )
)

/** The token is read per request, as it always was: the file may be replaced while the bridge runs. */
const AuthLive = Layer.effect(
  AdminAuth,
  Effect.map(Effect.context<AppConfig>(), (context) =>
    AdminAuth.of({
      // the platform cuts the header's first 7 characters whatever they say: the scheme is checked
      // here, case-insensitively (RFC 9110 §11.1), so a token under another scheme is refused
      bearer: (token) =>
        Effect.gen(function* () {
          const request = yield* HttpServerRequest.HttpServerRequest
          const expected = yield* Effect.provide(ensureAdminToken, context)
          const scheme = /^bearer\s+/i.test(request.headers.authorization ?? "")
          if (!scheme || !sameSecret(Redacted.value(token).trim(), expected)) return yield* Effect.fail(Unauthorized.answer)
        })
    })
  )
)

/**
 * The platform's own decoding (the query strings) answers in the API's coded style too. Its
 * failure is not in the app's error type: it arrives as a failure all the same.
 */
const CodedDecodeErrors = HttpApiBuilder.middleware(AdminApi, (app) =>
  Effect.catchAllCause(app, (cause) => {
    const failure: Option.Option<unknown> = Cause.failureOption(cause)
    if (Option.isNone(failure) || !(failure.value instanceof HttpApiError.HttpApiDecodeError)) return Effect.failCause(cause)
    const [issue] = failure.value.issues
    return Effect.fail(BadRequest.of(`${issue?.path.join(".") || "(query)"}: ${issue?.message ?? failure.value.message}`))
  })
)

const macFrom = (text: string) => Effect.fromNullable(normalizeMac(text)).pipe(Effect.mapError(() => BadRequest.of(`mac: expected a MAC address such as 00:1A:2B:3C:4D:5E, got ${JSON.stringify(text.slice(0, 64))}`)))
const decodeDevice = decoder(DeviceBody)
const decodeDevicePatch = decoder(DevicePatch)
const decodeDeviceMessage = decoder(DeviceMessageBody)
const deviceOf = (mac: string) =>
  Effect.flatMap(storage(Effect.flatMap(DevicesStore, (d) => d.get(mac))), (device) => (device ? Effect.succeed(device) : Effect.fail(NotFound.of(`device ${mac}`))))

const DevicesLive = HttpApiBuilder.group(AdminApi, "devices", (handlers) =>
  handlers
    .handle("list", () => Effect.map(storage(Effect.flatMap(DevicesStore, (d) => d.list)), (items) => ({ items })))
    .handleRaw("create", ({ request }) =>
      Effect.gen(function* () {
        const body = yield* decodeDevice(yield* jsonBody(request))
        const mac = yield* macFrom(body.mac)
        const created = yield* storage((yield* DevicesStore).create(mac, body))
        if (created === "exists") return yield* Effect.fail(new Conflict({ code: -10, message: `device ${mac} is registered already` }))
        if ("refused" in created) return yield* Effect.fail(BadRequest.of(created.refused))
        return { code: 0, message: "OK", device: created } as const
      })
    )
    .handle("get", ({ path }) => Effect.flatMap(macFrom(path.mac), deviceOf))
    .handleRaw("update", ({ path, request }) =>
      Effect.gen(function* () {
        const mac = yield* macFrom(path.mac)
        const patch = yield* decodeDevicePatch(yield* jsonBody(request))
        const device = yield* storage((yield* DevicesStore).update(mac, patch))
        if (!device) return yield* Effect.fail(NotFound.of(`device ${mac}`))
        if ("refused" in device) return yield* Effect.fail(BadRequest.of(device.refused))
        return { code: 0, message: "OK", device } as const
      })
    )
    .handleRaw("message", ({ path, request }) =>
      Effect.gen(function* () {
        const mac = yield* macFrom(path.mac)
        const body = yield* decodeDeviceMessage(yield* jsonBody(request))
        const device = yield* deviceOf(mac)
        if (device.pending) return yield* Effect.fail(NotFound.of(`registered device ${mac}`))
        const queued = yield* storage((yield* BoxQueue).queue(device, { channel: body.channel, phone: body.phone, status: "51", memo: { functionname: body.functionname, paramvalue: body.paramvalue } }, { by: "admin", source: "admin" }))
        if (queued.outcome === "full") return yield* Effect.fail(new Full({ code: -12, message: `channel ${body.channel} of box ${mac} has ${MAX_WAITING_PER_CHANNEL} entries waiting already` }))
        return { code: 0, message: "OK", id: queued.id } as const
      })
    )
    .handle("remove", ({ path }) =>
      Effect.gen(function* () {
        const mac = yield* macFrom(path.mac)
        if (!(yield* storage((yield* DevicesStore).remove(mac)))) return yield* Effect.fail(NotFound.of(`device ${mac}`))
        return { code: 0, message: "OK" } as const
      })
    )
)

/** An enterprise of the path: 400 when it is no enterprise number, 404 when there is none such. */
const enterprise = (comp: string) =>
  Effect.gen(function* () {
    if (!/^\d{6}$/.test(comp)) return yield* Effect.fail(BadRequest.of(`comp: expected a 6-digit enterprise number, got ${JSON.stringify(comp.slice(0, 64))}`))
    const sql = yield* SqlClient.SqlClient
    const found = yield* storage(sql<{ comp_number: string }>`SELECT comp_number FROM enterprises WHERE comp_number = ${comp}`)
    if (found.length === 0) return yield* Effect.fail(NotFound.of(`enterprise ${comp}`))
    return comp
  })
const codeTypeOf = (text: string) =>
  CODE_TYPE.test(text) ? Effect.succeed(text) : Effect.fail(BadRequest.of(`codeType: expected a code type such as custStatus (letters, digits, _; at most 50), got ${JSON.stringify(text.slice(0, 64))}`))
/** An edit's outcome as the admin API's answers. */
const edited = <A>(edit: Edit<A>): Effect.Effect<A, NotFound | Conflict | BadRequest> =>
  "ok" in edit
    ? Effect.succeed(edit.ok)
    : "missing" in edit
      ? Effect.fail(NotFound.of(edit.missing))
      : "exists" in edit
        ? Effect.fail(new Conflict({ code: -10, message: edit.exists }))
        : Effect.fail(BadRequest.of(edit.refused))
const decodeFields = decoder(FieldsBody)
const decodeCodeList = decoder(CodeListBody)
const decodeCode = decoder(CodeBody)

const CrmLive = HttpApiBuilder.group(AdminApi, "crm", (handlers) =>
  handlers
    .handle("fields", ({ path }) =>
      Effect.gen(function* () {
        const items = yield* storage(fieldsOf(yield* enterprise(path.comp)))
        return { code: 0, message: "OK", items } as const
      })
    )
    .handleRaw("setFields", ({ path, request }) =>
      Effect.gen(function* () {
        const comp = yield* enterprise(path.comp)
        const { labels } = yield* decodeFields(yield* jsonBody(request))
        const items = yield* storage(setLabels(comp, labels))
        return { code: 0, message: "OK", items } as const
      })
    )
    .handle("lists", ({ path }) =>
      Effect.gen(function* () {
        const items = yield* storage(allCodesOf(yield* enterprise(path.comp)))
        return { code: 0, message: "OK", items } as const
      })
    )
    .handle("codes", ({ path }) =>
      Effect.gen(function* () {
        const comp = yield* enterprise(path.comp)
        const type = yield* codeTypeOf(path.codeType)
        return { code: 0, message: "OK", codeType: type, items: yield* storage(codesOf(comp, type)) } as const
      })
    )
    .handleRaw("replaceCodes", ({ path, request }) =>
      Effect.gen(function* () {
        const comp = yield* enterprise(path.comp)
        const type = yield* codeTypeOf(path.codeType)
        const { items } = yield* decodeCodeList(yield* jsonBody(request))
        return { code: 0, message: "OK", codeType: type, items: yield* storage(replaceList(comp, type, items)) } as const
      })
    )
    .handleRaw("addCode", ({ path, request }) =>
      Effect.gen(function* () {
        const comp = yield* enterprise(path.comp)
        const type = yield* codeTypeOf(path.codeType)
        const body = yield* decodeCode(yield* jsonBody(request))
        const item = yield* Effect.flatMap(storage(addCode(comp, type, body)), edited)
        return { code: 0, message: "OK", item } as const
      })
    )
    .handle("removeCode", ({ path }) =>
      Effect.gen(function* () {
        const comp = yield* enterprise(path.comp)
        const type = yield* codeTypeOf(path.codeType)
        const id = /^\d{1,16}$/.test(path.codeId) ? Number(path.codeId) : undefined
        if (id === undefined) return yield* Effect.fail(BadRequest.of(`codeId: expected a codeId of the list, got ${JSON.stringify(path.codeId.slice(0, 64))}`))
        const removed = yield* storage(removeCode(comp, type, id))
        if ("missing" in removed) return yield* Effect.fail(NotFound.of(removed.missing))
        if ("refused" in removed) return yield* Effect.fail(BadRequest.of(removed.refused))
        return { code: 0, message: "OK" } as const
      })
    )
    .handle("resetCodes", ({ path }) =>
      Effect.gen(function* () {
        const comp = yield* enterprise(path.comp)
        const type = yield* codeTypeOf(path.codeType)
        return { code: 0, message: "OK", codeType: type, items: yield* storage(resetList(comp, type)) } as const
      })
    )
)

const decodeFlow = decoder(FlowBody)
const decodeFlowPatch = decoder(FlowPatch)
const decodeSound = decoder(SoundBody)
const isSoundName = (text: string): boolean => Schema.is(SoundName)(text)
const soundNameOf = (text: string) =>
  isSoundName(text) ? Effect.succeed(text) : Effect.fail(BadRequest.of(`name: expected a sound file name such as welcome.wav (.wav, .mp3 or .gsm), got ${JSON.stringify(text.slice(0, 64))}`))
const flowOutcome = <A>(outcome: A | "exists" | FlowRefused | undefined, what: string): Effect.Effect<A, NotFound | Conflict | BadRequest> =>
  outcome === undefined
    ? Effect.fail(NotFound.of(what))
    : outcome === "exists"
      ? Effect.fail(new Conflict({ code: -10, message: `${what} exists already` }))
      : typeof outcome === "object" && outcome !== null && "refused" in outcome
        ? Effect.fail(BadRequest.of((outcome as FlowRefused).refused))
        : Effect.succeed(outcome as A)

const FlowsLive = HttpApiBuilder.group(AdminApi, "flows", (handlers) =>
  handlers
    .handle("list", ({ path }) =>
      Effect.gen(function* () {
        const comp = yield* enterprise(path.comp)
        return { items: yield* storage((yield* FlowsStore).list(comp)) }
      })
    )
    .handleRaw("create", ({ path, request }) =>
      Effect.gen(function* () {
        const comp = yield* enterprise(path.comp)
        const body = yield* decodeFlow(yield* jsonBody(request))
        const flow = yield* flowOutcome(yield* storage((yield* FlowsStore).create(comp, body)), `flow ${body.name}`)
        return { code: 0, message: "OK", flow } as const
      })
    )
    .handleRaw("update", ({ path, request }) =>
      Effect.gen(function* () {
        const comp = yield* enterprise(path.comp)
        const patch = yield* decodeFlowPatch(yield* jsonBody(request))
        const flow = yield* flowOutcome(yield* storage((yield* FlowsStore).update(comp, path.id, patch)), `flow ${path.id}`)
        return { code: 0, message: "OK", flow } as const
      })
    )
    .handle("remove", ({ path }) =>
      Effect.gen(function* () {
        const comp = yield* enterprise(path.comp)
        const removed = yield* storage((yield* FlowsStore).remove(comp, path.id))
        if (removed === false) return yield* Effect.fail(NotFound.of(`flow ${path.id}`))
        if (typeof removed === "object") return yield* Effect.fail(BadRequest.of(removed.refused))
        return { code: 0, message: "OK" } as const
      })
    )
    .handleRaw("sound", ({ path, request }) =>
      Effect.gen(function* () {
        const comp = yield* enterprise(path.comp)
        const name = yield* soundNameOf(path.name)
        const { base64 } = yield* decodeSound(yield* jsonBody(request))
        const clean = base64.replace(/\s+/g, "")
        if (clean === "" || !/^[A-Za-z0-9+/]+={0,2}$/.test(clean)) return yield* Effect.fail(BadRequest.of("base64: expected the sound's bytes in Base64"))
        yield* (yield* FlowsStore).saveSound(comp, name, Buffer.from(clean, "base64")).pipe(
          Effect.catchAll((e) => Effect.zipRight(Effect.logError("a sound could not be stored", e), Effect.fail(Internal.answer)))
        )
        return { code: 0, message: "OK", wfPath: `${comp}/${name}` } as const
      })
    )
)

const decodeCapture = decoder(CaptureBody)

const CaptureLive = HttpApiBuilder.group(AdminApi, "capture", (handlers) =>
  handlers
    .handleRaw("set", ({ request }) =>
      Effect.gen(function* () {
        const { enabled } = yield* decodeCapture(yield* jsonBody(request))
        const capture = yield* (yield* Capture).set(enabled)
        return { code: 0, message: "OK", capture } as const
      })
    )
    .handle("status", () => Effect.map(Capture, (c) => ({ code: 0, message: "OK", capture: c.status() }) as const))
    .handleRaw("download", () =>
      Effect.gen(function* () {
        const capture = yield* Capture
        yield* capture.flush
        if (!fs.existsSync(capture.file)) return yield* Effect.fail(NotFound.of("capture file"))
        const body = NodeStream.fromReadable(
          () => fs.createReadStream(capture.file),
          (e) => e
        )
        return HttpServerResponse.stream(body, { contentType: "application/x-ndjson" })
      })
    )
)

const decodeWorkOrderType = decoder(WorkOrderTypeBody)

const typeIdOf = (text: string) => {
  const n = Number(text)
  return /^\d{1,16}$/.test(text) && Number.isSafeInteger(n) ? Effect.succeed(n) : Effect.fail(BadRequest.of(`wotId: expected a work-order type's id, got ${JSON.stringify(text.slice(0, 64))}`))
}

const WorkOrdersLive = HttpApiBuilder.group(AdminApi, "workorders", (handlers) =>
  handlers
    .handle("types", ({ path }) =>
      Effect.gen(function* () {
        const comp = yield* enterprise(path.comp)
        const store = yield* WorkOrdersStore
        const items = yield* storage(Effect.forEach(yield* storage(store.types(comp)), (t) => store.definition(comp, t.wot_id)))
        return { code: 0, message: "OK", items: items.filter((t) => t !== undefined) } as const
      })
    )
    .handleRaw("saveType", ({ path, request }) =>
      Effect.gen(function* () {
        const comp = yield* enterprise(path.comp)
        const body = yield* decodeWorkOrderType(yield* jsonBody(request))
        const def = { ...body, enterprise: comp }
        const store = yield* WorkOrdersStore
        const sql = yield* SqlClient.SqlClient
        const unknown = yield* storage(store.unknownPeople(def))
        if (unknown.length > 0) return yield* Effect.fail(BadRequest.of(`steps: people ${unknown.join(", ")} are not extensions of enterprise ${comp}`))
        const wotId = yield* storage(Effect.flatMap(Clock.currentTimeMillis, (now) => sql.withTransaction(store.saveType(def, now)))).pipe(
          Effect.catchTag("StepsInUse", (e) => Effect.fail(new Conflict({ code: -10, message: e.message })))
        )
        return { code: 0, message: "OK", type: (yield* storage(store.definition(comp, wotId)))! } as const
      })
    )
    .handle("type", ({ path }) =>
      Effect.gen(function* () {
        const comp = yield* enterprise(path.comp)
        const wotId = yield* typeIdOf(path.wotId)
        const found = yield* storage((yield* WorkOrdersStore).definition(comp, wotId))
        if (found === undefined) return yield* Effect.fail(NotFound.of(`work-order type ${wotId} of enterprise ${comp}`))
        return { code: 0, message: "OK", type: found } as const
      })
    )
    .handle("removeType", ({ path }) =>
      Effect.gen(function* () {
        const comp = yield* enterprise(path.comp)
        const wotId = yield* typeIdOf(path.wotId)
        const outcome = yield* storage((yield* WorkOrdersStore).removeType(comp, wotId))
        if (outcome === "missing") return yield* Effect.fail(NotFound.of(`work-order type ${wotId} of enterprise ${comp}`))
        if (outcome === "in use") return yield* Effect.fail(new Conflict({ code: -10, message: `work-order type ${wotId} has work orders: it stays` }))
        return { code: 0, message: "OK" } as const
      })
    )
)

const GroupsLive = Layer.mergeAll(TargetsLive, EventsLive, DeliveriesLive, DevicesLive, CrmLive, FlowsLive, WorkOrdersLive, CaptureLive).pipe(Layer.provide(AuthLive), Layer.provide(EventsStore.Default))

export const AdminLive = HttpApiBuilder.api(AdminApi).pipe(
  Layer.provide(GroupsLive),
  Layer.provideMerge(HttpApiBuilder.Router.Live),
  Layer.provideMerge(HttpApiBuilder.Middleware.layer),
  Layer.provide(CodedDecodeErrors)
)

/**
 * What the answers always carried: JSON declared UTF-8 (the platform's JSON answers name no
 * charset), and on a 401 the scheme to use (RFC 9110 §11.6.1).
 */
const asBefore = (res: HttpServerResponse.HttpServerResponse) => {
  const json = res.body._tag === "Uint8Array" && res.body.contentType === "application/json" ? HttpServerResponse.setBody(res, HttpBody.uint8Array(res.body.body, "application/json; charset=utf-8")) : res
  return json.status === 401 ? HttpServerResponse.setHeader(json, "www-authenticate", "Bearer") : json
}

const coded = (status: number, code: number, message: string) => HttpServerResponse.unsafeJson({ code, message }, { status })

/**
 * The Node handler of /admin/api: built once on the app's runtime (the services it uses are
 * that runtime's), each request a fiber of that runtime. A path that is no endpoint is answered
 * like the bridge's other unknown paths; anything unforeseen is logged and answered 500/-3,
 * never with its details.
 */
export const adminHandler = Effect.gen(function* () {
  const app = yield* Effect.provide(HttpApiBuilder.httpApp, AdminLive)
  const served = app.pipe(
    // the router's RouteNotFound is not in the app's error type: it arrives as a failure all the same
    Effect.catchAllCause((cause) => {
      const failure: Option.Option<unknown> = Cause.failureOption(cause)
      if (Option.isSome(failure) && failure.value instanceof HttpServerError.RouteNotFound) {
        const { method, url } = failure.value.request
        return Effect.succeed(coded(404, -11, `no such endpoint: ${method} ${new URL(url, "http://x").pathname}`))
      }
      // a client gone away: its fiber was interrupted, nobody waits for an answer (counted by the host)
      if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause)
      return Effect.as(Effect.logError("admin API failed", cause), coded(500, -3, "internal error"))
    }),
    Effect.map(asBefore)
  )
  return yield* Effect.provide(NodeHttpServer.makeHandler(served), NodeHttpServer.layerContext)
})
