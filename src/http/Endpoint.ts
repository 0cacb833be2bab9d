/**
 * One declaration per HTTP endpoint that is not a jsondata method (those are `schemas/` specs
 * dispatched by src/api) nor the admin API (an HttpApi, src/admin): where it is served, who may
 * call it, how its parameters decode, how it answers — and its handler. `endpoint` turns the
 * declaration into the express `Route` and into its OpenAPI operations, so the two cannot
 * disagree and no route decodes, authenticates or answers -14 by hand.
 *
 * A request goes: address list (before a byte of the body is read) → parameters (query, and
 * the body its kind reads) → auth → params decoded (-14 naming the parameter, -12 over a
 * maximum) → handler → answer in the declared style. A failure anywhere is answered as the
 * server answers every route's (coded, HTTP 200; unreadable requests their 4xx).
 */
import type { SqlError } from "@effect/sql/SqlError"
import { Clock, Effect, Either, Schema, type Scope } from "effect"
import type { RawParams } from "../../schemas/Param.js"
import { type ApiError, AuthFailed, codeOf, NoPermission } from "../api/Errors.js"
import { toInvalidParam } from "../api/Implementation.js"
import { Auth, type Caller } from "../auth/Auth.js"
import { noteSecrets } from "../capture/Redact.js"
import type { AppServices } from "../AppServices.js"
import type { AppConfigShape } from "../config/AppConfig.js"
import { allowList } from "../shared/Network.js"
import { sameSecret } from "../shared/Secret.js"
import { CODED, type Converter, CREDENTIALS, type Json, MALFORMED, queryParameters, RECEIVER_TOKEN } from "./OpenApiSchemas.js"
import { type Collected, collect, type FileOptions, type HttpRequestError, queryPairs, toRawParams } from "./Params.js"
import { type HttpAnswer, json, type Route } from "./Route.js"

export type Verb = Route["methods"][number]
export type Failure = ApiError | SqlError | HttpRequestError
export type RouteRequest = Parameters<Route["handle"]>[0]
/** a value fixed by the declaration, or read from the running bridge's config */
export type Configured<A> = A | ((config: AppConfigShape) => A)

const resolve = <A>(value: Configured<A>, config: AppConfigShape): A =>
  typeof value === "function" ? (value as (config: AppConfigShape) => A)(config) : value

/** Who may call. An address list (`allowFrom` on the declaration) can be added to any of them. */
export type AuthKind =
  | { readonly kind: "none" }
  /** a shared secret, as the `token` parameter or the X-Bridge-Token header; no token configured: anyone */
  | { readonly kind: "token"; readonly token: (config: AppConfigShape) => string | undefined }
  /** sa_user + sa_password, or sessionId, as jsondata takes them; addresses in `openTo` need none (the caller is then undefined) */
  | { readonly kind: "credentials"; readonly openTo?: (config: AppConfigShape) => ReadonlyArray<string> }

type CallerOf<K extends AuthKind> = K extends { readonly kind: "credentials"; readonly openTo: unknown }
  ? Caller | undefined
  : K extends { readonly kind: "credentials" }
    ? Caller
    : undefined

/** What the request's parameters are read from. */
export type BodyKind =
  /** the query string only: the body is not read */
  | { readonly kind: "none" }
  /** the query and the body's fields: a form, multipart (file parts dropped) or a JSON object */
  | { readonly kind: "form" }
  /** multipart with file parts, received into temporary files that live as long as the request */
  | {
      readonly kind: "files"
      /** the file parts, as documented (all required) */
      readonly fields: ReadonlyArray<string>
      /** the parts some requests leave out, as documented (optional) */
      readonly optionalFields?: ReadonlyArray<string>
      /** requests without a file may come urlencoded too */
      readonly urlencoded?: boolean
      readonly options: (req: RouteRequest, config: AppConfigShape) => Effect.Effect<FileOptions<Failure, never>, never, AppServices | Scope.Scope>
    }

/** One documented HTTP status: its content types and their schemas (`"coded"`: `{code, message}`). */
export interface ResponseDoc {
  readonly description: string
  readonly content?: Readonly<Record<string, Schema.Schema.Any | "coded">>
}

/** How the endpoint answers: what its handler succeeds with becomes the HTTP answer. */
export interface AnswerStyle<A> {
  readonly style: "coded" | "box" | "rest"
  readonly answer: (value: A) => Effect.Effect<HttpAnswer>
  /** a contract failure in this style (undefined: the server's coded answer) */
  readonly failure?: (e: ApiError) => Effect.Effect<HttpAnswer>
  readonly responses: (kit: Converter) => Record<string, Json>
}

type Fields = Readonly<Record<string, unknown>>

