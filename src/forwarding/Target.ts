/** A target: where events go, which ones, in what shape, how hard we try. Config file and admin API share this schema. */
import { ParseResult, Schema } from "effect"
import jsonata from "jsonata"
import { Webhook } from "standardwebhooks"
import { unknownGlob } from "../events/EventTypes.js"
import { templateNamed, TEMPLATES } from "./templates/registry.js"

export const DEFAULT_SCHEDULE_MS = [0, 5_000, 30_000, 120_000, 600_000, 1_800_000, 3_600_000, 10_800_000, 21_600_000, 43_200_000] as const

const HttpUrl = Schema.String.pipe(
  Schema.filter((u) => {
    try {
      const url = new URL(u)
      return url.protocol === "http:" || url.protocol === "https:" || `expected an http(s) URL, got ${JSON.stringify(u)}`
    } catch {
      return `expected an http(s) URL, got ${JSON.stringify(u)}`
    }
  })
)

/** JSONata's errors are plain objects with a message, not Errors. */
export const jsonataMessage = (e: unknown) =>
  e instanceof Error ? e.message : typeof e === "object" && e !== null && "message" in e ? String((e as { message: unknown }).message) : String(e)

// Checked when a target is saved, not when its first delivery fails: a setting that can never
// work is refused with the field named.
const Transform = Schema.String.pipe(
  Schema.filter((source) => {
    try {
      jsonata(source)
      return true
    } catch (e) {
      return `not a JSONata expression: ${jsonataMessage(e)}`
    }
  })
)
/** Without a template the secret signs Standard Webhooks headers; a template says what its secret is. */
const standardWebhooksSecret = (secret: string): string | undefined => {
  if (!/^whsec_[A-Za-z0-9+/=]+$/.test(secret)) return "expected a whsec_… secret"
  try {
    new Webhook(secret).sign("msg_check", new Date(0), "")
    return undefined
  } catch {
    return "expected whsec_ followed by a base64 key (Standard Webhooks)"
  }
}
const RESERVED_HEADERS = new Set(["host", "content-length", "transfer-encoding", "connection", "webhook-id", "webhook-timestamp", "webhook-signature"])
const Headers = Schema.Record({ key: Schema.String, value: Schema.String }).pipe(
  Schema.filter((headers) => {
    for (const [name, value] of Object.entries(headers)) {
      if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) return `header name ${JSON.stringify(name)} is not an HTTP token`
      if (RESERVED_HEADERS.has(name.toLowerCase())) return `header ${name} is set by the bridge itself`
      if (/[\0-\x08\x0a-\x1f\x7f]/.test(value)) return `header ${name}: the value holds a control character`
      // HTTP/1.1 carries header values as Latin-1: Node refuses anything beyond (encode it, e.g. RFC 8187)
      if (/[^\t\x20-\xff]/.test(value)) return `header ${name}: the value holds a character HTTP headers cannot carry (beyond Latin-1)`
    }
    return true
  })
)

/**
 * OAuth2 for any target: an access token from `tokenUrl` (client credentials, or a refresh
 * token), sent as a bearer token, cached until it expires, fetched again once on a 401.
 */
const OAuth2 = Schema.Struct({
  type: Schema.Literal("oauth2"),
  grant: Schema.Literal("client_credentials", "refresh_token"),
  tokenUrl: HttpUrl,
  clientId: Schema.String.pipe(Schema.minLength(1)),
  clientSecret: Schema.optional(Schema.String),
  /** the refresh_token grant's token (a rotated one is kept in memory, not written back) */
  refreshToken: Schema.optional(Schema.String.pipe(Schema.minLength(1))),
  scope: Schema.optional(Schema.String),
  /** how the client authenticates at the token endpoint: form fields (default) or HTTP Basic */
  clientAuth: Schema.optionalWith(Schema.Literal("body", "basic"), { default: () => "body" as const })
}).pipe(
  Schema.filter((a) =>
    a.grant === "refresh_token" && a.refreshToken === undefined
      ? { path: ["refreshToken"], message: "the refresh_token grant needs refreshToken" }
      : a.grant === "client_credentials" && a.clientSecret === undefined
        ? { path: ["clientSecret"], message: "the client_credentials grant needs clientSecret" }
        : true
  )
)
export type OAuth2 = typeof OAuth2.Type

