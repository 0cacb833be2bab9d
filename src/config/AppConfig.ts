/**
 * Configuration: defaults < config file (BRIDGE_CONFIG, or config/bridge.json when
 * present) < environment. The merged value is decoded with one Schema, so a bad value
 * stops start-up with a message naming the key, where it came from and what was expected.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Context, Effect, Either, Layer, Schema } from "effect"
import { problemsOf } from "../../schemas/Param.js"
import { CrmConfig } from "../crm/ConfigSchema.js"
import { FlowConfig } from "../flows/FlowSchema.js"
import { TelephonyConfig } from "../telephony/ConfigSchema.js"
import { TargetSchema } from "../forwarding/Target.js"
import { normalizeMac } from "../shared/Mac.js"
import { isAddressOrRange } from "../shared/Network.js"
import { isValidZone } from "../shared/Time.js"
import { WorkOrdersConfig } from "../workorders/Definition.js"
import { PUSH_TARGET_PREFIX, pushTargetType } from "../workorders/PushTarget.js"

const Port = Schema.Int.pipe(Schema.between(0, 65535, { message: () => "expected a port number from 0 to 65535" }))
const PositiveInt = Schema.Int.pipe(Schema.positive({ message: () => "expected a positive integer" }))
const Zone = Schema.String.pipe(
  Schema.filter((tz) => isValidZone(tz) || `expected an IANA time zone such as Asia/Shanghai, got ${JSON.stringify(tz)}`)
)
export const LogLevelName = Schema.Literal("all", "trace", "debug", "info", "warning", "error", "fatal", "none")

const ReceiverConfig = Schema.Struct({
  path: Schema.String.pipe(Schema.pattern(/^\/[A-Za-z0-9_.\/-]*$/, { message: () => "expected a path such as /api/voip.json" })),
  /** when set, the sender must give it as `token` or in the `x-bridge-token` header */
  token: Schema.optional(Schema.String.pipe(Schema.minLength(8, { message: () => "expected at least 8 characters" }))),
  /** when not empty, only these addresses or CIDR ranges may push */
  allowFrom: Schema.Array(Schema.String.pipe(Schema.filter((s) => isAddressOrRange(s) || `expected an IP address or CIDR range, got ${JSON.stringify(s)}`)))
})

/** A recording box (§2.1.10): its MAC (any spelling), its enterprise, and its RJ11 channels' extensions. */
export const DeviceConfig = Schema.Struct({
  mac: Schema.String.pipe(Schema.filter((s) => normalizeMac(s) !== undefined || `expected a MAC address such as 00:1A:2B:3C:4D:5E, got ${JSON.stringify(s)}`)),
  enterprise: Schema.String.pipe(Schema.pattern(/^\d{6}$/, { message: () => "expected a 6-digit enterprise number" })),
  channels: Schema.Record({
    key: Schema.String.pipe(Schema.pattern(/^([1-9]|[1-5]\d|6[0-4])$/, { message: () => "expected a channel number from 1 to 64" })),
    value: Schema.String.pipe(Schema.pattern(/^\d{9}$/, { message: () => "expected a 9-digit extension number" }))
  })
})

