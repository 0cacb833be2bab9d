/** A target: where events go, which ones, in what shape, how hard we try. Config file and admin API share this schema. */
import { Schema } from "effect"

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

export const TargetSchema = Schema.Struct({
  name: Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9_.-]{1,64}$/, { message: () => "expected 1–64 letters, digits, '_', '.' or '-'" })),
  url: HttpUrl,
  /** globs over event types: `call.*`, `workorder.ended`, `*` */
  events: Schema.optionalWith(Schema.Array(Schema.String.pipe(Schema.pattern(/^[a-z0-9_.*]+$/, { message: () => "expected an event type or glob such as call.*" }))), { default: () => ["*"] }),
  format: Schema.optionalWith(Schema.Literal("json", "800ing", "form"), { default: () => "json" as const }),
  /** JSONata over the json envelope; its result is the body */
  transform: Schema.optional(Schema.String),
  headers: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.String }), { default: () => ({}) }),
  /** Standard Webhooks secret (`whsec_…`): requests are signed when set */
  secret: Schema.optional(Schema.String.pipe(Schema.pattern(/^whsec_[A-Za-z0-9+/=]+$/, { message: () => "expected a whsec_… secret" }))),
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
export type Target = typeof TargetSchema.Type

const globToRegExp = (glob: string) => new RegExp(`^${glob.split("*").map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`)
const compiled = new Map<string, RegExp>()
export const matches = (target: Target, type: string) =>
  target.events.some((g) => {
    let r = compiled.get(g)
    if (!r) compiled.set(g, (r = globToRegExp(g)))
    return r.test(type)
  })
