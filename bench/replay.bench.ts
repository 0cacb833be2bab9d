/**
 * `npm run bench -- replay`: how fast `replay` sends a capture, against `autocannon` sending
 * the very same requests to the same bridge (32 connections; distinct pushed calls, so the
 * replay's per-call lanes do not serialise them). The replay also diffs every answer; the
 * ratio says what ordering, rewriting and diffing cost over a load generator that does none.
 * Then the capture's own cost: autocannon against a bridge capturing vs the same one not.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import autocannon from "autocannon"
import { makeMatcher } from "../src/replay/Diff.js"
import type { Entry } from "../src/replay/Input.js"
import { replay } from "../src/replay/Replay.js"
import { line, median, startBridge } from "./ingest.bench.js"

const CONNECTIONS = 32
const COUNT = Number(process.env.BENCH_REPLAY_COUNT ?? 4000)
const ROUNDS = 3

const requests = (offset: number) =>
  Array.from({ length: COUNT }, (_, i) => {
    const id = offset + i
    return {
      path: "/api/voip.json",
      body: new URLSearchParams({ type: "3", peer: "1", phone: `138${String(id).padStart(8, "0")}`, memo: JSON.stringify({ cdrId: id, cdrTalktime: 60, cdrPhoneNum: "13800138000" }) }).toString()
    }
  })

const asEntries = (list: ReturnType<typeof requests>): Array<Entry> =>
  list.map((r, i) => ({
    where: `bench:${i + 1}`,
    method: "POST",
    path: r.path,
    query: "",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: Buffer.from(r.body),
    answer: { status: 200, headers: { "content-type": "application/json; charset=utf-8" }, body: Buffer.from('{"code":0,"message":"OK"}') }
  }))

/** autocannon sending the list once; its rate measured on the wall clock (its own duration is rounded to seconds) */
const cannon = async (port: number, list: ReturnType<typeof requests>) => {
  let next = 0
  const started = performance.now()
  const result = await autocannon({
    url: `http://127.0.0.1:${port}`,
    connections: CONNECTIONS,
    amount: list.length,
    requests: [
      {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        setupRequest: (req) => {
          const r = list[next++ % list.length]!
          return { ...req, path: r.path, body: r.body }
        }
      }
    ]
  })
  return { result, rate: result.requests.total / ((performance.now() - started) / 1000) }
}

const replayRate = async (port: number, list: ReturnType<typeof requests>) => {
  const started = performance.now()
  const { results } = await replay(asEntries(list), {
    to: `http://127.0.0.1:${port}`,
    speed: 0,
    concurrency: CONNECTIONS,
    matcher: makeMatcher({ ignore: [], only: [], defaults: true }),
    validate: false,
    credentials: new Map(),
    receivers: ["/api/voip.json"]
  })
  const seconds = (performance.now() - started) / 1000
  const failed = results.filter((r) => r.error || r.differences.length > 0).length
  return { rate: results.length / seconds, failed }
}

export const run = async () => {
  const out: Array<string> = []
  const bridge = await startBridge([])
  const port = bridge.child.port
  // both warmed alike, then alternating rounds; the median round's ratio is the figure
  await cannon(port, requests(1))
  await replayRate(port, requests(10_000_000))
  const rounds: Array<{ cannon: number; replay: number; failed: number }> = []
  for (let i = 0; i < ROUNDS; i++) {
    const c = await cannon(port, requests(100_000_000 + i * 1_000_000))
    const r = await replayRate(port, requests(200_000_000 + i * 1_000_000))
    rounds.push({ cannon: c.rate, replay: r.rate, failed: r.failed })
    if (i === ROUNDS - 1) out.push(line("autocannon (last round)", c.result))
  }
  await bridge.stop()
  const ratios = rounds.map((r) => r.replay / r.cannon)
  const mid = rounds[ratios.indexOf(median(ratios))]!
  out.push(`  replay of ${COUNT} pushes, ${CONNECTIONS} in flight: ${mid.replay.toFixed(0)} req/s vs autocannon ${mid.cannon.toFixed(0)} req/s: ratio ${median(ratios).toFixed(2)} (answers differing or failed: ${mid.failed})`)

  // the capture's cost on the bridge: the same load with capture off and on
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vb-bench-capture-"))
  const capturing = await startBridge([], { capture: { file: path.join(dir, "capture.jsonl") } })
  const plain = await startBridge([])
  await cannon(capturing.child.port, requests(300_000_000))
  await cannon(plain.child.port, requests(300_000_000))
  const on: Array<number> = []
  const off: Array<number> = []
  for (let i = 0; i < ROUNDS; i++) {
    const a = await cannon(plain.child.port, requests(400_000_000 + i * 1_000_000))
    const b = await cannon(capturing.child.port, requests(400_000_000 + i * 1_000_000))
    off.push(a.rate)
    on.push(b.rate)
  }
  const lines = fs.readFileSync(path.join(dir, "capture.jsonl"), "utf8").split("\n").filter(Boolean).length
  await capturing.stop()
  await plain.stop()
  fs.rmSync(dir, { recursive: true, force: true })
  out.push(`  capture on vs off (autocannon, same pushes): ${median(on).toFixed(0)} vs ${median(off).toFixed(0)} req/s: ratio ${(median(on) / median(off)).toFixed(2)}; ${lines} lines captured`)
  return out
}