export const ConfigSchema = Schema.Struct({
  port: Port,
  host: Schema.String,
  dataDir: Schema.String.pipe(Schema.minLength(1, { message: () => "expected a directory path" })),
  /** bearer token of the admin API; generated into the data directory when unset */
  adminToken: Schema.optional(
    Schema.String.pipe(Schema.minLength(16, { message: () => "expected at least 16 characters" }))
  ),
  tz: Zone,
  logLevel: LogLevelName,
  bootstrap: Schema.Struct({
    /** create the contract's test enterprise and its admin on first start */
    enabled: Schema.Boolean,
    compNumber: Schema.String.pipe(Schema.pattern(/^\d{6}$/, { message: () => "expected a 6-digit enterprise number" })),
    compName: Schema.String,
    adminSuffix: Schema.Int.pipe(Schema.between(400, 899, { message: () => "expected a suffix from 400 to 899" })),
    adminPassword: Schema.String.pipe(Schema.minLength(1))
  }),
  http: Schema.Struct({
    /** largest urlencoded/JSON body, and largest multipart request without files */
    bodyLimitBytes: PositiveInt,
    /** close keep-alive connections idle this long */
    keepAliveTimeoutMs: PositiveInt,
    /** a request's line and headers must have arrived this long after the connection (or the previous answer): else 408 */
    headersTimeoutMs: PositiveInt,
    /** a whole request, body included, must have arrived this long after the connection (or the previous answer): else 408 */
    requestTimeoutMs: PositiveInt
  }).pipe(
    Schema.filter((h) => h.requestTimeoutMs >= h.headersTimeoutMs || "expected requestTimeoutMs to be at least headersTimeoutMs (the headers are part of the request)")
  ),
  sessions: Schema.Struct({
    /** sliding expiry of a work-order sessionId */
    ttlSeconds: PositiveInt
  }),
  /** guessing passwords: failed logins lock out, scrypt runs a bounded number at a time (docs/decisions.md) */
  auth: Schema.Struct({
    throttle: Schema.Struct({
      /** failures of one extension from one address, within `windowMs`, before it is locked out */
      maxFailures: PositiveInt,
      /** failures from one address over all extensions before the address is locked out */
      addressMaxFailures: PositiveInt,
      /** failures of one extension from all addresses together: a high ceiling against guessing from many addresses */
      extensionMaxFailures: PositiveInt,
      /** failures older than this are forgotten */
      windowMs: PositiveInt,
      /** the first lock-out; each further failure doubles it, up to `maxLockoutMs` */
      lockoutMs: PositiveInt,
      maxLockoutMs: PositiveInt,
      /** scrypt computations running at once; the rest wait their turn in arrival order */
      maxConcurrentHashes: PositiveInt,
      /** counters kept in memory per kind (the least recently used are dropped beyond) */
      maxTracked: PositiveInt
    })
  }),
  db: Schema.Struct({
    /** FULL: an acknowledged write survives power loss. NORMAL: survives a crash of the process only. */
    synchronous: Schema.Literal("FULL", "NORMAL"),
    /** how long a write waits for a lock another process holds on the database before it fails (a push: -6) */
    busyTimeoutMs: Schema.Int.pipe(Schema.nonNegative({ message: () => "expected a number of milliseconds, 0 or more" }))
  }),
  limits: Schema.Struct({
    /** largest `limit` a paged method accepts (above: -12) */
    pageMax: PositiveInt
  }),
  /** the platform's pushes we receive: path, and optional guards (shared token, address allow-list) */
  receive: Schema.Struct({
    voip: ReceiverConfig,
    workorder: ReceiverConfig,
    callback: ReceiverConfig
  }),
  /** where events are forwarded; the admin API can add more */
  targets: Schema.Array(TargetSchema).pipe(
    Schema.filter((ts) => {
      const seen = new Set<string>()
      const twice = ts.find((t) => seen.size === seen.add(t.name).size)
      return twice === undefined || `two targets are named ${JSON.stringify(twice.name)}: a name is a target's key`
    }),
    // the work-order types' push targets are saved under these names: a config target so named
    // would be overwritten by its type's pushUrl, or at the next start overwrite it
    Schema.filter((ts) =>
      ts.flatMap((t, i) =>
        pushTargetType(t.name) === undefined
          ? []
          : [{ path: [i, "name"], message: `names starting with ${JSON.stringify(PUSH_TARGET_PREFIX)} are the work-order types' push targets, set by a type's pushUrl: choose another name` }]
      )
    )
  ),
  forwarding: Schema.Struct({
    /** consecutive failures that open a target's circuit */
    circuitThreshold: PositiveInt,
    /** how long an open circuit waits before one probe */
    circuitCooldownMs: PositiveInt,
    /** delivered events and their deliveries are deleted after this many days (0: never) */
    retentionDays: Schema.Int.pipe(Schema.nonNegative()),
    /** how often the worker looks for due deliveries besides being woken by new events */
    pollIntervalMs: PositiveInt,
    /**
     * whether the targets' deliveries wait while pushes arrive in a burst (for at most 10 s), so
     * pushes are acknowledged first; false: they keep their full concurrency, for the lowest
     * delivery latency at the price of slower ingest during bursts
     */
    holdDuringBursts: Schema.Boolean
  }),
  storage: Schema.Struct({
    /** below this many free bytes on the data directory's disk: storage.low (and storage.ok above it again) */
    lowFreeBytes: Schema.Int.pipe(Schema.nonNegative()),
    /** how often free space is checked */
    checkIntervalMs: PositiveInt
  }),
  recordings: Schema.Struct({
    /** largest recording upload (above: -13) */
    maxUploadBytes: PositiveInt,
    /** bytes of uploads being received at once, all requests together (above: 503 with -12) */
    maxInFlightBytes: PositiveInt,
    /** addresses or CIDR ranges whose requests may download recordings without credentials */
    openTo: Schema.Array(
      Schema.String.pipe(Schema.filter((s) => isAddressOrRange(s) || `expected an IP address or CIDR range, got ${JSON.stringify(s)}`))
    )
  }),
  /** recording boxes registered from config (upserted at every start; the admin API adds more) */
  devices: Schema.Array(DeviceConfig),
  box: Schema.Struct({
    /** a box's disk this full (percent) or fuller raises box.alert */
    diskAlertPercent: Schema.Number.pipe(Schema.between(0, 100, { message: () => "expected a percentage from 0 to 100" })),
    /** how long a queued dial (sendTelCall) or message waits for the box's poll before it is dropped */
    dialTtlMs: PositiveInt,
    /** how long a getMessageList long poll is held open waiting for something to hand out (0: answer at once) */
    messageWaitMs: Schema.Number.pipe(Schema.int(), Schema.between(0, 60_000, { message: () => "expected milliseconds from 0 to 60000" })),
    /** a registered box silent this long is marked offline (box.offline); it is online again at its next call (box.online) */
    offlineAfterMs: PositiveInt
  }),
  /** customer field labels and code lists (getTableFields, getCodes): built-in defaults, replaced here per enterprise or for all */
  crm: CrmConfig,
  /** call flows (§2.10.1) registered from config, by enterprise and name (upserted at every start) */
  callFlows: Schema.Array(FlowConfig),
  /** verification codes by SMS (sendCallAgiPhoneSms / CallAgiverificationCode, §2.11.6–2.11.7) */
  verification: Schema.Struct({
    /** digits in a code */
    codeLength: Schema.Int.pipe(Schema.between(4, 8, { message: () => "expected 4 to 8 digits" })),
    /** how long a code is valid */
    ttlMs: PositiveInt,
    /** wrong codes before the pending one is void (-12) */
    maxAttempts: PositiveInt,
    /** a new code for the same number no sooner than this (-12) */
    resendAfterMs: Schema.Int.pipe(Schema.nonNegative())
  }),
  /** which driver makes the phones ring (callbackPhone, phoneAudit, sendTelCall), and its settings */
  telephony: TelephonyConfig,
  /** work-order types (§2.12), the example seeded on first start, attachment size */
  workorders: WorkOrdersConfig,
  /** every inbound request and its answer as JSON lines, for replay (src/capture, `npm start -- replay`) */
  capture: Schema.Struct({
    /** the JSONL file; capturing starts with the bridge when set (BRIDGE_CAPTURE), else by POST /admin/api/capture */
    file: Schema.optional(Schema.String.pipe(Schema.minLength(1, { message: () => "expected a file path" }))),
    /** the file is rotated (to <file>.1, .2, .3) when it passes this size */
    maxBytes: PositiveInt,
    /** keep sa_password, sessionId, receiver tokens and Authorization as they were (a capture is then a secret) */
    keepCredentials: Schema.Boolean,
    /** a body (request or answer) longer than this is cut there and marked truncated */
    maxBodyBytes: PositiveInt
  })
})
export type AppConfigShape = typeof ConfigSchema.Type

