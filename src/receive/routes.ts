/**
 * The platform's pushes (§2.10.4, §2.12.9, §2.3.1). Answered `{"code":0,"message":"OK"}`
 * only once the event — and its deliveries and state change — is committed to disk; a
 * sender's retry (same natural key) is acknowledged again and stored once.
 */
import * as crypto from "node:crypto"
import type { IncomingMessage } from "node:http"
import { Effect, Either, ParseResult, Schema } from "effect"
import { AuthFailed, NoPermission, StorageFailed } from "../api/Errors.js"
import { toInvalidParam } from "../api/Implementation.js"
import type { AppConfigShape } from "../config/AppConfig.js"
import { GroupCommit } from "../db/GroupCommit.js"
import { Outbox } from "../events/Outbox.js"
import { collect, requestTarget, toRawParams } from "../http/Params.js"
import { json, type Route } from "../http/Route.js"
import { allowList } from "../shared/Network.js"
import { type Receiver, receivers, requestHash } from "./receivers.js"

const OK = { code: 0, message: "OK" } as const

const sameSecret = (given: string | undefined, expected: string) =>
  given !== undefined && given.length === expected.length && crypto.timingSafeEqual(Buffer.from(given), Buffer.from(expected))

/** The request as received, so a passthrough can re-send the original bytes. */
const rawOf = (req: IncomingMessage, body: Buffer | undefined, pairs: ReadonlyArray<readonly [string, string]>) =>
  JSON.stringify({
    method: req.method,
    query: requestTarget(req.url ?? "").split("?")[1] ?? "",
    contentType: req.headers["content-type"] ?? null,
    ...(body ? { body: body.toString("utf8") } : { fields: pairs })
  })

const routeFor = <A>(receiver: Receiver<A>, config: AppConfigShape["receive"][Receiver<A>["name"]], bodyLimit: number): Route => {
  const allowed = allowList(config.allowFrom)
  const decode = Schema.decodeUnknownEither(receiver.schema, { errors: "first", onExcessProperty: "ignore" })
  return {
    methods: receiver.methods,
    path: config.path,
    handle: (req) =>
      Effect.gen(function* () {
        if (config.allowFrom.length > 0 && !allowed(req.socket.remoteAddress))
          return yield* new NoPermission({ message: `pushes to ${config.path} are not accepted from ${req.socket.remoteAddress}` })
        const { pairs, rawBody } = yield* collect(req, { bodyLimit })
        const params = toRawParams(pairs)
        if (config.token !== undefined) {
          const header = req.headers["x-bridge-token"]
          const given = typeof params.token === "string" ? params.token : typeof header === "string" ? header : undefined
          if (!sameSecret(given, config.token)) return yield* new AuthFailed({ message: "authentication failed: wrong or missing token" })
        }
        const decoded = decode(params)
        if (Either.isLeft(decoded)) return yield* toInvalidParam(decoded.left as ParseResult.ParseError)
        const received = receiver.receive(decoded.right)
        const outbox = yield* Outbox
        const commit = yield* GroupCommit
        const apply = receiver.apply ? yield* receiver.apply(received) : undefined
        const event = {
          type: received.type,
          enterprise: received.enterprise,
          source: `push:${receiver.name}`,
          data: received.data,
          raw: rawOf(req, rawBody, pairs),
          dedupKey: received.key ?? `${receiver.name}:${requestHash(pairs)}`
        }
        yield* commit
          .submit((_, prepared) => {
            const eventId = outbox.emitIn(prepared, event)
            // a retry of a push already stored changes nothing
            if (eventId !== null && apply) apply(prepared)
          })
          .pipe(
            Effect.catchAll((e) =>
              Effect.zipRight(Effect.logError("push could not be stored", e), Effect.fail(new StorageFailed({ message: "the push could not be stored; send it again" })))
            )
          )
        return json(OK)
      })
  }
}

export const routesFor = (config: AppConfigShape): ReadonlyArray<Route> =>
  receivers.map((r) => routeFor(r as Receiver<unknown>, config.receive[r.name], config.http.bodyLimitBytes))