/**
 * `strict`: a target being saved (config file, admin API). Not strict: a target stored by an
 * earlier version, read back as it was — a check added since must not stop the bridge from
 * starting (its admin API is where the target gets fixed).
 */
const targetFields = (strict: boolean) => ({
  // a name is a URL path segment of the admin API: "." and ".." would not reach it
  name: strict ? Schema.String.pipe(Schema.pattern(/^(?!\.+$)[A-Za-z0-9_.-]{1,64}$/, { message: () => "expected 1–64 letters, digits, '_', '.' or '-' (not dots alone)" })) : Schema.String,
  url: HttpUrl,
  /** globs over event types: `call.*`, `workorder.ended`, `*` (a sensitive type, SENSITIVE_EVENT_TYPES, only by its exact name) */
  events: Schema.optionalWith(
    Schema.Array(
      Schema.String.pipe(
        Schema.pattern(/^[a-z0-9_.*]+$/, { message: () => "expected an event type or glob such as call.*" }),
        // checked when a target is made or changed; one stored before the check (or naming a type since retired) is read as it is, not dropped
        Schema.filter((g) => !strict || (unknownGlob(g) ?? true))
      )
    ),
    { default: () => ["*"] }
  ),
  format: Schema.optionalWith(Schema.Literal("json", "800ing", "form"), { default: () => "json" as const }),
  /** JSONata over the json envelope; its result is the body */
  transform: Schema.optional(strict ? Transform : Schema.String),
  headers: Schema.optionalWith(strict ? Headers : Schema.Record({ key: Schema.String, value: Schema.String }), { default: () => ({}) }),
  /** Standard Webhooks secret (`whsec_…`): requests are signed when set; with a template, what the template says */
  secret: Schema.optional(Schema.String),
  /** a ready-made kind of target (GET /admin/api/templates): its body, signing and success rule */
  template: Schema.optional(
    strict ? Schema.String.pipe(Schema.filter((name) => (templateNamed(name) ? true : `expected one of ${TEMPLATES.map((t) => t.name).join(", ")} (GET /admin/api/templates), got ${JSON.stringify(name)}`))) : Schema.String
  ),
  /** the template's settings */
  settings: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Unknown })),
  auth: Schema.optional(strict ? OAuth2 : Schema.Unknown),
  timeoutMs: Schema.optionalWith(Schema.Int.pipe(Schema.between(100, 300_000)), { default: () => 10_000 }),
  retry: Schema.optionalWith(
    Schema.Struct({ scheduleMs: Schema.Array(Schema.Int.pipe(Schema.nonNegative())).pipe(Schema.minItems(1)) }),
    { default: () => ({ scheduleMs: [...DEFAULT_SCHEDULE_MS] }) }
  ),
  concurrency: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 256)), { default: () => 4 }),
  /** requests per second at most */
  rateLimit: Schema.optional(Schema.Number.pipe(Schema.positive())),
  enabled: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  /** disable the target itself when its circuit opens (opt-in) */
  autoDisable: Schema.optionalWith(Schema.Boolean, { default: () => false })
})

