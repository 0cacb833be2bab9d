/**
 * The command line: `serve` (default), `migrate`, `user add|passwd`. `npm start -- <command>`.
 * Commands print for people on stdout/stderr; the server logs JSON lines.
 */
import * as net from "node:net"
import { parseArgs } from "node:util"
import { SqlClient } from "@effect/sql"
import { Effect, ManagedRuntime, Option } from "effect"
import { appLayer } from "./App.js"
import type { AppServices } from "./AppServices.js"
import { generatePassword, Passwords } from "./auth/Passwords.js"
import { type AppConfigShape, loadConfig } from "./config/AppConfig.js"
import { EXTE_STATUS, ExtensionsRepo } from "./extensions/ExtensionsRepo.js"
import { DeadLetters } from "./forwarding/DeadLetters.js"
import { startServer } from "./http/Server.js"
import { usePrivateUmask } from "./db/DataDir.js"
import type { SimulatorStats } from "./box/Simulator.js"
import { normalizeMac } from "./shared/Mac.js"

const HELP: Record<string, string> = {
  main: `voip-bridge — a self-hosted bridge for the 800ing call-centre platform

usage: npm start -- [command] [options]

commands:
  serve              serve the API (default)
  migrate            apply database migrations and exit
  user add|passwd    manage extensions from the shell
  dlq list|redrive|purge   list, redrive or delete dead letters
  box-sim            simulate a recording box against a running bridge
  replay             replay captured requests (JSONL, HAR, curl) and diff the answers

Each command takes --help. Configuration: config/bridge.json (or the file BRIDGE_CONFIG
names; see config/bridge.example.json), then the environment:
  BRIDGE_CONFIG               the config file
  BRIDGE_PORT, BRIDGE_HOST    where to listen (8080, 0.0.0.0)
  BRIDGE_DATA_DIR             the SQLite file, recordings, the admin token (./data)
  BRIDGE_ADMIN_TOKEN          the admin API's bearer token, at least 16 characters
                              (else one is generated into <data dir>/admin-token)
  BRIDGE_TZ                   zone of the contract's local times (Asia/Shanghai)
  LOG_LEVEL                   trace, debug, info, warning, error, fatal, none (info)
  BRIDGE_BOOTSTRAP            create the test enterprise on first start (true)
  BRIDGE_DB_SYNCHRONOUS       FULL (an answer survives power loss) or NORMAL
  BRIDGE_DB_BUSY_TIMEOUT_MS   how long a write waits for another process's lock (5000)
  BRIDGE_CAPTURE              capture every request as JSON lines into this file
`,
  serve: `usage: npm start -- serve [--port N] [--host H] [--data-dir DIR]

Serves every surface on one port (default 8080). SIGTERM or SIGINT: stop accepting,
finish in-flight requests, close the database.
`,
  migrate: `usage: npm start -- migrate [--data-dir DIR]

Applies pending migrations to the database under the data directory and exits.
`,
  dlq: `usage:
  npm start -- dlq list    [--target T] [--type TYPE] [--since TIME] [--until TIME] [--ids 1,2]
  npm start -- dlq redrive [--target T] [--type TYPE] [--since TIME] [--until TIME] [--ids 1,2]
  npm start -- dlq purge   [--target T] [--type TYPE] [--since TIME] [--until TIME] [--ids 1,2]

list prints one dead letter a line (id, target, event type, reason, last error); redrive
puts every dead letter the filters match back in the queue (same webhook-id); purge deletes
them with their attempts, and needs at least one filter (--since 0 names them all). Both
show a progress bar on stderr. TIME is ISO 8601 or Unix ms, matched against the event's time;
TYPE may be a glob (call.*). A running bridge sends redriven deliveries within a second, but a
target whose circuit is open waits out its cool-down (forwarding.circuitCooldownMs): the admin
API's redrive (POST /admin/api/dead-letters/redrive, or the admin page) probes it at once.
`,
  "box-sim": `usage: npm start -- box-sim --mac MAC --to URL [options]

Simulates an 800ing recording box (§2.1.10) against a running bridge: it POSTs heartbeats
(cmd=channelstatus) with its channels' states, polls cmd=getCallList once a second for each
idle channel, "dials" what it is handed (sendTelCall) and uploads every call's CDR with a
generated WAV recording (cmd=upload). A progress line goes to stderr; the totals to stdout.

  --mac MAC           the box's MAC (register it first: config "devices" or POST /admin/api/devices)
  --to URL            the bridge, e.g. http://127.0.0.1:8080
  --channels N        RJ11 channels (default 2)
  --calls N           incoming calls to generate and upload (default 0)
  --rate R            generated calls per second (default 1)
  --dials N           stop once N handed-out dials are made and uploaded
  --duration S        stop after S seconds (default: when --calls and --dials are done;
                      without either, run until Ctrl-C)
  --heartbeat S       seconds between heartbeats (default 5)
  --talk S            seconds each simulated call talks (default 2)

Exit status 0 when every upload was acknowledged, 1 when any request failed.
`,
  user: `usage:
  npm start -- user add <extension> [--password P] [--name NAME] [--admin]
  npm start -- user passwd <extension> [--password P]

<extension> is the enterprise number (6 digits) followed by the suffix (400–899), e.g.
100008801. The enterprise is created when missing. Without --password a password is
generated and printed.
`
}

