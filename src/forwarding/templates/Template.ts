/**
 * A template: a ready-made kind of target (a group-chat bot, a CRM). It says what the target's
 * url must look like, what its `secret` means and how it signs, what the body is (a JSONata
 * transform over the event, which the target's own `transform` overrides), which headers go
 * with it, and how the destination says it took the request — several answer HTTP 200 with an
 * error code in the body.
 */
import { type Effect, Schema } from "effect"
import { type Outcome, outcomeOfAnswer } from "../Decisions.js"
import type { Answer } from "../Send.js"

/** Nothing to send for this event (a template's setting leaves it out, a CRM has nobody with that phone): done, without a request. */
export class Skipped extends Schema.TaggedError<Skipped>()("Skipped", { message: Schema.String }) {}

/** An answer with its body read as JSON (undefined when it is not). */
export interface Reply extends Answer {
  readonly json: unknown
}

/**
 * One request to the target's API during a delivery: `path` under the target's url (its base),
 * a JSON body; the template's headers, signature and the target's OAuth2 token go with it.
 */
export type Call<E> = (method: "GET" | "POST" | "PATCH", path: string, body?: unknown) => Effect.Effect<Reply, E>

/** The request as it goes out; signing may change any part of it. */
export interface Outgoing {
  readonly url: string
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
}

export interface Template {
  readonly name: string
  readonly title: string
  readonly description: string
  /** What the target's `url` is, and why a url is refused (a message naming what is wrong) or not (undefined). */
  readonly url: { readonly description: string; readonly example: string; readonly check: (url: URL) => string | undefined }
  /** What the target's `secret` is; absent: the template takes none. */
  readonly secret?: { readonly description: string; readonly required?: boolean; readonly check: (secret: string) => string | undefined }
  /** The template's settings (the target's `settings`): a struct with their defaults. */
  readonly settings: Schema.Schema.AnyNoContext
  /** JSONata over the event envelope; `$message` (the event told in words) and `$settings` are bound. */
  readonly transform: string
  readonly headers?: Readonly<Record<string, string>>
  /** Signs the request with the target's secret at `now` (Unix ms). */
  readonly sign?: (request: Outgoing, secret: string, now: number) => Outgoing
  /** What the destination's answer means; absent: HTTP status alone (Decisions.outcomeOfAnswer). */
  readonly answer?: (status: number, retryAfter: string | null, excerpt: string, now: number) => Outcome
  /**
   * A delivery that takes more than one request (a CRM: find the customer by phone, then write
   * to them): given the rendered body, it makes its requests and answers with the one that
   * decides the outcome (the first that failed, or the last).
   */
  readonly deliver?: <E>(input: {
    readonly body: unknown
    readonly settings: Record<string, unknown>
    /** the target's secret, for an API that takes it in the body (Odoo's API key) */
    readonly secret: string | undefined
    readonly call: Call<E>
  }) => Effect.Effect<Answer, E | Skipped>
  /** the template needs the target's `auth` (OAuth2) */
  readonly needsAuth?: boolean
  /** the event types it handles (a bot: the ones its messages tell apart; others get a generic line) */
  readonly events: ReadonlyArray<string>
}

/**
 * The rule of destinations that answer HTTP 200 with a code in the body (`errcode`, `code`):
 * 0 is success; a code of `retry` (rate limits, "system busy") is worth another try; any other
 * is the destination refusing this request (a wrong key or signature, a bad message), for good.
 * A 2xx without the code is not the service's answer (a proxy's page, a wrong URL): tried again,
 * never counted as delivered.
 */
export const inBodyCode =
  (field: string, retry: ReadonlySet<number>, messageField: string) =>
  (status: number, retryAfter: string | null, excerpt: string, now: number): Outcome => {
    if (status < 200 || status >= 300) return outcomeOfAnswer(status, retryAfter, now)
    let parsed: unknown
    try {
      parsed = JSON.parse(excerpt)
    } catch {
      parsed = undefined
    }
    const body = typeof parsed === "object" && parsed !== null ? (parsed as Record<string, unknown>) : undefined
    const code = body?.[field]
    if (typeof code !== "number") return { kind: "retry", status, error: `HTTP ${status} without ${field}: not the service's answer`, retryAfterMs: null }
    if (code === 0) return { kind: "delivered", status }
    const error = `${field} ${code}: ${String(body?.[messageField] ?? "")}`
    return retry.has(code) ? { kind: "retry", status, error, retryAfterMs: null } : { kind: "refused", status, error }
  }

/** A url's query parameter that must be there (a robot's key or token). */
export const needsQuery = (url: URL, name: string, shape: string) => (url.searchParams.get(name) ? undefined : `expected ${shape} (the ${name} query parameter is missing)`)

/** Settings every chat bot takes. */
export const BotSettings = Schema.Struct({
  /** the messages' language: Chinese by default */
  language: Schema.optionalWith(Schema.Literal("zh", "en"), { default: () => "zh" as const }),
  /** plain text, or markdown (Slack: blocks) */
  message: Schema.optionalWith(Schema.Literal("text", "markdown"), { default: () => "markdown" as const }),
  /** @-mention the extension's mobile where it is known */
  mention: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  /** put before every title: a DingTalk robot's security keyword (自定义关键词), a tag such as [电话] */
  prefix: Schema.optional(Schema.String.pipe(Schema.maxLength(32))),
  /** "missed": of the call events, only missed calls are sent (the others are skipped) */
  calls: Schema.optionalWith(Schema.Literal("all", "missed"), { default: () => "all" as const })
})
export type BotSettings = typeof BotSettings.Type
