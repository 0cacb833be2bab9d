/**
 * What the admin API's groups share: reading and decoding a JSON body, the answer to a storage
 * failure, pages of listings, dead-letter filters, and the path's target or enterprise.
 */
import { HttpServerRequest } from "@effect/platform"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import { SqlClient } from "@effect/sql"
import { SqlError } from "@effect/sql/SqlError"
import { Effect, Either, ParseResult, Schema } from "effect"
import * as AdminSchema from "../../../schemas/admin.js"
import { problemsOf } from "../../../schemas/Param.js"
import { AppConfig } from "../../config/AppConfig.js"
import type { DeadLetterFilter } from "../../forwarding/DeadLetters.js"
import type { Target } from "../../forwarding/Target.js"
import { Targets } from "../../forwarding/Targets.js"
import { collect } from "../../http/Params.js"
import { BadRequest, Internal, NotFound, TooLarge, UnsupportedCharset } from "../Api.js"

const problem = (e: ParseResult.ParseError) => {
  const [issue] = problemsOf(e)
  return `${issue?.path || "(body)"}: ${issue?.message ?? "invalid"}`
}

/** Decodes with the endpoint's declared schema; the first problem, field named, is the 400. */
export const decoder = <A, I>(schema: Schema.Schema<A, I>) => {
  const decode = Schema.decodeUnknownEither(schema, { errors: "first", onExcessProperty: "error" })
  return (input: unknown): Either.Either<A, BadRequest> => Either.mapLeft(decode(input), (e) => BadRequest.of(problem(e)))
}

/**
 * The JSON object of the body (an empty body is `{}`). Read by the bridge's own reader, not the
 * platform's: it keeps the configured body limit (413), the declared charset (415 for one it
 * cannot read) and the coded 400 for malformed JSON, where the platform's would die with a 500.
 */
export const jsonBody = (request: HttpServerRequest.HttpServerRequest) =>
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
export const storage = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.catchIf(
    effect,
    (e): e is Extract<E, SqlError> => e instanceof SqlError,
    (e) => Effect.zipRight(Effect.logError("admin API failed", e), Effect.fail(Internal.answer))
  )

const decodeFilter = decoder(AdminSchema.DeadLetterFilter)

/** Filters from the query string (`ids=1,2`, ISO or ms times) or a JSON body. */
export const filterFrom = (source: Record<string, unknown>): Either.Either<DeadLetterFilter, BadRequest> => {
  const input: Record<string, unknown> = { ...source }
  if (typeof input.ids === "string") input.ids = input.ids.split(",").filter(Boolean)
  if (Array.isArray(input.ids)) input.ids = input.ids.map((id: unknown) => (typeof id === "string" ? Number(id) : id))
  for (const k of ["since", "until"]) if (typeof input[k] === "string" && /^\d+$/.test(input[k] as string)) input[k] = Number(input[k])
  return decodeFilter(input)
}

export interface PageRequest {
  readonly limit: number
  readonly before: number | undefined
}

/**
 * A page of a listing: `limit` (≤ 1000) rows older than `before` (an id of the listing); the
 * answer's `next` is the `before` of the following page, absent on the last one.
 */
export const pageFrom = (q: { readonly limit?: string | undefined; readonly before?: string | undefined }, defaultLimit: number): Either.Either<PageRequest, BadRequest> => {
  const limit = q.limit === undefined ? defaultLimit : Number(q.limit)
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > 1000) return Either.left(BadRequest.of("limit: expected a whole number from 1 to 1000"))
  const before = q.before === undefined ? undefined : Number(q.before)
  if (before !== undefined && !Number.isSafeInteger(before)) return Either.left(BadRequest.of("before: expected an id from the previous page's next"))
  return Either.right({ limit, before })
}

/** One more row than the page is asked for: its presence says there is a next page. */
export const paged = <A extends { readonly id: number }>(rows: ReadonlyArray<A>, page: PageRequest) =>
  rows.length > page.limit ? { items: rows.slice(0, page.limit), next: rows[page.limit - 1]!.id } : { items: rows }

/** A redrive's answer: the dead letters of targets since removed are named, not silently skipped. */
export const redriven = (r: { readonly redriven: number; readonly skipped: number }): typeof AdminSchema.Redriven.Type =>
  r.skipped === 0
    ? { code: 0, redriven: r.redriven }
    : { code: 0, redriven: r.redriven, skipped: r.skipped, message: `${r.skipped} dead letter(s) of targets that no longer exist were left as they are` }

/** The target the path names: 404 when there is none. */
export const existing = (name: string): Effect.Effect<Target, NotFound, Targets> =>
  Effect.flatMap(Targets, (t) => t.get(name)).pipe(Effect.flatMap((t) => (t ? Effect.succeed(t) : Effect.fail(NotFound.of(`target ${name}`)))))

/** An enterprise of the path: 400 when it is no enterprise number, 404 when there is none such. */
export const enterprise = (comp: string) =>
  Effect.gen(function* () {
    if (!/^\d{6}$/.test(comp)) return yield* Effect.fail(BadRequest.of(`comp: expected a 6-digit enterprise number, got ${JSON.stringify(comp.slice(0, 64))}`))
    const sql = yield* SqlClient.SqlClient
    const found = yield* storage(sql<{ comp_number: string }>`SELECT comp_number FROM enterprises WHERE comp_number = ${comp}`)
    if (found.length === 0) return yield* Effect.fail(NotFound.of(`enterprise ${comp}`))
    return comp
  })
