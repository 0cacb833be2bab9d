/**
 * `telephony` in the config: which driver places the calls the API asks for, and each
 * driver's settings. Defaults are applied here (not in AppConfig's `defaults`) so that an
 * `outcomes` object given in a file replaces the default weights instead of merging with them.
 */
import { Schema } from "effect"
import { DEFAULT_SCHEDULE_MS } from "../forwarding/Target.js"
import { normalizeMac } from "../shared/Mac.js"
import { isAddressOrRange } from "../shared/Network.js"

const NonNegative = Schema.Number.pipe(Schema.nonNegative({ message: () => "expected a weight, 0 or more" }))
const Ms = Schema.Int.pipe(Schema.nonNegative({ message: () => "expected milliseconds, 0 or more" }))

const Range = Schema.Struct({ min: Ms, max: Ms }).pipe(Schema.filter((r) => r.min <= r.max || "expected min to be at most max"))

export const Outcomes = Schema.Struct({
  answered: Schema.optionalWith(NonNegative, { default: () => 0 }),
  noAnswer: Schema.optionalWith(NonNegative, { default: () => 0 }),
  busy: Schema.optionalWith(NonNegative, { default: () => 0 }),
  failed: Schema.optionalWith(NonNegative, { default: () => 0 })
}).pipe(Schema.filter((o) => o.answered + o.noAnswer + o.busy + o.failed > 0 || "expected at least one outcome with a weight above 0"))
export type Outcome = keyof typeof Outcomes.Type

const SimulatorConfig = Schema.Struct({
  /** time scale: 100 plays a 30 s call in 0.3 s (the records still say 30 s) */
  speed: Schema.optionalWith(Schema.Number.pipe(Schema.positive({ message: () => "expected a positive number" })), { default: () => 1 }),
  /** relative weights of what happens to each leg of a call */
  outcomes: Schema.optionalWith(Outcomes, { default: () => ({ answered: 0.7, noAnswer: 0.2, busy: 0.1, failed: 0 }) }),
  /** how long a phone rings before it is answered or given up on (simulated time) */
  ringMs: Schema.optionalWith(Range, { default: () => ({ min: 2_000, max: 12_000 }) }),
  /** how long an answered call talks (simulated time) */
  talkMs: Schema.optionalWith(Range, { default: () => ({ min: 10_000, max: 120_000 }) }),
  /** the number a verification call shows (wsShowPhone) */
  showPhone: Schema.optionalWith(Schema.String, { default: () => "4008000000" })
})

const HttpUrl = Schema.String.pipe(
  Schema.filter((u) => {
    try {
      const url = new URL(u)
      return url.protocol === "http:" || url.protocol === "https:" || "expected an http(s) URL"
    } catch {
      return "expected an http(s) URL"
    }
  })
)

/** How long after a box took a dial its upload of the call may come (the call's ring and talk, and the upload's retries). */
export const DEFAULT_REPORT_WITHIN_MS = 10 * 60_000

const UpstreamConfig = Schema.Struct({
  /** the platform's jsondata URL, e.g. http://voip.800ing.com:8080/voip/api/jsondata.html */
  url: HttpUrl,
  /**
   * where the platform reaches this bridge (e.g. http://bridge.example:8080): a relayed callback
   * is given a callbackUrl under it, so the platform's status pushes come back here and update
   * our row. Without it, the integrator's own callbackUrl is relayed as it came.
   */
  publicUrl: Schema.optional(HttpUrl),
  sa_user: Schema.String.pipe(Schema.minLength(1)),
  /** the MD5 of the platform password, as every jsondata call sends it */
  sa_password: Schema.String.pipe(Schema.pattern(/^[0-9A-Fa-f]{32}$/, { message: () => "expected the 32-hex MD5 of the password" })),
  timeoutMs: Schema.optionalWith(Schema.Int.pipe(Schema.between(100, 300_000)), { default: () => 10_000 })
})

const AllowEntry = Schema.String.pipe(
  Schema.filter((e) => isAddressOrRange(e) || /^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(e) || `expected an address, a CIDR range or a host name, got ${JSON.stringify(e)}`)
)

export const TelephonyConfig = Schema.Struct({
  driver: Schema.Literal("simulator", "box", "upstream"),
  simulator: Schema.optionalWith(SimulatorConfig, { default: () => Schema.decodeSync(SimulatorConfig)({}) }),
  upstream: Schema.optional(UpstreamConfig),
  /** box driver: the box whose channel dials when the agent has no channel of its own */
  box: Schema.optional(
    Schema.Struct({
      mac: Schema.optional(Schema.String.pipe(Schema.filter((m) => normalizeMac(m) !== undefined || `expected a box's MAC such as 00:1A:2B:3C:4D:5E, got ${JSON.stringify(m)}`))),
      /** a dial handed out to a box that uploads no record of it within this ends as not answered (default DEFAULT_REPORT_WITHIN_MS) */
      reportWithinMs: Schema.optional(Schema.Int.pipe(Schema.between(1_000, 24 * 3_600_000)))
    })
  ),
  /** delivery of callback status pushes to each callback's own URL (see src/callbacks) */
  callbackDelivery: Schema.optionalWith(
    Schema.Struct({
      timeoutMs: Schema.optionalWith(Schema.Int.pipe(Schema.between(100, 300_000)), { default: () => 10_000 }),
      scheduleMs: Schema.optionalWith(Schema.Array(Ms).pipe(Schema.minItems(1)), { default: () => [...DEFAULT_SCHEDULE_MS] }),
      /**
       * where a callbackUrl may point: addresses, CIDR ranges, host names (exact); empty = anywhere
       * (the default: a CRM on 127.0.0.1 or the LAN is the common case). Checked on the URL as
       * written when callbackPhone arrives; a host name is not resolved.
       */
      allowTo: Schema.optionalWith(Schema.Array(AllowEntry), { default: () => [] })
    }),
    { default: () => ({ timeoutMs: 10_000, scheduleMs: [...DEFAULT_SCHEDULE_MS], allowTo: [] }) }
  )
}).pipe(Schema.filter((t) => t.driver !== "upstream" || t.upstream !== undefined || { path: ["upstream"], message: "the upstream driver needs upstream.url, upstream.sa_user and upstream.sa_password" }))
export type TelephonyConfigShape = typeof TelephonyConfig.Type