export const defaults: typeof ConfigSchema.Encoded = {
  port: 8080,
  host: "0.0.0.0",
  dataDir: "./data",
  tz: "Asia/Shanghai",
  logLevel: "info",
  bootstrap: {
    enabled: true,
    compNumber: "100008",
    compName: "测试企业",
    adminSuffix: 800,
    adminPassword: "02367073578"
  },
  // a recording of 50 MB at 4 Mbit/s takes about 100 s: the request timeout leaves room for it
  http: { bodyLimitBytes: 1024 * 1024, keepAliveTimeoutMs: 5000, headersTimeoutMs: 20_000, requestTimeoutMs: 120_000 },
  sessions: { ttlSeconds: 2 * 60 * 60 },
  auth: {
    throttle: {
      maxFailures: 5,
      addressMaxFailures: 20,
      extensionMaxFailures: 100,
      windowMs: 15 * 60_000,
      lockoutMs: 1000,
      maxLockoutMs: 60_000,
      maxConcurrentHashes: 2,
      maxTracked: 10_000
    }
  },
  db: { synchronous: "FULL", busyTimeoutMs: 5000 },
  limits: { pageMax: 1000 },
  storage: { lowFreeBytes: 1024 * 1024 * 1024, checkIntervalMs: 30_000 },
  recordings: { maxUploadBytes: 50 * 1024 * 1024, maxInFlightBytes: 256 * 1024 * 1024, openTo: [] },
  receive: {
    voip: { path: "/api/voip.json", allowFrom: [] },
    workorder: { path: "/api/workorder.json", allowFrom: [] },
    callback: { path: "/api/callback.json", allowFrom: [] }
  },
  targets: [],
  devices: [],
  box: { diskAlertPercent: 90, dialTtlMs: 60_000, messageWaitMs: 20_000, offlineAfterMs: 90_000 },
  crm: { fields: {}, codes: {}, enterprises: {} },
  callFlows: [],
  verification: { codeLength: 6, ttlMs: 5 * 60_000, maxAttempts: 5, resendAfterMs: 60_000 },
  telephony: { driver: "simulator" },
  workorders: { seedExample: true, attachmentMaxBytes: 10 * 1024 * 1024, types: [] },
  capture: { maxBytes: 100 * 1024 * 1024, keepCredentials: false, maxBodyBytes: 1024 * 1024 },
  forwarding: { circuitThreshold: 5, circuitCooldownMs: 30_000, retentionDays: 30, pollIntervalMs: 1000, holdDuringBursts: true }
}

