/**
 * `npm run bench -- quick` (under a minute): the regression guard every change can afford.
 * Start-up (spawn → /readyz 200) and idle RSS of the bridge as `npm start` runs it, against a
 * bare express server started the same way; then three alternating 3-second rounds of durable
 * ingest against that same express endpoint (the median round is the figure).
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
// @ts-expect-error -- a plain ES module of the build, without type declarations
import { buildDist } from "../scripts/build.mjs"
// @ts-expect-error -- a plain ES module of the scripts, without type declarations
import { BRIDGE_NODE_ARGS } from "../scripts/node-args.mjs"
import { load, median, startBridge } from "./ingest.bench.js"
import { freePortFor, root, rssMiB, startChild } from "./support/child.js"

const STARTS = 3
/** how long the last start is left idle before its settled RSS is read */
const SETTLE_MS = 20_000
/** MiB → MB (the unit) */
const mb = (mib: number) => ((mib * 1024 * 1024) / 1e6).toFixed(0)

/**
 * Spawn → the URL answers 200, then the resident memory a second later (and, with `settleMs`,
 * again that long after ready: V8's memory reducer gives back what start-up left behind once the
 * process has been idle for a while, ~10 s).
 */
const startUp = async (args: ReadonlyArray<string>, env: Record<string, string>, readyPath: string, port?: number, settleMs = 0) => {
  const started = performance.now()
  const child = spawn(process.execPath, [...args], { cwd: root, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] })
  let out = ""
  child.stdout.on("data", (c: Buffer) => (out += c.toString()))
  child.stderr.on("data", (c: Buffer) => (out += c.toString()))
  let listening = port
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${args.join(" ")} exited:\n${out}`)
    listening ??= Number(/listening (\d+)/.exec(out)?.[1]) || undefined
    if (listening !== undefined) {
      const ok = await fetch(`http://127.0.0.1:${listening}${readyPath}`).then((r) => r.status === 200, () => false)
      if (ok) break
    }
    await new Promise((r) => setTimeout(r, 5))
  }
  const ms = performance.now() - started
  await new Promise((r) => setTimeout(r, 1000))
  const rss = rssMiB(child.pid!)
  if (settleMs > 1000) await new Promise((r) => setTimeout(r, settleMs - 1000))
  const settled = rssMiB(child.pid!)
  await new Promise<void>((done) => {
    child.once("exit", () => done())
    child.kill("SIGTERM")
  })
  return { ms, rss, settled }
}

export const run = async () => {
  await buildDist()
  const bridge: Array<{ ms: number; rss: number; settled: number }> = []
  const express: Array<{ ms: number; rss: number; settled: number }> = []
  for (let i = 0; i < STARTS; i++) {
    express.push(await startUp(["bench/support/noop-server.mjs"], {}, "/api/voip.json"))
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "vb-quick-"))
    const port = await freePortFor()
    // the last start is left idle for a while: its settled RSS is the idle figure
    const settleMs = i === STARTS - 1 ? SETTLE_MS : 0
    bridge.push(await startUp([...BRIDGE_NODE_ARGS, "dist/main.mjs"], { BRIDGE_DATA_DIR: dataDir, BRIDGE_PORT: String(port), BRIDGE_HOST: "127.0.0.1", LOG_LEVEL: "error" }, "/readyz", port, settleMs))
    fs.rmSync(dataDir, { recursive: true, force: true })
  }
  const readyMs = median(bridge.map((b) => b.ms))
  const idle = median(bridge.map((b) => b.rss))

  const baseline = await startChild("bench/support/noop-server.mjs", [], {}, /listening (\d+)/)
  const ours = await startBridge([])
  await load(baseline.port, 1, 2)
  await load(ours.child.port, 500_000_000, 2)
  const ratios: Array<number> = []
  for (let i = 0; i < 3; i++) {
    const base = await load(baseline.port, 1, 3)
    const mine = await load(ours.child.port, 600_000_000 + i * 10_000_000, 3)
    ratios.push(mine.requests.average / base.requests.average)
  }
  await ours.stop()
  await baseline.stop()
  return [
    `start-up (spawn → ready), median of ${STARTS}: bridge ${readyMs.toFixed(0)} ms (target ≤ 1500), bare express ${median(express.map((e) => e.ms)).toFixed(0)} ms`,
    `RSS 1 s after ready (median of ${STARTS}): bridge ${idle} MiB = ${mb(idle)} MB, bare express ${median(express.map((e) => e.rss))} MiB`,
    `idle RSS ${SETTLE_MS / 1000} s after ready: bridge ${bridge[STARTS - 1]!.settled} MiB = ${mb(bridge[STARTS - 1]!.settled)} MB (target ≤ 120 MB)`,
    `durable ingest, 3 alternating rounds of 3 s: ${ratios.map((r) => r.toFixed(2)).join(", ")} -> median ${median(ratios).toFixed(2)} of bare express (target ≥ 0.8; the full bench: npm run bench -- ingest)`
  ]
}