const out = (text: string) => process.stdout.write(text.endsWith("\n") ? text : `${text}\n`)
const fail = (text: string, code = 2): never => {
  process.stderr.write(`${text}\n`)
  process.exit(code)
}

const configFrom = async (overrides: Record<string, unknown>): Promise<AppConfigShape> => {
  const exit = await Effect.runPromiseExit(loadConfig({ overrides }))
  if (exit._tag === "Failure") {
    const e = exit.cause._tag === "Fail" ? exit.cause.error.message : String(exit.cause)
    return fail(`voip-bridge: ${e}`)
  }
  return exit.value
}

/** A port another process holds is said before anything is written (data directory, admin token). */
const portFree = (host: string, port: number) =>
  new Promise<string | undefined>((resolve) => {
    if (port === 0) return resolve(undefined)
    const probe = net.createServer()
    probe.once("error", (e: NodeJS.ErrnoException) =>
      resolve(
        e.code === "EADDRINUSE"
          ? `port ${port} on ${host} is in use by another process: stop it, or choose another port with --port or BRIDGE_PORT`
          : `cannot listen on ${host}:${port} (${e.code ?? e.message}): check --host/BRIDGE_HOST and --port/BRIDGE_PORT`
      )
    )
    probe.listen(port, host, () => probe.close(() => resolve(undefined)))
  })

const serve = async (overrides: Record<string, unknown>) => {
  const config = await configFrom(overrides)
  const busy = await portFree(config.host, config.port)
  if (busy) return fail(`voip-bridge: ${busy}`, 1)
  const server = await startServer(config).catch((e: unknown) => fail(`voip-bridge: could not start: ${e instanceof Error ? e.message : String(e)}`, 1))
  await server.runtime.runPromise(
    Effect.logInfo("voip-bridge listening").pipe(Effect.annotateLogs({ url: server.url, admin: `${server.url}/admin`, dataDir: config.dataDir }))
  )
  const stop = (signal: string) => {
    server.runtime
      .runPromise(Effect.logInfo("shutting down").pipe(Effect.annotateLogs({ signal })))
      .finally(() => server.close().then(() => process.exit(0)))
  }
  process.once("SIGTERM", () => stop("SIGTERM"))
  process.once("SIGINT", () => stop("SIGINT"))
}

const withRuntime = async <A>(overrides: Record<string, unknown>, program: Effect.Effect<A, unknown, AppServices>) => {
  const config = await configFrom(overrides)
  const runtime = ManagedRuntime.make(appLayer(config, { background: false }))
  try {
    return await runtime.runPromise(program)
  } finally {
    await runtime.dispose()
  }
}

const userCommand = async (args: ReadonlyArray<string>, overrides: Record<string, unknown>) => {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    options: {
      password: { type: "string" },
      name: { type: "string" },
      admin: { type: "boolean" },
      help: { type: "boolean" },
      // shared options, read by main
      port: { type: "string" },
      host: { type: "string" },
      "data-dir": { type: "string" }
    }
  })
  const [action, extension] = positionals
  if (values.help || !action) return out(HELP.user!)
  if (!extension || !/^\d{6}[4-8]\d\d$/.test(extension)) return fail("user: <extension> must be 6 enterprise digits and a suffix from 400 to 899, e.g. 100008801")
  const comp = extension.slice(0, 6)
  const suffix = Number(extension.slice(6))
  const password = values.password ?? generatePassword()
  const program = Effect.gen(function* () {
    const repo = yield* ExtensionsRepo
    const passwords = yield* Passwords
    const sql = yield* SqlClient.SqlClient
    const password_hash = yield* passwords.hashPlain(password)
    const existing = yield* repo.findByExtension(extension)
    if (action === "add") {
      if (Option.isSome(existing)) return `user add: extension ${extension} already exists`
      yield* sql.withTransaction(
        Effect.zipRight(
          repo.ensureEnterprise(comp, comp),
          repo.insert(comp, suffix, { password_hash, name: values.name ?? extension, status: values.admin ? EXTE_STATUS.admin : EXTE_STATUS.agent })
        )
      )
      return undefined
    }
    if (action === "passwd") {
      if (Option.isNone(existing)) return `user passwd: extension ${extension} does not exist`
      yield* repo.update(comp, existing.value.exte_id, { password_hash })
      return undefined
    }
    return `user: unknown action ${action} (add or passwd)`
  })
  const problem = await withRuntime(overrides, program)
  if (problem) return fail(problem, 1)
  out(`${extension} ${values.password ? "saved" : `password: ${password}`}`)
}