/** Environment variables and the config keys they set. */
const envKeys: ReadonlyArray<readonly [env: string, key: ReadonlyArray<string>, kind: "string" | "number" | "boolean"]> = [
  ["BRIDGE_PORT", ["port"], "number"],
  ["BRIDGE_HOST", ["host"], "string"],
  ["BRIDGE_DATA_DIR", ["dataDir"], "string"],
  ["BRIDGE_ADMIN_TOKEN", ["adminToken"], "string"],
  ["BRIDGE_TZ", ["tz"], "string"],
  ["LOG_LEVEL", ["logLevel"], "string"],
  ["BRIDGE_BOOTSTRAP", ["bootstrap", "enabled"], "boolean"],
  ["BRIDGE_DB_SYNCHRONOUS", ["db", "synchronous"], "string"],
  ["BRIDGE_DB_BUSY_TIMEOUT_MS", ["db", "busyTimeoutMs"], "number"],
  ["BRIDGE_CAPTURE", ["capture", "file"], "string"]
]

export class ConfigError extends Schema.TaggedError<ConfigError>()("ConfigError", { message: Schema.String }) {}

type Json = { [k: string]: unknown }
const isObject = (u: unknown): u is Json => typeof u === "object" && u !== null && !Array.isArray(u)

const merge = (base: Json, over: Json): Json => {
  const out: Json = { ...base }
  for (const [k, v] of Object.entries(over)) out[k] = isObject(v) && isObject(out[k]) ? merge(out[k] as Json, v) : v
  return out
}

const setPath = (obj: Json, keys: ReadonlyArray<string>, value: unknown): Json => {
  const [head, ...rest] = keys
  if (head === undefined) return obj
  return { ...obj, [head]: rest.length === 0 ? value : setPath(isObject(obj[head]) ? (obj[head] as Json) : {}, rest, value) }
}

