/**
 * The admin API (Api.ts) served: one file per group under http/, assembled here with its
 * token check and coded errors, and the Node handler built on the app's own runtime — express
 * hands it every request under /admin/api.
 *
 * Endpoints with a body are `handleRaw`: the platform leaves the body alone, `jsonBody`
 * (http/Shared.ts) reads it, and the endpoint's declared payload schema decodes it.
 */
import { HttpApiBuilder, HttpApiError, HttpBody, HttpServerError, HttpServerResponse } from "@effect/platform"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Cause, Effect, Layer, Option } from "effect"
import { EventsStore } from "../events/EventsStore.js"
import { AdminApi, BadRequest } from "./Api.js"
import { AuthLive } from "./http/Auth.js"
import { CaptureLive } from "./http/Capture.js"
import { CrmLive } from "./http/Crm.js"
import { DeliveriesLive } from "./http/Deliveries.js"
import { DevicesLive } from "./http/Devices.js"
import { EventsLive } from "./http/Events.js"
import { FlowsLive } from "./http/Flows.js"
import { TargetsLive } from "./http/Targets.js"
import { WorkOrdersLive } from "./http/WorkOrders.js"

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
