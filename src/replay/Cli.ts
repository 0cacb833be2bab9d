/**
 * `npm start -- replay FILE… --to URL | --fresh [options]`: reads the inputs, filters them,
 * replays them (into a throwaway bridge with --fresh), prints the report and returns the exit
 * status (0 no differences, 1 differences or invalid answers, 2 errors).
 */
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { parseArgs } from "node:util"
import { Effect } from "effect"
import { ensureAdminToken } from "../Bootstrap.js"
import { type AppConfigShape, loadConfig } from "../config/AppConfig.js"
import { DeadLetters } from "../forwarding/DeadLetters.js"
import { startServer } from "../http/Server.js"
import { makeMatcher } from "./Diff.js"
import { type BadInput, type Entry, readInput } from "./Input.js"
import { makeReport, replay, type Report, reportText, toHar } from "./Replay.js"
import { paramsOf } from "./Rewrite.js"

export const REPLAY_HELP = `usage: npm start -- replay FILE… (--to URL | --fresh) [options]

Sends captured requests again, in their order, and compares each answer with the captured one.
FILE is a bridge capture (JSONL: BRIDGE_CAPTURE, POST /admin/api/capture), a HAR 1.2 file
(browsers, proxies) or a file of curl command lines; several are replayed one after another.

  --to URL              the server to replay into (a bridge, or the real platform)
  --fresh               start a throwaway bridge on a temporary data directory and replay into it
  --config FILE         the fresh bridge's configuration (default: BRIDGE_CONFIG or
                        config/bridge.json, as npm start reads it; its targets get deliveries)
  --speed X             keep the captured spacing, scaled (1 as captured, 2 twice as fast);
                        0 (default): as fast as possible
  --rate N              start at most N requests a second
  --concurrency N       requests in flight at once (default 1); requests of one session, one
                        sa_user, one box or one pushed call stay in order whatever N is
  --filter K=GLOB       only entries whose K matches: path, http (GET, POST…), method (jsondata
                        method=), type (push type), cmd (box cmd); repeatable: the same K is
                        any of, different Ks all of
  --credentials U:MD5   send sa_password MD5 for sa_user U (repeatable); captures hide passwords.
                        With --fresh the bootstrap admin's are known already
  --admin-token T       the bearer token for /admin/api requests (with --fresh: the fresh one's)
  --ignore P,…          fields not to compare, besides the defaults (ids, times, sessionId,
                        waterLine): a key (custName, *Time) or a path (rows[].custName)
  --only P,…            compare only these fields (and the HTTP status)
  --no-default-ignores  compare ids and times too
  --validate            check every answer against the contract's schemas (method and field named)
  --report FILE         the report as JSON
  --har-out FILE        what was sent and answered, as HAR 1.2
  --progress            a progress bar on stderr even when it is not a terminal
  --quiet               only the totals, not every difference

Ids are followed: when the captured answer said custId X and the new one says Y, later requests
naming X are sent with Y. Exit status: 0 no differences, 1 differences (or invalid answers with
--validate), 2 errors (a request failed on the network, an input line could not be read).
`

type Filter = ReadonlyMap<string, ReadonlyArray<RegExp>>
const FILTER_KEYS = ["path", "http", "method", "type", "cmd"]
const glob = (g: string) => new RegExp(`^${g.split("*").map((s) => s.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`, "i")

export const parseFilters = (values: ReadonlyArray<string>): Filter | string => {
  const out = new Map<string, Array<RegExp>>()
  for (const v of values) {
    const eq = v.indexOf("=")
    const key = eq < 0 ? "" : v.slice(0, eq)
    if (!FILTER_KEYS.includes(key)) return `--filter ${v}: expected K=GLOB with K one of ${FILTER_KEYS.join(", ")}`
    out.set(key, [...(out.get(key) ?? []), glob(v.slice(eq + 1))])
  }
  return out
}

const passes = (entry: Entry, filter: Filter) => {
  if (filter.size === 0) return true
  const params = paramsOf(entry)
  const value = (k: string) => (k === "path" ? entry.path : k === "http" ? entry.method : params.get(k))
  return [...filter].every(([k, res]) => {
    const v = value(k)
    return v !== undefined && res.some((re) => re.test(v))
  })
}

export interface ReplayRun {
  readonly report: Report
  readonly text: string
}

export interface CliIo {
  readonly out: (text: string) => void
  readonly err: (text: string) => void
  readonly tty: boolean
}