/** The contract's envelope: `{code: 0, message: "OK", …result}`; failures `{code, message}`, HTTP 200. */
export const coded = <A, I extends Fields>(result: Schema.Schema<A, I> & { readonly fields: Schema.Struct.Fields }, description: string): AnswerStyle<A> => {
  const encode = Schema.encode(result)
  // a result with no fields (a push's acknowledgement) has nothing to encode
  const empty = Object.keys(result.fields).length === 0
  return {
    style: "coded",
    answer: empty ? () => Effect.succeed(json({ code: 0, message: "OK" })) : (value) => Effect.map(Effect.orDie(encode(value)), (fields) => json({ code: 0, message: "OK", ...fields })),
    responses: (kit) => ({
      "200": { description, content: { "application/json": { schema: { anyOf: [{ allOf: [CODED, kit.structOf(result)] }, CODED] } } } }
    })
  }
}

/**
 * The recording box's envelope: `{time, status: 0, …result}`; a failure `{time, status: <code>,
 * message}`, HTTP 200. `time` is the Unix ms as text, as §2.1.10's examples write it.
 */
export const box = <A, I extends Fields>(result: Schema.Schema<A, I> & { readonly fields: Schema.Struct.Fields }, description: string): AnswerStyle<A> => {
  const encode = Schema.encode(result)
  const status = {
    type: "object",
    required: ["status", "time"],
    properties: {
      status: { type: "integer", description: "0 ok; 3001 device not registered or not assigned; 3002 missing satellite; 3003 no message; -14 a malformed parameter" },
      time: { type: "string", description: "Unix ms" }
    }
  }
  return {
    style: "box",
    answer: (value) =>
      Effect.flatMap(Effect.orDie(encode(value)), (fields) => Effect.map(Clock.currentTimeMillis, (now) => json({ time: String(now), status: 0, ...fields }))),
    failure: (e) => Effect.map(Clock.currentTimeMillis, (now) => json({ time: String(now), status: codeOf(e), message: e.message })),
    responses: (kit) => ({ "200": { description, content: { "application/json": { schema: { anyOf: [{ allOf: [status, kit.structOf(result)] }, status] } } } } })
  }
}

/** The handler answers for itself (status codes, files, other content types), as documented by `responses`. */
export const rest = (responses: Readonly<Record<string, ResponseDoc>>): AnswerStyle<HttpAnswer> => ({
  style: "rest",
  answer: Effect.succeed,
  responses: (kit) =>
    Object.fromEntries(
      Object.entries(responses).map(([status, doc]) => [
        status,
        {
          description: doc.description,
          ...(doc.content ? { content: Object.fromEntries(Object.entries(doc.content).map(([type, schema]) => [type, { schema: schema === "coded" ? CODED : kit.schemaOf(schema) }])) } : {})
        }
      ])
    )
})

/** What a handler is given: the request, decoded. */
export interface Request<P, C> {
  readonly req: RouteRequest
  readonly config: AppConfigShape
  readonly params: P
  /** the parameters as received (repeats and `name[i]` as arrays) */
  readonly raw: RawParams
  readonly collected: Collected
  readonly caller: C
}

/** A parameters schema: a Struct (its fields are documented) that needs no services. */
export type ParamsSchema<P, I> = Schema.Schema<P, I> & { readonly fields: Schema.Struct.Fields }

/** for an endpoint that takes no parameters */
export const NO_PARAMS = Schema.Struct({})

export interface Declaration<P, I, A, K extends AuthKind> {
  /** the OpenAPI operationId (suffixed `_<verb>` when there are several verbs, `_<n>` on an alias) */
  readonly id: string
  readonly summary: string
  readonly description?: string
  readonly tags: ReadonlyArray<string>
  /** express path patterns, aliases after the first; from config when it names them */
  readonly paths: Configured<string | ReadonlyArray<string>>
  /** the path OpenAPI documents when the express pattern cannot say it (a wildcard): `{name}` are path parameters */
  readonly documentedPath?: string
  readonly methods: ReadonlyArray<Verb>
  readonly auth: K
  /** only these addresses may call (checked before the body is read; others -5); empty: anyone */
  readonly allowFrom?: (config: AppConfigShape) => ReadonlyArray<string>
  /** this endpoint's own secret parameters (beyond the credentials every endpoint's are): a capture masks their values */
  readonly secrets?: ReadonlyArray<string>
  readonly body: BodyKind
  readonly params: ParamsSchema<P, I>
  readonly answer: AnswerStyle<A>
  /** false: documented elsewhere (jsondata's one URL is documented from the method specs) */
  readonly documented?: boolean
  readonly handler: (request: Request<P, CallerOf<K>>) => Effect.Effect<A, Failure, AppServices>
}

