/**
 * The admin JSON API under /admin/api (bearer token): targets, events, deliveries, dead
 * letters and redrive. Bodies are validated with the same schemas as the config file.
 */
import type { IncomingMessage } from "node:http"
import { SqlClient } from "@effect/sql"
import { Effect, Either, ParseResult, Schema } from "effect"
import * as AdminSchema from "../../schemas/admin.js"
import type { AppServices } from "../AppServices.js"
import { ensureAdminToken } from "../Bootstrap.js"
import { AppConfig } from "../config/AppConfig.js"
import { type DeadLetterFilter, DeadLetters, storedData } from "../forwarding/DeadLetters.js"
import { StoredTargetSchema, TargetSchema } from "../forwarding/Target.js"
import { Targets } from "../forwarding/Targets.js"
import { collect, queryPairs } from "../http/Params.js"
import { type HttpAnswer, json, type Route } from "../http/Route.js"
import { sameSecret } from "../shared/Secret.js"

type Req = IncomingMessage & { readonly params?: Readonly<Record<string, string | string[]>> }

const unauthorized = json({ code: -2, message: "admin API: missing or wrong bearer token" }, 401, { "www-authenticate": "Bearer" })
const bad = (message: string) => json({ code: -14, message }, 400)
const missing = (what: string) => json({ code: -11, message: `${what} does not exist` }, 404)

/** Checks the bearer token, then runs the handler. */
const admin = (handle: (req: Req) => Effect.Effect<HttpAnswer, unknown, AppServices>): Route["handle"] => (req) =>
  Effect.gen(function* () {
    const token = yield* ensureAdminToken
    const header = req.headers.authorization ?? ""
    // the scheme name is case-insensitive (RFC 9110 §11.1)
    const given = /^bearer\s+/i.test(header) ? header.replace(/^bearer\s+/i, "").trim() : ""
    if (!sameSecret(given, token)) return unauthorized
    return yield* handle(req)
  }).pipe(Effect.catchAll((e) => Effect.zipRight(Effect.logError("admin API failed", e), Effect.succeed(json({ code: -3, message: "internal error" }, 500)))))

/** The JSON object of the body (an empty body is `{}`), or the answer that refuses it. */
const jsonBody = (req: Req): Effect.Effect<Either.Either<Record<string, unknown>, HttpAnswer>, never, AppConfig> =>
  Effect.gen(function* () {
    const { bodyLimitBytes } = (yield* AppConfig).http
    const { bodyText } = yield* collect(req, { bodyLimit: bodyLimitBytes })
    const text = bodyText?.trim() ?? ""
    if (text === "") return {}
    const value = yield* Effect.try({ try: () => JSON.parse(text) as unknown, catch: () => bad("malformed JSON body") })
    if (typeof value !== "object" || value === null || Array.isArray(value)) return yield* Effect.fail(bad("(body): expected a JSON object"))
    return value as Record<string, unknown>
  }).pipe(
    Effect.catchTag("HttpRequestError", (e) => Effect.fail(json({ code: e.code, message: e.message }, e.status))),
    Effect.either
  )

const problem = (e: ParseResult.ParseError) => {
  const [issue] = ParseResult.ArrayFormatter.formatErrorSync(e)
  return `${issue?.path.join(".") || "(body)"}: ${issue?.message ?? "invalid"}`
}

const decodeTarget = Schema.decodeUnknownEither(TargetSchema, { errors: "first", onExcessProperty: "error" })
// a stored target is shown as it is, even one that fails a check added since it was saved
const encodeTarget = Schema.encodeSync(StoredTargetSchema)

const decodeFilter = Schema.decodeUnknownEither(AdminSchema.DeadLetterFilter, { errors: "first", onExcessProperty: "error" })

/** Filters from the query string (`ids=1,2`, ISO or ms times) or a JSON body. */
const filterFrom = (source: Record<string, unknown>): Either.Either<DeadLetterFilter, string> => {
  const input: Record<string, unknown> = { ...source }
  if (typeof input.ids === "string") input.ids = input.ids.split(",").filter(Boolean)
  if (Array.isArray(input.ids)) input.ids = input.ids.map((id: unknown) => (typeof id === "string" ? Number(id) : id))
  for (const k of ["since", "until"]) if (typeof input[k] === "string" && /^\d+$/.test(input[k] as string)) input[k] = Number(input[k])
  return Either.mapLeft(decodeFilter(input), problem)
}

const query = (req: Req) => Object.fromEntries(queryPairs(req.url ?? ""))

/**
 * A page of a listing: `limit` (≤ 1000) rows older than `before` (an id of the listing); the
 * answer's `next` is the `before` of the following page, absent on the last one.
 */
