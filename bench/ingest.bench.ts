/**
 * Durable ingest of POST /api/voip.json (distinct cdrIds, memo ~300 bytes, 32 connections,
 * synchronous=FULL) against a bare express endpoint that parses the same body, in the same
 * run; each server runs in its own process and gets the same warm-up run first, and the two
 * are measured in alternating rounds (the median round's ratio is the figure).
 *
 *   1. ingest: the bridge with no target — acknowledged means committed to disk;
 *   2. ingest while forwarding (the issue's figure): the same with one target attached, every
 *      event delivered to a local receiver (a separate process) — held while the burst of
 *      pushes arrives (at the default BENCH_DURATION_S of 5 a round is shorter than the 10 s a
 *      burst may hold them; `npm run bench -- ingest-steady` measures past that) — measured in
 *      the same alternating rounds;
 *   3. delivery: how fast each round's backlog reaches the receiver once ingest stops;
 *   4. the bridge's peak resident memory under load.
 *
 * BENCH_BASE_DIST=<bundle> (a build of an earlier commit, e.g. dist-old/main.mjs) measures that
 * bundle's ingest with no target in the same alternating rounds: where a change lost or won.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import autocannon from "autocannon"
// @ts-expect-error -- a plain ES module of the build, without type declarations
import { buildDist } from "../scripts/build.mjs"
// @ts-expect-error -- a plain ES module of the scripts, without type declarations
import { BRIDGE_NODE_ARGS } from "../scripts/node-args.mjs"
import { cpuMs, freePortFor, rssMiB, startChild, type Child } from "./support/child.js"

const CONNECTIONS = 32
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 5)
const ROUNDS = 3

const memo = (cdrId: number) =>
  JSON.stringify({
    cdrId,
    cdrExtension: "100008800",
    cdrCalledName: "客户",
    cdrExtensionIp: "192.168.1.20",
    cdrStartTime: "2026-11-24 10:00:00",
    cdrHangupTime: "2026-11-24 10:03:12",
    cdrTalktime: 180,
    cdrPeer: 1,
    exteName: "管理员",
    cdrPhoneNum: "13800138000",
    cdrHangupReasonText: "正常挂机",
    cdrTrunkRoute: "trunk-1",
    cdrRecordFile: `202611/24/${cdrId}.wav`,
    paramvalue: "a=b&c=d"
  })

/** `answered`: called at every answer (the steady bench counts a window of the run by it) */
export const load = (port: number, firstId: number, durationS = DURATION_S, answered?: () => void) => {
  let next = firstId
  return autocannon({
    url: `http://127.0.0.1:${port}`,
    connections: CONNECTIONS,
    duration: durationS,
    requests: [
      {
        method: "POST",
        path: "/api/voip.json",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        setupRequest: (req) => {
          const id = next++
          return { ...req, body: new URLSearchParams({ type: "3", peer: "1", phone: "13800138000", memo: memo(id) }).toString() }
        },
        ...(answered ? { onResponse: answered } : {})
      }
    ]
  })
}

/** `script`: another bundle (a build of the base, for an A/B run), as it is; the default is built first. */
export const startBridge = async (
  targets: ReadonlyArray<Record<string, unknown>>,
  config: Record<string, unknown> = {},
  options: { readonly nodeArgs?: ReadonlyArray<string>; readonly script?: string } = {}
) => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "vb-bench-"))
  const configFile = path.join(dataDir, "bridge.json")
  fs.writeFileSync(configFile, JSON.stringify({ ...config, targets }))
  const port = await freePortFor()
  // what `npm start` runs: the bundle, built from the sources as they are now
  const script = options.script ?? "dist/main.mjs"
  if (options.script === undefined) await buildDist()
  const child = await startChild(
    script,
    [],
    { BRIDGE_DATA_DIR: dataDir, BRIDGE_CONFIG: configFile, BRIDGE_PORT: String(port), BRIDGE_HOST: "127.0.0.1", LOG_LEVEL: "info" },
    /voip-bridge listening/,
    port,
    [...BRIDGE_NODE_ARGS, ...(options.nodeArgs ?? [])]
  )
  await new Promise((r) => setTimeout(r, 1000))
  return {
    child,
    dataDir,
    stop: async () => {
      await child.stop()
      fs.rmSync(dataDir, { recursive: true, force: true })
    }
  }
}

const peakRss = (child: Child) => {
  let peak = 0
  const timer = setInterval(() => (peak = Math.max(peak, rssMiB(child.process.pid!))), 200)
  return () => {
    clearInterval(timer)
    return peak
  }
}

export const line = (name: string, r: autocannon.Result & { cpuUs?: number }) =>
  `  ${name.padEnd(30)}: ${r.requests.average.toFixed(0).padStart(6)} req/s, p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms, non-2xx ${r.non2xx}, errors ${r.errors}` +
  (r.cpuUs === undefined ? "" : `, CPU ${r.cpuUs.toFixed(0)} µs per request`)

/** `load`, with the server's CPU time per request answered: steadier than its rate when the machine is shared. */
const loadCounted = async (child: Child, firstId: number) => {
  const before = cpuMs(child.process.pid!)
  const r = await load(child.port, firstId)
  return Object.assign(r, { cpuUs: ((cpuMs(child.process.pid!) - before) * 1000) / Math.max(1, r.requests.total) })
}

export const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