/** A declaration made real: its route and its OpenAPI path items, for a running bridge's config. */
export interface Endpoint {
  readonly id: string
  readonly route: (config: AppConfigShape) => Route
  /** path → verb → operation; empty when documented elsewhere */
  readonly openApi: (config: AppConfigShape, kit: Converter) => Record<string, Record<string, Json>>
}

const TOKEN = "token"

/** Every path of the endpoint: the first is its name (metrics label it), the others aliases. */
const pathList = (paths: string | ReadonlyArray<string>): ReadonlyArray<string> => (typeof paths === "string" ? [paths] : paths)

/**
 * An answer given before the body was read through (refused credentials, a limit) closes the
 * connection after it is sent: the rest of an upload is not worth receiving.
 */
const closingUnread = (req: RouteRequest, failure: AnswerStyle<unknown>["failure"]) =>
  Effect.catchAll((e: Failure): Effect.Effect<HttpAnswer, Failure> => {
    if (req.complete || e._tag === "SqlError") return Effect.fail(e)
    const close = { connection: "close" }
    if (e._tag === "HttpRequestError") return Effect.succeed(json({ code: e.code, message: e.message }, e.status, close))
    // a contract failure in the endpoint's own style, closing all the same
    if (failure) return Effect.map(failure(e), (answer) => (answer._tag === "Json" ? { ...answer, headers: { ...answer.headers, ...close } } : answer))
    return Effect.succeed(json({ code: codeOf(e), message: e.message }, 200, close))
  })

const queryOnly = (req: RouteRequest): Collected => ({ pairs: queryPairs(req.url ?? ""), files: [], rawBody: undefined, bodyText: undefined, charset: "utf-8" })

