/**
 * Forwarding from a backlog (issue 17 items 3 and 4). The bridge runs as `npm start` runs it,
 * with one target whose receiver is down; the backlog is written straight into its SQLite file
 * through the same schema (INSERT … SELECT: HTTP would take longer than the drain), then the
 * receiver (bench/support/sink-server.ts, its own process) comes up and the drain is timed at
 * the receiver, from its first delivery to its last.
 *
 * - `forward` (BENCH_FORWARD_N, default 50k): deliveries/s against the same receiver hammered
 *   directly by autocannon with the target's concurrency, before and after the drain (ratio).
 * - `outage` (BENCH_OUTAGE_N, default 1M): the bridge's RSS while the backlog grows and while
 *   it drains, the time of one claim at 1k pending against at N pending, whether each call's
 *   deliveries arrive in order, the drain rate, and the disk the backlog takes (database + WAL).
 *
 * BENCH_CPU_PROF=<dir> runs the bridge under `node --cpu-prof` (the profile is written at exit).
 * BENCH_FORWARD_CONCURRENCY sets the target's concurrency (default 16; 32 is no faster here:
 * the drain is bound by the one thread's work per delivery, not by waiting on the receiver).
 * BENCH_BASE_DIST=<bundle> (e.g. a build of the base copied to dist-base/main.mjs) runs `forward`
 * for it and for the sources as they are now in alternating rounds (BENCH_ROUNDS, default 3):
 * the machine is shared, so only figures of the same run compare.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import autocannon from "autocannon"
import Database from "better-sqlite3"
import { claimIn } from "../src/forwarding/Claims.js"
import { median, startBridge } from "./ingest.bench.js"
import { cpuMs, freePortFor, rssMiB, startChild } from "./support/child.js"
import { percentile } from "./support/measure.js"

const CONCURRENCY = Number(process.env.BENCH_FORWARD_CONCURRENCY ?? 16)
const TARGET = "sink"
/** calls open at once in the backlog, and events per call: each call's events are interleaved with 999 others' */
const CALLS_AT_ONCE = 1000
const EVENTS_PER_CALL = 5
const CHUNK = 20_000

const memo = JSON.stringify({
  cdrExtension: "100008800",
  cdrCalledName: "客户",
  cdrExtensionIp: "192.168.1.20",
  cdrStartTime: "2026-11-24 10:00:00",
  cdrHangupTime: "2026-11-24 10:03:12",
  cdrTalktime: 180,
  cdrPhoneNum: "13800138000",
  cdrHangupReasonText: "正常挂机",
  cdrTrunkRoute: "trunk-1",
  cdrRecordFile: "202611/24/1.wav"
})

// row i of the backlog (an integer: a JavaScript number is bound as a REAL, and i / n would not truncate): call c<CALL>, its event number SEQ (0 … EVENTS_PER_CALL - 1)
const CALL = `'c' || ((i % ${CALLS_AT_ONCE}) + ${CALLS_AT_ONCE} * (i / ${CALLS_AT_ONCE * EVENTS_PER_CALL}))`
const SEQ = `((i / ${CALLS_AT_ONCE}) % ${EVENTS_PER_CALL})`
const SERIES = `WITH RECURSIVE s(i) AS (SELECT CAST(@from AS INTEGER) UNION ALL SELECT i + 1 FROM s WHERE i < @to)`
const FILL_EVENTS = `${SERIES}
  INSERT INTO events (id, type, occurred_at, enterprise, source, data, raw, dedup_key)
  SELECT @base + i, 'call.hangup', @now, NULL, 'push:voip', json_object('cdrId', ${CALL}, 'seq', ${SEQ}, 'memo', json(@memo)), NULL, NULL FROM s`
const FILL_DELIVERIES = `${SERIES}
  INSERT INTO deliveries (id, event_id, target, status, next_attempt_at, order_key, webhook_id, created_at, updated_at, url)
  SELECT @base + i, @base + i, '${TARGET}', 'pending', @now, ${CALL}, 'msg_' || (@base + i), @now, @now, NULL FROM s`