const timeArg = (name: string, v: string | undefined) => {
  if (v === undefined) return undefined
  const ms = /^\d+$/.test(v) ? Number(v) : Date.parse(v)
  return Number.isNaN(ms) ? fail(`dlq: --${name} expects ISO 8601 or Unix ms, got ${v}`) : ms
}

const dlqCommand = async (args: ReadonlyArray<string>, overrides: Record<string, unknown>) => {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    options: {
      target: { type: "string" },
      type: { type: "string" },
      since: { type: "string" },
      until: { type: "string" },
      ids: { type: "string" },
      help: { type: "boolean" },
      port: { type: "string" },
      host: { type: "string" },
      "data-dir": { type: "string" }
    }
  })
  const [action] = positionals
  if (values.help || (action !== "list" && action !== "redrive" && action !== "purge")) return out(HELP.dlq!)
  const ids = values.ids?.split(",").filter(Boolean).map(Number)
  if (ids?.some((n) => !Number.isSafeInteger(n))) return fail("dlq: --ids expects numbers separated by commas")
  const filter = { target: values.target, type: values.type, ids, since: timeArg("since", values.since), until: timeArg("until", values.until) }
  if (action === "purge" && Object.values(filter).every((v) => v === undefined))
    return fail("dlq purge: name what to delete (--target, --type, --ids, --since/--until); --since 0 deletes every dead letter")
  const program = Effect.gen(function* () {
    const dead = yield* DeadLetters
    if (action === "list") {
      // page by id so that any number of dead letters is listed without holding them all
      let count = 0
      let before: number | undefined
      for (;;) {
        const items = yield* dead.list("dead", filter, 1000, before)
        for (const i of items) out(`${i.id}\t${i.target}\t${i.event.type}\t${i.reason ?? ""}\t${i.lastError ?? ""}`)
        count += items.length
        if (items.length < 1000) return `${count} dead letter(s)`
        before = items[items.length - 1]!.id
      }
    }
    const bar = (done: number, total: number) => {
      const width = 30
      const filled = Math.round((done / Math.max(total, 1)) * width)
      process.stderr.write(`\r[${"#".repeat(filled)}${".".repeat(width - filled)}] ${done}/${total}`)
    }
    if (action === "purge") {
      const n = yield* dead.purge(filter, bar)
      process.stderr.write("\n")
      return `${n} dead letter(s) deleted`
    }
    const r = yield* dead.redrive(filter, bar)
    process.stderr.write("\n")
    return (
      `${r.redriven} dead letter(s) redriven` +
      (r.skipped > 0 ? `; ${r.skipped} left: their targets no longer exist` : "") +
      (r.redriven > 0 ? "\na running bridge sends them within a second; a target whose circuit is open waits out its cool-down (the admin API's redrive probes it at once)" : "")
    )
  })
  out(await withRuntime({ ...overrides, logLevel: "error" }, program))
}

const positive = (name: string, v: string | undefined, fallback: number, integer = true) => {
  if (v === undefined) return fallback
  const n = Number(v)
  return Number.isFinite(n) && n >= 0 && (!integer || Number.isInteger(n)) ? n : fail(`box-sim: --${name} expects a ${integer ? "whole " : ""}number, got ${v}`)
}