/** The one builder. */
export const endpoint = <P, I, A, const K extends AuthKind>(declaration: Declaration<P, I, A, K>): Endpoint => {
  const { auth, body, answer } = declaration
  const decode = Schema.decodeUnknownEither(declaration.params, { errors: "first", onExcessProperty: "ignore" })
  const ownSecrets = new Set((declaration.secrets ?? []).map((s) => s.toLowerCase()))

  const route = (config: AppConfigShape): Route => {
    const paths = resolve(declaration.paths, config)
    const from = declaration.allowFrom?.(config) ?? []
    const allowed = from.length > 0 ? allowList(from) : undefined
    const token = auth.kind === "token" ? auth.token(config) : undefined
    const openTo = auth.kind === "credentials" && auth.openTo ? allowList(auth.openTo(config)) : undefined
    const bodyLimit = config.http.bodyLimitBytes

    /**
     * The caller, when finding it takes a step of its own (credentials looked up); `undefined`
     * when it is known at once (no caller, or a token checked); an AuthFailed to answer with.
     */
    const callerOf = (req: RouteRequest, raw: RawParams): Effect.Effect<Caller | undefined, ApiError | SqlError, AppServices> | AuthFailed | undefined => {
      switch (auth.kind) {
        case "none":
          return undefined
        case "token": {
          if (token === undefined) return undefined
          const header = req.headers["x-bridge-token"]
          const given = typeof raw[TOKEN] === "string" ? raw[TOKEN] : typeof header === "string" ? header : undefined
          return sameSecret(given, token) ? undefined : new AuthFailed({ message: "authentication failed: wrong or missing token" })
        }
        case "credentials":
          if (openTo?.(req.socket.remoteAddress)) return undefined
          return Effect.flatMap(Auth, (a) => a.authenticate(raw, req.socket.remoteAddress))
      }
    }

    // plain code between the steps that must wait: jsondata and the pushes pass here on every request
    const run = (req: RouteRequest, collected: Collected): Effect.Effect<HttpAnswer, Failure, AppServices> => {
      const raw = toRawParams(collected.pairs)
      // a capture masks these values wherever they appear in its record, in any spelling
      noteSecrets(req, collected.pairs, ownSecrets)
      const handle = (caller: Caller | undefined) => {
        const params = decode(raw)
        if (Either.isLeft(params)) return Effect.fail(toInvalidParam(params.left))
        // the auth kind decides which of the two the caller is (CallerOf)
        return Effect.flatMap(declaration.handler({ req, config, params: params.right, raw, collected, caller: caller as CallerOf<K> }), answer.answer)
      }
      const caller = callerOf(req, raw)
      if (caller === undefined) return handle(undefined)
      if (caller instanceof AuthFailed) return Effect.fail(caller)
      return Effect.flatMap(caller, handle)
    }

    const read = (req: RouteRequest): Effect.Effect<HttpAnswer, Failure, AppServices> => {
      // a body refused while it is read must not leave the query's own secrets in clear
      if (ownSecrets.size > 0 && body.kind !== "none") noteSecrets(req, queryPairs(req.url ?? ""), ownSecrets)
      switch (body.kind) {
        case "none":
          return run(req, queryOnly(req))
        case "form":
          return Effect.flatMap(collect(req, { bodyLimit }), (collected) => run(req, collected))
        case "files":
          // the scope holds the upload's temporary files: removed on every way out, moved into place or not
          return Effect.scoped(
            Effect.flatMap(body.options(req, config), (files) => Effect.flatMap(collect(req, { bodyLimit, files }), (collected) => run(req, collected)))
          ).pipe(closingUnread(req, answer.failure))
      }
    }

    const failure = answer.failure
    const styled = failure
      ? (effect: Effect.Effect<HttpAnswer, Failure, AppServices>) =>
          Effect.catchIf(effect, (e): e is ApiError => e._tag !== "SqlError" && e._tag !== "HttpRequestError", failure)
      : (effect: Effect.Effect<HttpAnswer, Failure, AppServices>) => effect

    return {
      methods: declaration.methods,
      path: paths,
      handle: (req) => {
        if (allowed && !allowed(req.socket.remoteAddress))
          return styled(Effect.fail(new NoPermission({ message: `requests to ${pathList(paths)[0]} are not accepted from ${req.socket.remoteAddress}` })))
        return styled(read(req))
      }
    }
  }

  const openApi = (config: AppConfigShape, kit: Converter) => {
    if (declaration.documented === false) return {}
    const from = declaration.allowFrom?.(config) ?? []
    const security =
      auth.kind === "none"
        ? []
        : auth.kind === "token"
          ? auth.token(config) !== undefined
            ? RECEIVER_TOKEN
            : []
          : // an address that needs no credentials: one of the alternatives is none at all
            auth.openTo && auth.openTo(config).length > 0
            ? [...CREDENTIALS, {}]
            : CREDENTIALS
    const description = [declaration.description, from.length > 0 ? "Accepted only from the configured addresses (others -5)." : undefined].filter((s) => s !== undefined).join(" ")
    const typed = kit.typeOf(declaration.params)
    const pathParameters = [...(declaration.documentedPath ?? "").matchAll(/\{([^}]+)\}/g)].map(([, name]) => ({ name, in: "path", required: true, schema: { type: "string" } }))
    const input = (verb: Verb): Json => {
      if (body.kind === "files") {
        const file = { type: "string", contentMediaType: "application/octet-stream" }
        const fileFields = [...body.fields, ...(body.optionalFields ?? [])]
        const schema = {
          type: "object",
          required: [...((typed.required ?? []) as ReadonlyArray<string>), ...body.fields],
          properties: { ...(typed.properties as Json), ...Object.fromEntries(fileFields.map((f) => [f, file])) }
        }
        const content = { "multipart/form-data": { schema }, ...(body.urlencoded ? { "application/x-www-form-urlencoded": { schema: typed } } : {}) }
        return { requestBody: { required: true, content } }
      }
      const query = [...pathParameters, ...queryParameters(typed)]
      if (body.kind === "none" || verb === "GET") return query.length > 0 ? { parameters: query } : {}
      const types = ["application/x-www-form-urlencoded", "multipart/form-data", "application/json"]
      return {
        ...(pathParameters.length > 0 ? { parameters: pathParameters } : {}),
        requestBody: { required: false, content: Object.fromEntries(types.map((type) => [type, { schema: typed }])) }
      }
    }
    // what any caller may get besides: a refusal (auth, address, parameters) is a coded answer with HTTP 200
    const mayRefuse = auth.kind !== "none" || from.length > 0 || Object.keys(declaration.params.fields).length > 0
    const responses = (): Json => {
      const declared = answer.responses(kit)
      const ok = declared["200"] as { readonly description: string; readonly content?: Record<string, { readonly schema: Json }> } | undefined
      if (answer.style !== "rest" || !mayRefuse || !ok) return { ...declared, ...MALFORMED }
      const jsonOk = ok.content?.["application/json"]
      const content = { ...ok.content, "application/json": { schema: jsonOk ? { anyOf: [jsonOk.schema, CODED] } : CODED } }
      return { ...declared, "200": { ...ok, content }, ...MALFORMED }
    }
    const paths = declaration.documentedPath ? [declaration.documentedPath] : pathList(resolve(declaration.paths, config))
    return Object.fromEntries(
      paths.map((p, alias) => [
        p,
        Object.fromEntries(
          declaration.methods.map((verb) => [
            verb.toLowerCase(),
            {
              operationId: declaration.id + (declaration.methods.length > 1 ? `_${verb.toLowerCase()}` : "") + (alias > 0 ? `_${alias}` : ""),
              summary: declaration.summary,
              ...(description ? { description } : {}),
              tags: declaration.tags,
              security,
              ...input(verb),
              responses: responses()
            }
          ])
        )
      ])
    )
  }

  return { id: declaration.id, route, openApi }
}