const list = (v: string | undefined) => (v ? v.split(",").map((s) => s.trim()).filter(Boolean) : [])

const number = (name: string, v: string | undefined, fallback: number | undefined, integer: boolean): number | undefined | string => {
  if (v === undefined) return fallback
  const n = Number(v.replace(/\/s$/, ""))
  return Number.isFinite(n) && n >= 0 && (!integer || Number.isInteger(n)) ? n : `--${name} expects a ${integer ? "whole " : ""}number, got ${v}`
}

/**
 * A bridge of its own for --fresh: a config (--config, else the usual one: devices, receivers,
 * targets — its targets receive what the replay causes), a new data directory, a free port,
 * no capture of its own.
 */
const freshBridge = async (configFile: string | undefined) => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "vb-replay-"))
  const { BRIDGE_CAPTURE: _c, BRIDGE_PORT: _p, BRIDGE_HOST: _h, BRIDGE_DATA_DIR: _d, ...env } = process.env
  if (configFile !== undefined) env.BRIDGE_CONFIG = configFile
  const loaded = await Effect.runPromiseExit(loadConfig({ env, overrides: { port: 0, host: "127.0.0.1", dataDir, logLevel: "error" } }))
  if (loaded._tag === "Failure") {
    fs.rmSync(dataDir, { recursive: true, force: true })
    return loaded.cause._tag === "Fail" ? loaded.cause.error.message : "the configuration could not be read"
  }
  const config = { ...loaded.value, capture: { ...loaded.value.capture, file: undefined } }
  // a bridge that failed to start (or to hand out its token) leaves neither a process nor its directory
  let server: Awaited<ReturnType<typeof startServer>> | undefined
  let adminToken: string
  try {
    server = await startServer(config)
    adminToken = await server.runtime.runPromise(ensureAdminToken)
  } catch (e) {
    await server?.close().catch(() => undefined)
    fs.rmSync(dataDir, { recursive: true, force: true })
    return `the bridge could not start: ${e instanceof Error ? e.message : String(e)}`
  }
  const running = server
  // deliveries still waiting: sent before the bridge goes (a target that keeps failing: at most 10 s)
  const waiting = Effect.flatMap(DeadLetters, (d) =>
    Effect.map(Effect.zip(d.list("pending", {}, 1), d.list("in_flight", {}, 1)), ([p, f]) => p.length + f.length > 0)
  ).pipe(Effect.orElseSucceed(() => false))
  return {
    config,
    url: running.url,
    adminToken,
    /** `drain`: wait (10 s at most) for deliveries the replay caused; not when interrupted */
    close: async (drain = true) => {
      try {
        const until = Date.now() + 10_000
        while (drain && Date.now() < until && (await running.runtime.runPromise(waiting))) await new Promise((r) => setTimeout(r, 50))
        await running.close()
      } finally {
        fs.rmSync(dataDir, { recursive: true, force: true })
      }
    }
  }
}

const receiversOf = (config: AppConfigShape) => [config.receive.voip.path, config.receive.workorder.path, config.receive.callback.path]

