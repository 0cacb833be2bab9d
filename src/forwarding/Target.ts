/** A target: where events go, which ones, in what shape, how hard we try. Config file and admin API share this schema. */
import { Schema } from "effect"
import jsonata from "jsonata"
import { Webhook } from "standardwebhooks"

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
const Secret = Schema.String.pipe(
  Schema.pattern(/^whsec_[A-Za-z0-9+/=]+$/, { message: () => "expected a whsec_… secret" }),
  Schema.filter((secret) => {
    try {
      new Webhook(secret).sign("msg_check", new Date(0), "")
      return true
    } catch {
      return "expected whsec_ followed by a base64 key (Standard Webhooks)"
    }
  })
)
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
 * `strict`: a target being saved (config file, admin API). Not strict: a target stored by an
 * earlier version, read back as it was — a check added since must not stop the bridge from
 * starting (its admin API is where the target gets fixed).
 */
const targetFields = (strict: boolean) => ({
  // a name is a URL path segment of the admin API: "." and ".." would not reach it
  name: strict ? Schema.String.pipe(Schema.pattern(/^(?!\.+$)[A-Za-z0-9_.-]{1,64}$/, { message: () => "expected 1–64 letters, digits, '_', '.' or '-' (not dots alone)" })) : Schema.String,
  url: HttpUrl,
  /** globs over event types: `call.*`, `workorder.ended`, `*` (a sensitive type, SENSITIVE_EVENT_TYPES, only by its exact name) */
  events: Schema.optionalWith(Schema.Array(Schema.String.pipe(Schema.pattern(/^[a-z0-9_.*]+$/, { message: () => "expected an event type or glob such as call.*" }))), { default: () => ["*"] }),
  format: Schema.optionalWith(Schema.Literal("json", "800ing", "form"), { default: () => "json" as const }),
  /** JSONata over the json envelope; its result is the body */
  transform: Schema.optional(strict ? Transform : Schema.String),
  headers: Schema.optionalWith(strict ? Headers : Schema.Record({ key: Schema.String, value: Schema.String }), { default: () => ({}) }),
  /** Standard Webhooks secret (`whsec_…`): requests are signed when set */
  secret: Schema.optional(strict ? Secret : Schema.String),
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
export const TargetSchema = Schema.Struct(targetFields(true))
export const StoredTargetSchema = Schema.Struct(targetFields(false))
export type Target = typeof TargetSchema.Type

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
