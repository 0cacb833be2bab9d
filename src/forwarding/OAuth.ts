/**
 * OAuth2 access tokens for targets (`auth`): client credentials or a refresh token, fetched
 * from the token endpoint, cached until they expire, fetched again when a target answers 401.
 * A token lives in this process's memory only: never in the database, an event, an attempt's
 * record or the log. One fetch at a time per credential: concurrent sends wait for it.
 */
import { createHash } from "node:crypto"
import { Effect, Schema } from "effect"
import type { OAuth2 } from "./Target.js"
import { post } from "./Send.js"

/** The token endpoint could not give a token; `permanent`: it refused the credentials (no later try can do better). */
export class TokenFailed extends Schema.TaggedError<TokenFailed>()("TokenFailed", { message: Schema.String, permanent: Schema.Boolean }) {}

const Auth = Schema.Struct({
  type: Schema.Literal("oauth2"),
  grant: Schema.Literal("client_credentials", "refresh_token"),
  tokenUrl: Schema.String,
  clientId: Schema.String,
  clientSecret: Schema.optional(Schema.String),
  refreshToken: Schema.optional(Schema.String),
  scope: Schema.optional(Schema.String),
  clientAuth: Schema.optionalWith(Schema.Literal("body", "basic"), { default: () => "body" as const })
})
/** A stored target's auth is read back loosely: it is checked again before it is used. */
export const readAuth = Schema.decodeUnknownEither(Auth)

/** Tokens expire this much early: a send must not leave with one about to lapse. */
const EXPIRY_MARGIN_MS = 30_000
const TOKEN_TIMEOUT_MS = 10_000

interface Cached {
  readonly token: string
  /** null: the endpoint gave no lifetime, kept until a 401 */
  readonly expiresAt: number | null
}

// the key is a digest of the credentials (never the credentials themselves): a changed target gets a fresh token
const keyOf = (a: OAuth2) => createHash("sha256").update(JSON.stringify([a.grant, a.tokenUrl, a.clientId, a.clientSecret ?? "", a.refreshToken ?? "", a.scope ?? ""])).digest("base64url")
const tokens = new Map<string, Cached>()
const fetching = new Map<string, Effect.Effect<Cached, TokenFailed>>()
/** a refresh token the endpoint rotated, in place of the configured one */
const rotated = new Map<string, string>()

const field = (body: Record<string, unknown>, name: string) => (typeof body[name] === "string" ? (body[name] as string) : undefined)

const fetchToken = (a: OAuth2, key: string): Effect.Effect<Cached, TokenFailed> =>
  Effect.gen(function* () {
    const form = new URLSearchParams({ grant_type: a.grant })
    if (a.grant === "refresh_token") form.set("refresh_token", rotated.get(key) ?? a.refreshToken ?? "")
    if (a.scope) form.set("scope", a.scope)
    const headers: Record<string, string> = { "content-type": "application/x-www-form-urlencoded", accept: "application/json", "user-agent": "voip-bridge" }
    if (a.clientAuth === "basic") headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(a.clientId)}:${encodeURIComponent(a.clientSecret ?? "")}`).toString("base64")}`
    else {
      form.set("client_id", a.clientId)
      if (a.clientSecret !== undefined) form.set("client_secret", a.clientSecret)
    }
    const answer = yield* post(a.tokenUrl, headers, form.toString(), { timeoutMs: TOKEN_TIMEOUT_MS, excerptBytes: 65_536 }).pipe(
      Effect.mapError((e) => new TokenFailed({ message: `OAuth2 token endpoint: ${e.message}`, permanent: e.permanent }))
    )
    let body: Record<string, unknown> = {}
    try {
      const parsed: unknown = JSON.parse(answer.excerpt)
      if (typeof parsed === "object" && parsed !== null) body = parsed as Record<string, unknown>
    } catch {
      // not JSON: said below by status
    }
    if (answer.status < 200 || answer.status >= 300) {
      // only the endpoint's error code and description are kept: never the rest of its answer
      const said = [field(body, "error"), field(body, "error_description")].filter(Boolean).join(": ")
      const message = `OAuth2 token endpoint answered HTTP ${answer.status}${said ? ` (${said})` : ""}`
      const temporary = answer.status === 408 || answer.status === 429 || answer.status >= 500
      return yield* Effect.fail(new TokenFailed({ message, permanent: !temporary }))
    }
    const token = field(body, "access_token")
    if (!token) return yield* Effect.fail(new TokenFailed({ message: "OAuth2 token endpoint answered without an access_token", permanent: false }))
    const refresh = field(body, "refresh_token")
    if (a.grant === "refresh_token" && refresh) rotated.set(key, refresh)
    const seconds = Number(body.expires_in)
    return { token, expiresAt: Number.isFinite(seconds) && seconds > 0 ? Date.now() + seconds * 1000 - Math.min(EXPIRY_MARGIN_MS, seconds * 500) : null }
  })

/** A token for the target's auth: the cached one while it lasts; `fresh`: a new one (the target answered 401 to `stale`). */
export const accessToken = (a: OAuth2, stale?: string): Effect.Effect<string, TokenFailed> =>
  Effect.gen(function* () {
    const key = keyOf(a)
    const cached = tokens.get(key)
    if (cached && cached.token !== stale && (cached.expiresAt === null || cached.expiresAt > Date.now())) return cached.token
    let pending = fetching.get(key)
    if (!pending) {
      pending = yield* Effect.cached(
        fetchToken(a, key).pipe(
          Effect.tap((c) => Effect.sync(() => tokens.set(key, c))),
          Effect.ensuring(Effect.sync(() => fetching.delete(key)))
        )
      )
      fetching.set(key, pending)
    }
    return (yield* pending).token
  })