/** Runs the command; resolves with the exit status. */
export const replayCommand = async (args: ReadonlyArray<string>, io: CliIo): Promise<number> => {
  let values
  let positionals
  try {
    ;({ values, positionals } = parseArgs({
      args: [...args],
      allowPositionals: true,
      options: {
        to: { type: "string" },
        fresh: { type: "boolean" },
        config: { type: "string" },
        speed: { type: "string" },
        rate: { type: "string" },
        concurrency: { type: "string" },
        filter: { type: "string", multiple: true },
        credentials: { type: "string", multiple: true },
        "admin-token": { type: "string" },
        ignore: { type: "string", multiple: true },
        only: { type: "string", multiple: true },
        "no-default-ignores": { type: "boolean" },
        validate: { type: "boolean" },
        report: { type: "string" },
        "har-out": { type: "string" },
        progress: { type: "boolean" },
        quiet: { type: "boolean" },
        help: { type: "boolean" }
      }
    }))
  } catch (e) {
    io.err(`replay: ${e instanceof Error ? e.message : String(e)}\n\n${REPLAY_HELP}`)
    return 2
  }
  if (values.help) {
    io.out(REPLAY_HELP)
    return 0
  }
  const usage = (problem: string) => (io.err(`replay: ${problem}\n\n${REPLAY_HELP}`), 2)
  if (positionals.length === 0) return usage("name at least one FILE")
  if (!values.fresh && !values.to) return usage("name the server with --to URL, or use --fresh")
  if (values.fresh && values.to) return usage("--to and --fresh exclude each other")
  if (values.to && !/^https?:\/\/[^/]+/.test(values.to)) return usage(`--to expects a URL such as http://127.0.0.1:8080, got ${values.to}`)
  const speed = number("speed", values.speed, 0, false)
  const rate = number("rate", values.rate, undefined, false)
  const concurrency = number("concurrency", values.concurrency, 1, true)
  for (const v of [speed, rate, concurrency]) if (typeof v === "string") return usage(v)
  if (concurrency === 0) return usage("--concurrency expects 1 or more")
  const filter = parseFilters(values.filter ?? [])
  if (typeof filter === "string") return usage(filter)
  const credentials = new Map<string, string>()
  for (const c of values.credentials ?? []) {
    const m = /^([^:]+):([0-9a-fA-F]{32})$/.exec(c)
    if (!m) return usage(`--credentials expects sa_user:md5 (32 hex digits), got ${c.replace(/:.*/, ":…")}`)
    credentials.set(m[1]!, m[2]!.toLowerCase())
  }

  const entries: Array<Entry> = []
  const bad: Array<BadInput> = []
  let filtered = 0
  for (const file of positionals) {
    const read = readInput(file)
    bad.push(...read.bad)
    for (const e of read.entries) if (passes(e, filter)) entries.push(e)
    else filtered++
  }
  for (const b of bad) io.err(`replay: ${b.where}: ${b.message} (skipped)`)

  if (values.config && !values.fresh) return usage("--config is the configuration of a --fresh bridge")
  const fresh = values.fresh ? await freshBridge(values.config) : undefined
  if (typeof fresh === "string") return usage(`--fresh: ${fresh}`)
  // Ctrl-C: nothing more is sent, what is in flight is cut, and the --fresh bridge and its directory go
  const interrupted = new AbortController()
  const onInterrupt = () => interrupted.abort()
  process.once("SIGINT", onInterrupt)
  try {
    let receivers: ReadonlyArray<string>
    if (fresh) {
      receivers = receiversOf(fresh.config)
      // the bootstrap admin of a fresh bridge: the one a capture of a default bridge used
      const { bootstrap } = fresh.config
      const admin = `${bootstrap.compNumber}${bootstrap.adminSuffix}`
      if (!credentials.has(admin)) credentials.set(admin, md5(bootstrap.adminPassword))
    } else {
      const loaded = await Effect.runPromiseExit(loadConfig())
      receivers = loaded._tag === "Success" ? receiversOf(loaded.value) : ["/api/voip.json", "/api/workorder.json", "/api/callback.json"]
    }
    const showBar = values.progress || io.tty
    const { results } = await replay(entries, {
      to: fresh?.url ?? values.to!,
      speed: speed as number,
      rate: rate as number | undefined,
      concurrency: concurrency as number,
      matcher: makeMatcher({ ignore: (values.ignore ?? []).flatMap(list), only: (values.only ?? []).flatMap(list), defaults: !values["no-default-ignores"] }),
      validate: values.validate === true,
      credentials,
      adminToken: values["admin-token"] ?? fresh?.adminToken,
      receivers,
      signal: interrupted.signal,
      onProgress: showBar
        ? (done, total, t) => {
            const width = 30
            const filled = Math.round((done / Math.max(total, 1)) * width)
            io.err(`\r[${"#".repeat(filled)}${".".repeat(width - filled)}] ${done}/${total} ${t.different} different ${t.errors} failed`)
            if (done === total) io.err("\n")
          }
        : undefined
    })
    const report = makeReport(results, bad, filtered)
    if (values.report) fs.writeFileSync(values.report, JSON.stringify(report, null, 2))
    if (values["har-out"]) fs.writeFileSync(values["har-out"], JSON.stringify(toHar(results), null, 2))
    const text = reportText(values.quiet ? { ...report, requests: [] } : report)
    io.out(text)
    if (interrupted.signal.aborted) {
      io.err(`replay: interrupted after ${results.length} of ${entries.length} requests`)
      return 130
    }
    return report.exitCode
  } finally {
    process.off("SIGINT", onInterrupt)
    await fresh?.close(!interrupted.signal.aborted)
  }
}

const md5 = (s: string) => crypto.createHash("md5").update(s).digest("hex")
