/**
 * Durable ingest: POST /api/voip.json (distinct cdrIds, memo ~300 bytes, 32 connections) on
 * the bridge with synchronous=FULL, against a bare express endpoint that parses the same body,
 * in the same run. Then delivery throughput of those events to a fast local receiver, and the
 * bridge's resident memory under load.
 */
import * as fs from "node:fs"
import * as http from "node:http"
import * as os from "node:os"
import * as path from "node:path"
import autocannon from "autocannon"
import { freePortFor, rssMiB, startChild } from "./support/child.js"

const CONNECTIONS = 32
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 8)

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

const load = (port: number, firstId: number) => {
  let next = firstId
  return autocannon({
    url: `http://127.0.0.1:${port}`,
    connections: CONNECTIONS,
    duration: DURATION_S,
    requests: [
      {
        method: "POST",
        path: "/api/voip.json",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        setupRequest: (req) => {
          const id = next++
          return { ...req, body: new URLSearchParams({ type: "3", peer: "1", phone: "13800138000", memo: memo(id) }).toString() }
        }
      }
    ]
  })
}

/** A receiver that answers 204 at once and counts what it got. */
const receiver = () =>
  new Promise<{ port: number; count: () => number; close: () => void }>((resolve) => {
    let n = 0
    const server = http.createServer((req, res) => {
      req.resume()
      req.on("end", () => {
        n++
        res.writeHead(204).end()
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number }
      resolve({ port, count: () => n, close: () => server.close() })
    })
  })

export const run = async () => {
  const baseline = await startChild("bench/support/noop-server.ts", [], {}, /listening (\d+)/)
  await load(baseline.port, 1) // warm-up
  const base = await load(baseline.port, 1)
  await baseline.stop()

  const sink = await receiver()
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "vb-bench-"))
  const configFile = path.join(dataDir, "bridge.json")
  fs.writeFileSync(configFile, JSON.stringify({ targets: [{ name: "sink", url: `http://127.0.0.1:${sink.port}/hook`, events: ["call.*"] }] }))
  const port = await freePortFor()
  const bridge = await startChild(
    "src/main.ts",
    [],
    { BRIDGE_DATA_DIR: dataDir, BRIDGE_CONFIG: configFile, BRIDGE_PORT: String(port), BRIDGE_HOST: "127.0.0.1", LOG_LEVEL: "info" },
    /voip-bridge listening/,
    port
  )
  await new Promise((r) => setTimeout(r, 1000))
  let peakRss = 0
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, rssMiB(bridge.process.pid!))), 200)
  const ingestStarted = Date.now()
  const ours = await load(port, 1_000_000)
  const acked = ours.requests.total - ours.non2xx - ours.errors
  // delivery: wait until the sink has everything acknowledged (or 60 s)
  const deadline = Date.now() + 60_000
  while (sink.count() < acked && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
  const deliveredIn = (Date.now() - ingestStarted) / 1000
  clearInterval(sampler)
  await bridge.stop()
  sink.close()
  fs.rmSync(dataDir, { recursive: true, force: true })

  const ratio = ours.requests.average / base.requests.average
  return [
    `ingest /api/voip.json (synchronous=FULL, ${CONNECTIONS} connections, ${DURATION_S}s, memo ${memo(1).length} bytes)`,
    `  bare express no-op : ${base.requests.average.toFixed(0)} req/s, p50 ${base.latency.p50} ms, p99 ${base.latency.p99} ms`,
    `  voip-bridge        : ${ours.requests.average.toFixed(0)} req/s, p50 ${ours.latency.p50} ms, p99 ${ours.latency.p99} ms, non-2xx ${ours.non2xx}, errors ${ours.errors}`,
    `  ratio bridge/express: ${ratio.toFixed(2)} (must be >= 0.50)`,
    `delivery to a local receiver: ${sink.count()} of ${acked} acknowledged events delivered in ${deliveredIn.toFixed(1)} s since ingest start (${(sink.count() / deliveredIn).toFixed(0)} events/s)`,
    `bridge peak RSS under load: ${peakRss} MiB`
  ]
}