const pageFrom = (q: Record<string, string>, defaultLimit: number): Either.Either<{ readonly limit: number; readonly before: number | undefined }, string> => {
  const limit = q.limit === undefined ? defaultLimit : Number(q.limit)
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > 1000) return Either.left("limit: expected a whole number from 1 to 1000")
  const before = q.before === undefined ? undefined : Number(q.before)
  if (before !== undefined && !Number.isSafeInteger(before)) return Either.left("before: expected an id from the previous page's next")
  return Either.right({ limit, before })
}

const listPage = (status: string | undefined, filter: DeadLetterFilter, page: { readonly limit: number; readonly before: number | undefined }) =>
  Effect.map(
    Effect.flatMap(DeadLetters, (d) => d.list(status, filter, page.limit + 1, page.before)),
    (rows) => (rows.length > page.limit ? { items: rows.slice(0, page.limit), next: rows[page.limit - 1]!.id } : { items: rows })
  )
const DELIVERY_STATUSES: ReadonlyArray<string> = ["pending", "in_flight", "delivered", "dead"]

const redriven = (r: { readonly redriven: number; readonly skipped: number }) =>
  r.skipped === 0
    ? { code: 0, redriven: r.redriven }
    : { code: 0, redriven: r.redriven, skipped: r.skipped, message: `${r.skipped} dead letter(s) of targets that no longer exist were left as they are` }
const nameOf = (req: Req) => String(req.params?.name ?? "")