export const run = async () => {
  // express, the bridge alone and the bridge forwarding every event side by side, each warmed up
  // alike, then measured in alternating rounds: the machine's noise drifts over minutes, so each
  // round's ratios compare runs a few seconds apart, and the median round is the figure. The
  // forwarding bridge's backlog is delivered before the next round starts (and timed).
  const baseline = await startChild("bench/support/noop-server.mjs", [], {}, /listening (\d+)/)
  const alone = await startBridge([])
  const baseDist = process.env.BENCH_BASE_DIST
  const earlier = baseDist === undefined ? undefined : await startBridge([], {}, { script: baseDist })
  const sink = await startChild("bench/support/sink-server.ts", [], {}, /listening (\d+)/)
  const delivered = async () => Number(await (await fetch(`http://127.0.0.1:${sink.port}/count`)).text())
  const forwarding = await startBridge([{ name: "sink", url: `http://127.0.0.1:${sink.port}/hook`, events: ["call.*"], concurrency: 16 }])
  /** Until the receiver has `count` events (or two minutes passed); answers the seconds it took. */
  const drained = async (count: number) => {
    const started = Date.now()
    while ((await delivered()) < count && Date.now() - started < 120_000) await new Promise((r) => setTimeout(r, 50))
    return (Date.now() - started) / 1000
  }
  const acked = (r: autocannon.Result) => r.requests.total - r.non2xx - r.errors
  await load(baseline.port, 1)
  await load(alone.child.port, 100_000_000)
  if (earlier) await load(earlier.child.port, 100_000_000)
  const warmed = await load(forwarding.child.port, 200_000_000)
  let expected = acked(warmed)
  await drained(expected)
  const rounds: Array<{ base: autocannon.Result; ours: autocannon.Result; then?: autocannon.Result; fwd: autocannon.Result; atStop: number; drain: number; drainSeconds: number; wholeUs: number; sinkUs: number }> = []
  const stopAloneRss = peakRss(alone.child)
  const stopRss = peakRss(forwarding.child)
  for (let i = 0; i < ROUNDS; i++) {
    const base = await loadCounted(baseline, 1)
    const ours = await loadCounted(alone.child, 1_000_000 * (i + 1))
    const then = earlier ? await loadCounted(earlier.child, 1_000_000 * (i + 1)) : undefined
    const before = await delivered()
    // what each event costs over the burst and its drain: the bridge's CPU and the receiver's
    const cpuBefore = cpuMs(forwarding.child.process.pid!)
    const sinkBefore = cpuMs(sink.process.pid!)
    const fwd = await loadCounted(forwarding.child, 300_000_000 + 1_000_000 * (i + 1))
    const atStop = (await delivered()) - before
    expected += acked(fwd)
    const drainSeconds = await drained(expected)
    const perEvent = (ms: number) => (ms * 1000) / Math.max(1, acked(fwd))
    const wholeUs = perEvent(cpuMs(forwarding.child.process.pid!) - cpuBefore)
    const sinkUs = perEvent(cpuMs(sink.process.pid!) - sinkBefore)
    rounds.push({ base, ours, ...(then ? { then } : {}), fwd, atStop, drain: acked(fwd) - atStop, drainSeconds, wholeUs, sinkUs })
  }
  const aloneRss = stopAloneRss()
  const forwardingRss = stopRss()
  const total = await delivered()
  await alone.stop()
  await earlier?.stop()
  await forwarding.stop()
  await sink.stop()
  await baseline.stop()
  const ratios = rounds.map((r) => r.ours.requests.average / r.base.requests.average)
  const fwdRatios = rounds.map((r) => r.fwd.requests.average / r.base.requests.average)
  const middle = rounds[ratios.indexOf(median(ratios))]!
  const fwdMiddle = rounds[fwdRatios.indexOf(median(fwdRatios))]!
  const drainRates = rounds.map((r) => r.drain / r.drainSeconds)

  return [
    `ingest /api/voip.json (synchronous=FULL, ${CONNECTIONS} connections, ${DURATION_S}s a run, memo ${memo(1).length} bytes)`,
    ...rounds.flatMap((r, i) => [
      line(`round ${i + 1}: bare express no-op`, r.base),
      line(`round ${i + 1}: voip-bridge`, r.ours),
      ...(r.then ? [line(`round ${i + 1}: ${baseDist}`, r.then)] : []),
      line(`round ${i + 1}: voip-bridge, forwarding`, r.fwd)
    ]),
    `  ratio bridge/express per round: ${ratios.map((r) => r.toFixed(2)).join(", ")} -> median ${median(ratios).toFixed(2)} durable ingest, no target`,
    `  median round: bridge p99 ${middle.ours.latency.p99} ms against express p99 ${middle.base.latency.p99} ms`,
    ...(earlier ? [`  ratio ${baseDist}/express per round: ${rounds.map((r) => (r.then!.requests.average / r.base.requests.average).toFixed(2)).join(", ")}`] : []),
    `  ratio with one target attached, its deliveries held during the round (issue 17's figure): ${fwdRatios.map((r) => r.toFixed(2)).join(", ")} -> median ${median(fwdRatios).toFixed(2)}`,
    `  median round: forwarding bridge p99 ${fwdMiddle.fwd.latency.p99} ms against express p99 ${fwdMiddle.base.latency.p99} ms`,
    `delivery to a local receiver (concurrency 16), per round: ${rounds.map((r) => `${r.atStop} while ingesting, ${r.drain} after in ${r.drainSeconds.toFixed(1)} s`).join("; ")}`,
    `  drain after the burst: ${drainRates.map((r) => r.toFixed(0)).join(", ")} events/s; ${total >= expected ? "every acknowledged push delivered" : `${expected - total} NOT delivered`}`,
    `  CPU per event over the burst and its drain, per round: ${rounds.map((r) => `bridge ${r.wholeUs.toFixed(0)} µs + receiver ${r.sinkUs.toFixed(0)} µs`).join("; ")}`,
    `bridge peak RSS under load: ${aloneRss} MiB ingesting, ${forwardingRss} MiB ingesting and forwarding`
  ]
}