/** The bridge with its target's receiver down, and a second connection to its database to fill it. */
const setUp = async (checkOrder: boolean, script?: string) => {
  const sinkPort = await freePortFor()
  const profDir = process.env.BENCH_CPU_PROF
  const bridge = await startBridge(
    [{ name: TARGET, url: `http://127.0.0.1:${sinkPort}/hook`, events: ["call.*"], concurrency: CONCURRENCY, retry: { scheduleMs: [0, 1000, 2000, 5000, 10_000, 30_000, 60_000, 120_000, 300_000, 600_000] } }],
    // the receiver is probed every second while it is down: the drain starts within a second of its return
    { forwarding: { circuitCooldownMs: 1000 } },
    { nodeArgs: profDir ? ["--cpu-prof", `--cpu-prof-dir=${path.resolve(profDir)}`] : [], ...(script === undefined ? {} : { script }) }
  )
  const file = path.join(bridge.dataDir, "bridge.db")
  const db = new Database(file, { timeout: 10_000 })
  const statements = new Map<string, Database.Statement>()
  const prepared = (sql: string) => statements.get(sql) ?? statements.set(sql, db.prepare(sql)).get(sql)!
  // ids an hour old: below any the bridge issues meanwhile (ms since 2020 × 1024), in the backlog's order
  const baseId = (Date.now() - Date.UTC(2020, 0, 1) - 3_600_000) * 1024
  let filled = 0
  const fill = (count: number) => {
    for (let end = filled + count; filled < end; ) {
      const n = Math.min(CHUNK, end - filled)
      const now = Date.now()
      db.transaction(() => {
        prepared(FILL_EVENTS).run({ from: filled, to: filled + n - 1, base: baseId, now, memo })
        prepared(FILL_DELIVERIES).run({ from: filled, to: filled + n - 1, base: baseId, now })
      }).immediate()
      filled += n
    }
  }
  const sizeOf = (f: string) => fs.statSync(path.join(bridge.dataDir, f), { throwIfNoEntry: false })?.size ?? 0
  const diskBytes = () => ({ db: sizeOf("bridge.db"), wal: sizeOf("bridge.db-wal") })
  /** one claim of a full batch as the worker makes it, rolled back: its time in ms, p50 and p99 of `rounds` */
  const claimTimes = (rounds = 200) => {
    const samples: Array<number> = []
    for (let i = 0; i < rounds; i++) {
      db.prepare("BEGIN IMMEDIATE").run()
      const t = performance.now()
      const claimed = claimIn(prepared, { name: TARGET, timeoutMs: 10_000 }, CONCURRENCY, Date.now())
      samples.push(performance.now() - t)
      db.prepare("ROLLBACK").run()
      if (claimed.length < CONCURRENCY) throw new Error(`a claim found ${claimed.length} due deliveries`)
    }
    return { p50: percentile(samples, 50), p99: percentile(samples, 99) }
  }
  const startSink = () => startChild("bench/support/sink-server.ts", [], { SINK_PORT: String(sinkPort), SINK_ORDER: checkOrder ? "1" : "0" }, /listening (\d+)/)
  return { bridge, db, fill, diskBytes, claimTimes, startSink, sinkPort }
}

interface SinkStats {
  readonly received: number
  readonly firstAt: number
  readonly lastAt: number
  readonly outOfOrder: number
  readonly repeated: number
  readonly calls: number
}
const statsOf = async (port: number) => (await (await fetch(`http://127.0.0.1:${port}/stats`)).json()) as SinkStats

/** Waits until the receiver has `n` deliveries (or `timeoutMs` passed), sampling the bridge's RSS meanwhile. */
const drained = async (port: number, n: number, pid: number, timeoutMs: number) => {
  const rss: Array<number> = []
  const deadline = Date.now() + timeoutMs
  let stats = await statsOf(port)
  while (stats.received < n && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250))
    rss.push(rssMiB(pid))
    stats = await statsOf(port)
  }
  return { stats, rss }
}

const rate = (s: SinkStats) => (s.received - 1) / ((s.lastAt - s.firstAt) / 1000)

/** The receiver hammered directly: a body like the bridge's, `CONCURRENCY` connections. */
const direct = async (port: number) => {
  const body = JSON.stringify({ id: 1, type: "call.hangup", occurredAt: new Date().toISOString(), enterprise: null, source: "push:voip", data: { cdrId: "c1", seq: 0, memo: JSON.parse(memo) }, raw: null })
  const r = await autocannon({ url: `http://127.0.0.1:${port}/hook`, connections: CONCURRENCY, duration: 5, method: "POST", headers: { "content-type": "application/json" }, body })
  return r.requests.average
}

/** One drain of `n` (by the bundle `script`, or the sources as they are now), then the same receiver hammered directly. */
const forwardOnce = async (n: number, script?: string) => {
  const { bridge, db, fill, startSink } = await setUp(false, script)
  fill(n)
  db.close()
  const pid = bridge.child.process.pid!
  const cpuBefore = cpuMs(pid)
  const sink = await startSink()
  const { stats } = await drained(sink.port, n, pid, 300_000)
  // the bridge's thread work per delivery (with its idle polling, a few ms a second): steadier than the rate on a busy machine
  const cpuUs = ((cpuMs(pid) - cpuBefore) * 1000) / stats.received
  await bridge.stop()
  // the receiver alone, the bridge gone
  const directRate = await direct(sink.port)
  await sink.stop()
  return { stats, rate: rate(stats), directRate, cpuUs }
}