export const routes: ReadonlyArray<Route> = [
  {
    methods: ["GET"],
    path: "/admin/api/targets",
    handle: admin(() => Effect.map(Targets, (t) => json({ items: t.snapshot().map((x) => encodeTarget(x)) })))
  },
  {
    methods: ["POST"],
    path: "/admin/api/targets",
    handle: admin((req) =>
      Effect.gen(function* () {
        const body = yield* jsonBody(req)
        if (Either.isLeft(body)) return body.left
        const target = decodeTarget(body.right)
        if (Either.isLeft(target)) return bad(problem(target.left))
        const targets = yield* Targets
        if (yield* targets.get(target.right.name)) return json({ code: -10, message: `target ${target.right.name} exists already` }, 409)
        yield* targets.save(target.right, "api")
        return json({ code: 0, message: "OK", target: encodeTarget(target.right) }, 201)
      })
    )
  },
  {
    methods: ["GET"],
    path: "/admin/api/targets/:name",
    handle: admin((req) =>
      Effect.gen(function* () {
        const t = yield* (yield* Targets).get(nameOf(req))
        return t ? json(encodeTarget(t)) : missing(`target ${nameOf(req)}`)
      })
    )
  },
  {
    methods: ["PATCH"],
    path: "/admin/api/targets/:name",
    handle: admin((req) =>
      Effect.gen(function* () {
        const targets = yield* Targets
        const current = yield* targets.get(nameOf(req))
        if (!current) return missing(`target ${nameOf(req)}`)
        const body = yield* jsonBody(req)
        if (Either.isLeft(body)) return body.left
        // null clears a field: an optional one is gone (transform, secret, rateLimit), one with a default is back to it
        const patched: Record<string, unknown> = { ...encodeTarget(current), ...body.right, name: current.name }
        for (const [k, v] of Object.entries(body.right)) if (v === null) delete patched[k]
        const merged = decodeTarget(patched)
        if (Either.isLeft(merged)) return bad(problem(merged.left))
        // pending deliveries read their target when they are sent: the change applies to them at once
        yield* targets.save(merged.right, "api")
        return json({ code: 0, message: "OK", target: encodeTarget(merged.right) })
      })
    )
  },
  {
    methods: ["DELETE"],
    path: "/admin/api/targets/:name",
    handle: admin((req) =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const name = nameOf(req)
        const removed = yield* (yield* Targets).remove(name)
        if (!removed) return missing(`target ${name}`)
        // what was still waiting for it becomes a dead letter: kept, visible, redrivable once the target is back
        const parked = yield* sql<{ id: number }>`UPDATE deliveries SET status = 'dead', dead_reason = 'target deleted' WHERE target = ${name} AND status IN ('pending', 'in_flight') RETURNING id`
        yield* sql`DELETE FROM failing_targets WHERE target = ${name}`
        return json({ code: 0, message: "OK", deadLettered: parked.length })
      })
    )
  },
  {
    methods: ["POST"],
    path: "/admin/api/targets/:name/recover",
    handle: admin((req) =>
      Effect.gen(function* () {
        if (!(yield* (yield* Targets).get(nameOf(req)))) return missing(`target ${nameOf(req)}`)
        const body = yield* jsonBody(req)
        if (Either.isLeft(body)) return body.left
        const { since, until, ...other } = body.right
        if (Object.keys(other).length > 0) return bad(`${Object.keys(other)[0]}: not a field of recover (since, until)`)
        const filter = filterFrom({ target: nameOf(req), ...(since !== undefined ? { since } : {}), ...(until !== undefined ? { until } : {}) })
        if (Either.isLeft(filter)) return bad(filter.left)
        return json(redriven(yield* (yield* DeadLetters).redrive(filter.right)))
      })
    )
  },
  {
    methods: ["GET"],
    path: "/admin/api/events",
    handle: admin((req) =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const q = query(req)
        const since = q.since ? (/^\d+$/.test(q.since) ? Number(q.since) : Date.parse(q.since)) : 0
        if (Number.isNaN(since)) return bad(`since: expected an ISO time or Unix ms, got ${JSON.stringify(q.since)}`)
        const page = pageFrom(q, 100)
        if (Either.isLeft(page)) return bad(page.left)
        const { limit, before } = page.right
        const rows = yield* sql<{ id: number; type: string; occurred_at: number; enterprise: string | null; source: string; data: string }>`
          SELECT id, type, occurred_at, enterprise, source, data FROM events
          WHERE occurred_at >= ${since}
            ${q.type ? (q.type.includes("*") ? sql`AND type GLOB ${q.type}` : sql`AND type = ${q.type}`) : sql``}
            ${before === undefined ? sql`` : sql`AND id < ${before}`}
          ORDER BY id DESC LIMIT ${limit + 1}`
        const items = rows.slice(0, limit).map((r): typeof AdminSchema.EventItem.Type => ({
          id: r.id,
          type: r.type,
          occurredAt: new Date(r.occurred_at).toISOString(),
          enterprise: r.enterprise,
          source: r.source,
          ...storedData(r.data)
        }))
        return json(rows.length > limit ? { items, next: items[limit - 1]!.id } : { items })
      })
    )
  },
  {
    methods: ["POST"],
    path: "/admin/api/events/:id/resend",
    handle: admin((req) =>
      Effect.gen(function* () {
        const body = yield* jsonBody(req)
        if (Either.isLeft(body)) return body.left
        const target = body.right.target
        if (typeof target !== "string") return bad("target: is missing")
        if (!(yield* (yield* Targets).get(target))) return missing(`target ${target}`)
        const result = yield* (yield* DeadLetters).resend(Number(req.params?.id), target)
        if (result.deliveryId === null) return missing(`event ${String(req.params?.id)}`)
        return json({ code: result.created ? 0 : -10, message: result.created ? "OK" : "the event has a delivery to that target already (redrive it)", deliveryId: result.deliveryId })
      })
    )
  },
  {
    methods: ["GET"],
    path: "/admin/api/deliveries",
    handle: admin((req) =>
      Effect.gen(function* () {
        const q = query(req)
        const filter = filterFrom({ ...(q.target ? { target: q.target } : {}), ...(q.type ? { type: q.type } : {}) })
        if (Either.isLeft(filter)) return bad(filter.left)
        if (q.status !== undefined && !DELIVERY_STATUSES.includes(q.status)) return bad(`status: expected one of ${DELIVERY_STATUSES.join(", ")}`)
        const page = pageFrom(q, 100)
        if (Either.isLeft(page)) return bad(page.left)
        return json(yield* listPage(q.status, filter.right, page.right))
      })
    )
  },
  {
    methods: ["GET"],
    path: "/admin/api/dead-letters",
    handle: admin((req) =>
      Effect.gen(function* () {
        const { limit, before, ...rest } = query(req)
        const filter = filterFrom(rest)
        if (Either.isLeft(filter)) return bad(filter.left)
        const page = pageFrom({ ...(limit === undefined ? {} : { limit }), ...(before === undefined ? {} : { before }) }, 1000)
        if (Either.isLeft(page)) return bad(page.left)
        return json(yield* listPage("dead", filter.right, page.right))
      })
    )
  },
  {
    methods: ["POST"],
    path: "/admin/api/dead-letters/redrive",
    handle: admin((req) =>
      Effect.gen(function* () {
        const body = yield* jsonBody(req)
        if (Either.isLeft(body)) return body.left
        const filter = filterFrom(body.right)
        if (Either.isLeft(filter)) return bad(filter.left)
        return json(redriven(yield* (yield* DeadLetters).redrive(filter.right)))
      })
    )
  },
  {
    methods: ["DELETE"],
    path: "/admin/api/dead-letters",
    handle: admin((req) =>
      Effect.gen(function* () {
        const body = yield* jsonBody(req)
        if (Either.isLeft(body)) return body.left
        const source = { ...query(req), ...body.right }
        const filter = filterFrom(source)
        if (Either.isLeft(filter)) return bad(filter.left)
        if (Object.keys(filter.right).length === 0) return bad("(filter): name what to delete (target, type, ids, since/until); deleting every dead letter takes since=0")
        return json({ code: 0, deleted: yield* (yield* DeadLetters).purge(filter.right) })
      })
    )
  }
]