const fromEnvText = (text: string, kind: "string" | "number" | "boolean"): unknown => {
  // Leave malformed text as it is, so the schema reports it with the key's expectation.
  if (kind === "number") return /^-?\d+$/.test(text.trim()) ? Number(text) : text
  if (kind === "boolean") return /^(true|1|yes)$/i.test(text) ? true : /^(false|0|no)$/i.test(text) ? false : text
  return text === "warn" ? "warning" : text
}

export interface LoadOptions {
  readonly env?: Readonly<Record<string, string | undefined>>
  readonly cwd?: string
  /** applied after the environment: used by tests and the CLI */
  readonly overrides?: Json
}

export const loadConfig = (options: LoadOptions = {}): Effect.Effect<AppConfigShape, ConfigError> =>
  Effect.suspend(() => {
    const env = options.env ?? process.env
    const cwd = options.cwd ?? process.cwd()
    const explicit = env.BRIDGE_CONFIG
    const file = explicit ? path.resolve(cwd, explicit) : path.resolve(cwd, "config/bridge.json")
    let merged: Json = defaults as unknown as Json
    const source: Record<string, string> = {}
    if (explicit || fs.existsSync(file)) {
      let parsed: unknown
      try {
        parsed = JSON.parse(fs.readFileSync(file, "utf8"))
      } catch (e) {
        return Effect.fail(new ConfigError({ message: `config file ${file}: ${e instanceof Error ? e.message : String(e)}` }))
      }
      if (!isObject(parsed)) return Effect.fail(new ConfigError({ message: `config file ${file}: expected a JSON object` }))
      merged = merge(merged, parsed)
      for (const k of Object.keys(parsed)) source[k] = file
    }
    for (const [name, keys, kind] of envKeys) {
      const text = env[name]
      if (text === undefined || text === "") continue
      merged = setPath(merged, keys, fromEnvText(text, kind))
      source[keys.join(".")] = name
    }
    if (options.overrides) merged = merge(merged, options.overrides)
    return Schema.decodeUnknownEither(ConfigSchema, { onExcessProperty: "error", errors: "all" })(merged).pipe(
      Either.match({
        onRight: Effect.succeed,
        onLeft: (error) => {
          // every bad key at once, one line each: the members of a union a value failed are one "expected one of"
          const byKey = new Map<string, Array<string>>()
          for (const issue of problemsOf(error)) {
            // an optional key's own "or absent" alternative says nothing, and would print the whole value
            if (/^Expected undefined, actual /s.test(issue.message)) continue
            byKey.set(issue.path, [...(byKey.get(issue.path) ?? []), issue.message])
          }
          const lines = [...byKey].map(([key, messages]) => {
            const from = source[key] ?? source[key.split(".")[0]!]
            // a secret is never printed, not even a wrong one: logs and terminals travel further than the config
            const secret = /token|secret|password|headers|auth/i.test(key)
            const shown = (v: string) => (secret ? "(value not shown)" : v)
            const alternatives = messages.map((m) => /^Expected (.+), actual (.+)$/s.exec(m)).filter((m): m is RegExpExecArray => m !== null)
            const said =
              alternatives.length > 1 && alternatives.length === messages.length
                ? `expected one of ${[...new Set(alternatives.map((m) => m[1]))].join(" | ")}, got ${shown(alternatives[0]![2]!)}`
                : [...new Set(messages.map((m) => (secret ? m.replace(/(, actual |, got ).*$/s, "$1(value not shown)") : m)))].join("; ")
            return `config key "${key}"${from ? ` (from ${from})` : ""}: ${said}`
          })
          return Effect.fail(new ConfigError({ message: lines.join("\n") }))
        }
      })
    )
  })

export class AppConfig extends Context.Tag("AppConfig")<AppConfig, AppConfigShape>() {}

export const AppConfigLive = (options?: LoadOptions): Layer.Layer<AppConfig, ConfigError> =>
  Layer.effect(AppConfig, loadConfig(options))