const boxSimCommand = async (args: ReadonlyArray<string>) => {
  const { values } = parseArgs({
    args: [...args],
    options: {
      mac: { type: "string" },
      to: { type: "string" },
      channels: { type: "string" },
      calls: { type: "string" },
      rate: { type: "string" },
      dials: { type: "string" },
      duration: { type: "string" },
      heartbeat: { type: "string" },
      talk: { type: "string" },
      help: { type: "boolean" }
    }
  })
  if (values.help) return out(HELP["box-sim"]!)
  if (!values.mac || normalizeMac(values.mac) === undefined) return fail(`box-sim: --mac expects a MAC address such as 00:1A:2B:3C:4D:5E\n\n${HELP["box-sim"]}`)
  if (!values.to || !/^https?:\/\/[^/]+/.test(values.to)) return fail(`box-sim: --to expects the bridge's URL, e.g. http://127.0.0.1:8080\n\n${HELP["box-sim"]}`)
  const channels = positive("channels", values.channels, 2)
  if (channels < 1 || channels > 64) return fail("box-sim: --channels expects 1 to 64")
  const rate = positive("rate", values.rate, 1, false)
  if (rate <= 0) return fail("box-sim: --rate expects a number above 0")
  const options = {
    mac: values.mac,
    to: values.to,
    channels,
    calls: positive("calls", values.calls, 0),
    rate,
    dials: values.dials === undefined ? undefined : positive("dials", values.dials, 0),
    durationMs: values.duration === undefined ? undefined : positive("duration", values.duration, 0, false) * 1000,
    heartbeatMs: Math.max(100, positive("heartbeat", values.heartbeat, 5, false) * 1000),
    pollMs: 1000,
    talkMs: positive("talk", values.talk, 2, false) * 1000
  }
  const interrupted = new AbortController()
  process.once("SIGINT", () => interrupted.abort())
  process.once("SIGTERM", () => interrupted.abort())
  const line = (s: SimulatorStats) =>
    `box-sim ${options.mac}: ${s.heartbeats} heartbeats, ${s.polls} polls, ${s.dials} dials, ${s.uploads} uploads` +
    (options.calls > 0 ? ` (${s.callsStarted}/${options.calls} calls)` : "") +
    `, ${s.errors} errors${s.lastError ? ` (last: ${s.lastError})` : ""}`
  const tty = process.stderr.isTTY
  // the simulator and replay are loaded by their own commands only: a serving bridge never holds them
  const { runSimulator } = await import("./box/Simulator.js")
  const stats = await runSimulator(options, (s) => process.stderr.write(tty ? `\r${line(s)}` : ""), interrupted.signal)
  if (tty) process.stderr.write("\n")
  out(line(stats))
  process.exitCode = stats.errors > 0 ? 1 : 0
}

const main = async () => {
  // before anything is written: the database, tokens and recordings are private to this user
  usePrivateUmask()
  const argv = process.argv.slice(2)
  const command = argv[0] && !argv[0].startsWith("-") ? argv[0] : "serve"
  const rest = argv[0] === command ? argv.slice(1) : argv
  const commonOptions = { port: { type: "string" }, host: { type: "string" }, "data-dir": { type: "string" }, help: { type: "boolean" } } as const
  const common = parseArgs({ args: rest, allowPositionals: true, strict: false, options: commonOptions }).values
  // serve and migrate take the common options only: a misspelt one (--prot) is refused, not ignored
  if (command === "serve" || command === "migrate") {
    try {
      parseArgs({ args: rest, allowPositionals: false, strict: true, options: commonOptions })
    } catch (e) {
      return fail(`voip-bridge ${command}: ${e instanceof Error ? e.message.split("\n")[0] : String(e)}; the options are --port, --host, --data-dir, --help`)
    }
  }
  const overrides: Record<string, unknown> = {}
  if (typeof common.port === "string") overrides.port = /^\d+$/.test(common.port) ? Number(common.port) : common.port
  if (typeof common.host === "string") overrides.host = common.host
  if (typeof common["data-dir"] === "string") overrides.dataDir = common["data-dir"]

  if (command === "help" || (common.help && command === "serve" && argv[0] !== "serve")) return out(HELP.main!)
  switch (command) {
    case "serve":
      if (common.help) return out(HELP.serve!)
      return serve(overrides)
    case "migrate": {
      if (common.help) return out(HELP.migrate!)
      const config = await configFrom(overrides)
      const runtime = ManagedRuntime.make(appLayer(config, { background: false }))
      await runtime.runtime()
      await runtime.dispose()
      return out(`migrations applied: ${config.dataDir}`)
    }
    case "user":
      return userCommand(rest, overrides)
    case "dlq":
      return dlqCommand(rest, overrides)
    case "box-sim":
      return boxSimCommand(rest)
    case "replay": {
      const { replayCommand } = await import("./replay/Cli.js")
      const code = await replayCommand(rest, { out, err: (t) => process.stderr.write(t.endsWith("\n") || t.startsWith("\r") ? t : `${t}\n`), tty: process.stderr.isTTY === true })
      process.exitCode = code
      return
    }
    default:
      return fail(`voip-bridge: unknown command ${command}\n\n${HELP.main}`)
  }
}

main().catch((e: unknown) => {
  // a command's own options refused by parseArgs: said in one line, with the command's help
  const code = (e as { code?: unknown } | null)?.code
  if (typeof code === "string" && code.startsWith("ERR_PARSE_ARGS")) return fail(`voip-bridge: ${(e as Error).message.split("\n")[0]} (see --help)`)
  return fail(`voip-bridge: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`, 1)
})