/** The checks across fields: the secret, url and settings as the target's template (or Standard Webhooks) reads them. */
const consistent = (t: {
  readonly url: string
  readonly secret?: string | undefined
  readonly template?: string | undefined
  readonly settings?: Readonly<Record<string, unknown>> | undefined
  readonly auth?: unknown
}) => {
  const template = t.template === undefined ? undefined : templateNamed(t.template)
  if (!template) {
    if (t.settings !== undefined) return { path: ["settings"], message: "settings belong to a template: name one (template)" }
    const problem = t.secret === undefined ? undefined : standardWebhooksSecret(t.secret)
    return problem === undefined ? true : { path: ["secret"], message: problem }
  }
  const urlProblem = template.url.check(new URL(t.url))
  if (urlProblem) return { path: ["url"], message: `${template.name}: ${urlProblem}` }
  if (t.secret !== undefined) {
    if (!template.secret) return { path: ["secret"], message: `${template.name} takes no secret` }
    const problem = template.secret.check(t.secret)
    if (problem) return { path: ["secret"], message: `${template.name}: ${problem}` }
  } else if (template.secret?.required) return { path: ["secret"], message: `${template.name} needs a secret: ${template.secret.description}` }
  if (template.needsAuth && t.auth === undefined) return { path: ["auth"], message: `${template.name} needs auth (OAuth2)` }
  const settings = Schema.decodeUnknownEither(template.settings, { errors: "first", onExcessProperty: "error" })(t.settings ?? {})
  if (settings._tag === "Left") {
    const [issue] = ParseResult.ArrayFormatter.formatErrorSync(settings.left)
    return { path: ["settings", ...(issue?.path ?? []).map(String)], message: `${template.name}: ${issue?.message ?? "invalid"}` }
  }
  return true
}

export const TargetSchema = Schema.Struct(targetFields(true)).pipe(Schema.filter(consistent))
export const StoredTargetSchema = Schema.Struct(targetFields(false))
export type Target = typeof TargetSchema.Type

/** The template a target names, if any (a stored target may name one since removed: none then). */
export const templateOf = (target: Target) => (target.template === undefined ? undefined : templateNamed(target.template))

/** The target's template settings with their defaults (checked when it was saved). */
export const settingsOf = (target: Target): Record<string, unknown> => {
  const template = templateOf(target)
  if (!template) return { ...target.settings }
  const decoded = Schema.decodeUnknownEither(template.settings)(target.settings ?? {})
  return decoded._tag === "Right" ? (decoded.right as Record<string, unknown>) : { ...target.settings }
}

/**
 * Event types that carry a secret in clear (the SMS gateway's copy of a verification code):
 * a target gets them only by naming the exact type in `events`, never through a glob (`*`,
 * `verification.*`), so a CRM or log sink subscribed to everything never sees a code.
 */
export const SENSITIVE_EVENT_TYPES: ReadonlySet<string> = new Set(["verification.sms"])

const globToRegExp = (glob: string) => new RegExp(`^${glob.split("*").map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`)
const compiled = new Map<string, RegExp>()
export const matches = (target: Target, type: string) =>
  SENSITIVE_EVENT_TYPES.has(type)
    ? target.events.includes(type)
    : target.events.some((g) => {
        let r = compiled.get(g)
        if (!r) compiled.set(g, (r = globToRegExp(g)))
        return r.test(type)
      })

/**
 * The built-in target of deliveries to a URL the event's originator named (a callback's own
 * `callbackUrl`), not a configured target: each such delivery carries its URL, this target its
 * policy (timeout, retry schedule, concurrency) — the queue, retries, dead letters and redrive
 * are the same as every target's. `$` cannot start a configured target's name, so none can take it.
 * It matches no event type: only deliveries added for it by name go to it.
 */
export const ADHOC_TARGET = "$adhoc"

export const adhocTarget = (policy: { readonly timeoutMs: number; readonly scheduleMs: ReadonlyArray<number> }): Target => ({
  name: ADHOC_TARGET,
  // never used: every delivery of this target names its own URL
  url: "http://127.0.0.1/",
  events: [],
  format: "800ing",
  headers: {},
  timeoutMs: policy.timeoutMs,
  retry: { scheduleMs: [...policy.scheduleMs] },
  concurrency: 8,
  enabled: true,
  autoDisable: false
})