export const runForward = async () => {
  const n = Number(process.env.BENCH_FORWARD_N ?? 50_000)
  // BENCH_BASE_DIST=<a bundle of the base, e.g. dist-base/main.mjs>: it and the sources as they are now, in alternating rounds
  const base = process.env.BENCH_BASE_DIST
  const rounds = Number(process.env.BENCH_ROUNDS ?? (base ? 3 : 1))
  const ours: Array<Awaited<ReturnType<typeof forwardOnce>>> = []
  const theirs: Array<Awaited<ReturnType<typeof forwardOnce>>> = []
  for (let i = 0; i < rounds; i++) {
    if (base) theirs.push(await forwardOnce(n, base))
    ours.push(await forwardOnce(n))
  }
  const lineOf = (name: string, r: Awaited<ReturnType<typeof forwardOnce>>) =>
    `  ${name}: delivered ${r.stats.received} of ${n} in ${((r.stats.lastAt - r.stats.firstAt) / 1000).toFixed(1)} s: ${r.rate.toFixed(0)} deliveries/s; the receiver hammered directly (autocannon, ${CONCURRENCY} connections, 5 s) ${r.directRate.toFixed(0)} req/s -> ratio ${(r.rate / r.directRate).toFixed(2)}; the bridge's CPU ${r.cpuUs.toFixed(0)} µs per delivery`
  return [
    `forwarding a backlog of ${n} events to one target (concurrency ${CONCURRENCY}, a local receiver answering 204), ${rounds} round(s)`,
    ...ours.flatMap((r, i) => [...(theirs[i] ? [lineOf(`round ${i + 1}, base ${base}`, theirs[i])] : []), lineOf(`round ${i + 1}, now`, r)]),
    `  median: ${median(ours.map((r) => r.rate)).toFixed(0)} deliveries/s (target ≥ 5000), ratio to the receiver alone ${median(ours.map((r) => r.rate / r.directRate)).toFixed(2)}, CPU ${median(ours.map((r) => r.cpuUs)).toFixed(0)} µs per delivery` +
      (base ? `; base ${median(theirs.map((r) => r.rate)).toFixed(0)} deliveries/s, ratio ${median(theirs.map((r) => r.rate / r.directRate)).toFixed(2)}, CPU ${median(theirs.map((r) => r.cpuUs)).toFixed(0)} µs per delivery` : "")
  ]
}

export const runOutage = async () => {
  const n = Number(process.env.BENCH_OUTAGE_N ?? 1_000_000)
  const { bridge, db, fill, diskBytes, claimTimes, startSink } = await setUp(true)
  const pid = bridge.child.process.pid!
  const emptyBytes = diskBytes()
  const growing: Array<{ pending: number; rss: number }> = [{ pending: 0, rss: rssMiB(pid) }]
  const small = Math.min(1000, n)
  fill(small)
  const atSmall = claimTimes()
  const fillStarted = Date.now()
  const step = Math.max(CHUNK, Math.ceil(n / 10 / CHUNK) * CHUNK)
  while (growing[growing.length - 1]!.pending < n) {
    const pending = Math.min(n, growing[growing.length - 1]!.pending + step)
    fill(pending - Math.max(small, growing[growing.length - 1]!.pending))
    growing.push({ pending, rss: rssMiB(pid) })
  }
  const fillSeconds = (Date.now() - fillStarted) / 1000
  const atFull = claimTimes()
  const filledBytes = diskBytes()
  db.close()
  const sink = await startSink()
  const { stats, rss } = await drained(sink.port, n, pid, 900_000)
  const drainedBytes = diskBytes()
  await bridge.stop()
  await sink.stop()
  const mib = (b: number) => (b / 1024 / 1024).toFixed(0)
  // the database's growth over the empty one, per million events; the WAL as it stands (SQLite reuses it, it does not shrink)
  const disk = (b: { db: number; wal: number }) => `database +${mib(b.db - emptyBytes.db)} MiB (${mib(((b.db - emptyBytes.db) * 1_000_000) / n)} MiB per million events), WAL ${mib(b.wal)} MiB`
  return [
    `a target down while ${n} events arrive (${CALLS_AT_ONCE} calls at once, ${EVENTS_PER_CALL} events each), then back (concurrency ${CONCURRENCY})`,
    `  backlog written in ${fillSeconds.toFixed(1)} s; bridge RSS while it grows (pending: MiB): ${growing.map((g) => `${g.pending}: ${g.rss}`).join(", ")}`,
    `  one claim of ${CONCURRENCY}: p50 ${atSmall.p50.toFixed(3)} ms (p99 ${atSmall.p99.toFixed(3)}) at ${small} pending, p50 ${atFull.p50.toFixed(3)} ms (p99 ${atFull.p99.toFixed(3)}) at ${n} pending -> ${(atFull.p50 / atSmall.p50).toFixed(2)}× (must be ≤ 2)`,
    `  drained ${stats.received} of ${n} in ${((stats.lastAt - stats.firstAt) / 1000).toFixed(1)} s: ${rate(stats).toFixed(0)} deliveries/s; RSS while draining ${Math.min(...rss)}–${Math.max(...rss)} MiB (first ${rss[0]}, last ${rss[rss.length - 1]})`,
    `  order per call at the receiver: ${stats.calls} calls, ${stats.outOfOrder} deliveries out of order, ${stats.repeated} repeated`,
    `  disk with the backlog: ${disk(filledBytes)}; after the drain (attempts, outcomes): ${disk(drainedBytes)}`
  ]
}
