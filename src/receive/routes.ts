/**
 * The platform's pushes (§2.10.4, §2.12.9, §2.3.1). Answered `{"code":0,"message":"OK"}`
 * only once the event — and its deliveries and state change — is committed to disk; a
 * sender's retry (same natural key) is acknowledged again and stored once.
 */
import type { IncomingMessage } from "node:http"
import { Clock, Effect, Either, ParseResult, Schema } from "effect"
import { parse as parseLossless, stringify as stringifyLossless } from "lossless-json"
import { AuthFailed, NoPermission, StorageFailed } from "../api/Errors.js"
import { toInvalidParam } from "../api/Implementation.js"
import type { AppConfigShape } from "../config/AppConfig.js"
import { GroupCommit } from "../db/GroupCommit.js"
import { Outbox } from "../events/Outbox.js"
import { collect, queryPairs, requestTarget, toRawParams } from "../http/Params.js"
import { json, type Route } from "../http/Route.js"
import { allowList } from "../shared/Network.js"
import { sameSecret } from "../shared/Secret.js"
import { type Receiver, receivers, requestKey } from "./receivers.js"

const OK = { code: 0, message: "OK" } as const
/** the parameter that carries a receiver's shared token (or the X-Bridge-Token header) */
const TOKEN = "token"

/** `a=1&token=x&b=2` without the parameters named `secret`, every other byte as it came. */
const withoutParam = (text: string, secret: string) => {
  // the name as it is, or percent-encoded: nothing to take out of most requests
  if (!text.includes(secret) && !text.includes("%")) return text
  return text
    .split("&")
    .filter((part) => {
      const name = part.split("=", 1)[0]!.replace(/\+/g, " ")
      try {
        return decodeURIComponent(name) !== secret
      } catch {
        return name !== secret
      }
    })
    .join("&")
}

/** The JSON body without its top-level `secret` key; numbers keep their exact digits (lossless-json). */
const withoutJsonKey = (text: string, secret: string) => {
  if (!text.includes(`"${secret}"`)) return text
  try {
    const value = parseLossless(text)
    if (typeof value !== "object" || value === null || Array.isArray(value) || !(secret in value)) return text
    const { [secret]: _, ...rest } = value as Record<string, unknown>
    return stringifyLossless(rest) ?? text
  } catch {
    return text
  }
}

/**
 * The request as received, so a passthrough can re-send the original bytes — less the
 * receiver's own `token`, which is ours and must not travel on to the targets. A multipart
 * body keeps its fields without the query's (the passthrough joins the two again).
 */
const rawOf = (req: IncomingMessage, body: Buffer | undefined, pairs: ReadonlyArray<readonly [string, string]>, strip: string | undefined) => {
  const query = requestTarget(req.url ?? "").split("?")[1] ?? ""
  const contentType = req.headers["content-type"] ?? null
  const clean = (text: string) => (strip === undefined ? text : withoutParam(text, strip))
  const bodyText = body?.toString("utf8")
  return JSON.stringify({
    method: req.method,
    query: clean(query),
    contentType,
    ...(bodyText !== undefined
      ? { body: strip === undefined ? bodyText : /json/i.test(contentType ?? "") ? withoutJsonKey(bodyText, strip) : clean(bodyText) }
      : { fields: pairs.slice(queryPairs(req.url ?? "").length).filter(([k]) => k !== strip) })
  })
}

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
          const given = typeof params[TOKEN] === "string" ? params[TOKEN] : typeof header === "string" ? header : undefined
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
          raw: rawOf(req, rawBody, pairs, config.token === undefined ? undefined : TOKEN),
          dedupKey: received.key ?? `${receiver.name}:${requestKey(pairs.filter(([k]) => k !== TOKEN), yield* Clock.currentTimeMillis)}`
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
