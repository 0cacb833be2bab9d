/**
 * The recording box's traffic (§2.1.10): 500 channels (50 simulated boxes of 10) each polling
 * cmd=getCallList once a second — the load a real installation's off-hook phones make — alone,
 * then while recordings are uploaded (UPLOAD_RATE a second, each a new call with a 3 s WAV; 500
 * lines with 3-minute calls make about 3 a second). The same poll load is sent to a bare
 * express endpoint that parses the same body, in the same run, and the latencies are compared
 * (p50/p99 ratio). Then each is polled flat out (autocannon, 32 connections): the bridge's poll
 * capacity as a ratio of express's.
 */
import * as http from "node:http"
import autocannon from "autocannon"
import { toneWav } from "../src/box/Simulator.js"
import { line, startBridge } from "./ingest.bench.js"
import { startChild } from "./support/child.js"
import { percentile } from "./support/measure.js"

const BOXES = 50
const CHANNELS = 10
const SECONDS = Number(process.env.BENCH_DURATION_S ?? 10)
const UPLOAD_RATE = Number(process.env.BENCH_UPLOAD_RATE ?? 10)

const macOf = (i: number) => `02:00:00:00:${String(Math.floor(i / 256).toString(16)).padStart(2, "0")}:${(i % 256).toString(16).padStart(2, "0")}`
const agent = new http.Agent({ keepAlive: true, maxSockets: 128 })

const post = (port: number, body: string | Buffer, contentType: string) =>
  new Promise<{ status: number; ms: number; body: string }>((resolve, reject) => {
    const started = process.hrtime.bigint()
    const req = http.request({ host: "127.0.0.1", port, path: "/voip/upload_record", method: "POST", agent, headers: { "content-type": contentType, "content-length": body.length } }, (res) => {
      let text = ""
      res.setEncoding("utf8")
      res.on("data", (c: string) => (text += c))
      res.on("end", () => resolve({ status: res.statusCode ?? 0, ms: Number(process.hrtime.bigint() - started) / 1e6, body: text }))
    })
    req.on("error", reject)
    req.end(body)
  })

/** 500 channels, each polling once a second at its own offset within the second, for SECONDS. */
const pollLoad = async (port: number) => {
  const latencies: Array<number> = []
  let failed = 0
  const until = Date.now() + SECONDS * 1000
  const channels = Array.from({ length: BOXES * CHANNELS }, (_, i) => ({ mac: macOf(Math.floor(i / CHANNELS)), ch: (i % CHANNELS) + 1, offset: (i * 1000) / (BOXES * CHANNELS) }))
  await Promise.all(
    channels.map(async (c) => {
      await new Promise((r) => setTimeout(r, c.offset))
      while (Date.now() < until) {
        const tick = Date.now()
        const a = await post(port, new URLSearchParams({ cmd: "getCallList", satellite: c.mac, id: String(c.ch), time: String(tick) }).toString(), "application/x-www-form-urlencoded").catch(() => undefined)
        if (a && a.status === 200 && JSON.parse(a.body).status === 3003) latencies.push(a.ms)
        else failed++
        await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - tick))))
      }
    })
  )
  return { latencies, failed, rate: latencies.length / SECONDS }
}

/** Recordings uploaded at UPLOAD_RATE a second until `stop`, each a new call with a 3 s WAV. */
const uploads = (port: number, stop: () => boolean) => {
  const wav = toneWav(3)
  let done = 0
  let failed = 0
  let next = 1n
  const boundary = "----voip-bridge-bench"
  const body = (callid: string, mac: string) => {
    const fields: Record<string, string> = { cmd: "upload", satellite: mac, channel: "1", start_time_secs: String(Math.floor(Date.now() / 1000) - 5), start_time_hangup: String(Math.floor(Date.now() / 1000)), direction: "in", callid_dialed: "13800138000", duration_secs: "3", id: callid.slice(-6), recorded: "1", callid }
    const parts = Object.entries(fields).map(([k, v]) => `--${boundary}\r\ncontent-disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`)
    return Buffer.concat([Buffer.from(parts.join("")), Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="file"; filename="${callid}.wav"\r\ncontent-type: audio/wav\r\n\r\n`), wav, Buffer.from(`\r\n--${boundary}--\r\n`)])
  }
  const sent: Array<Promise<void>> = []
  const latencies: Array<number> = []
  const timer = setInterval(() => {
    if (stop()) return clearInterval(timer)
    const callid = (BigInt(Date.now()) * 1_000_000n + next++).toString()
    sent.push(
      post(port, body(callid, macOf(Number(next % BigInt(BOXES)))), `multipart/form-data; boundary=${boundary}`)
        .then((a) => {
          if (a.status === 200 && JSON.parse(a.body).callid === callid) {
            done++
            latencies.push(a.ms)
          } else failed++
        })
        .catch(() => void failed++)
    )
  }, 1000 / UPLOAD_RATE)
  return {
    finished: (async () => {
      while (!stop()) await new Promise((r) => setTimeout(r, 50))
      clearInterval(timer)
      await Promise.all(sent)
      return { done, failed, p99: percentile(latencies, 99) }
    })()
  }
}

const flatOut = (port: number) =>
  autocannon({
    url: `http://127.0.0.1:${port}`,
    connections: 32,
    duration: 5,
    requests: [{ method: "POST", path: "/voip/upload_record", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams({ cmd: "getCallList", satellite: macOf(1), id: "1" }).toString() }]
  })

export const run = async () => {
  const devices = Array.from({ length: BOXES }, (_, i) => ({ mac: macOf(i), enterprise: "100008", channels: { "1": "100008800" } }))
  const baseline = await startChild("bench/support/noop-server.mjs", [], {}, /listening (\d+)/)
  const bridge = await startBridge([], { devices })
  // warm-up, alike for both
  await flatOut(baseline.port)
  await flatOut(bridge.child.port)

  const base = await pollLoad(baseline.port)
  const alone = await pollLoad(bridge.child.port)
  let stopping = false
  const uploading = uploads(bridge.child.port, () => stopping)
  const ours = await pollLoad(bridge.child.port)
  stopping = true
  const uploaded = await uploading.finished
  const capacityBase = await flatOut(baseline.port)
  const capacityOurs = await flatOut(bridge.child.port)
  await bridge.stop()
  await baseline.stop()
  agent.destroy()

  const fmt = (name: string, r: Awaited<ReturnType<typeof pollLoad>>) =>
    `  ${name.padEnd(34)}: ${r.rate.toFixed(0).padStart(5)} polls/s answered, p50 ${percentile(r.latencies, 50).toFixed(1)} ms, p99 ${percentile(r.latencies, 99).toFixed(1)} ms, failed ${r.failed}`
  return [
    `getCallList: ${BOXES * CHANNELS} channels (${BOXES} boxes x ${CHANNELS}) polling once a second for ${SECONDS} s`,
    fmt("bare express no-op", base),
    fmt("voip-bridge", alone),
    fmt(`voip-bridge, ${UPLOAD_RATE} uploads/s meanwhile`, ours),
    `  p99 bridge/express: ${(percentile(alone.latencies, 99) / percentile(base.latencies, 99)).toFixed(2)} alone, ${(percentile(ours.latencies, 99) / percentile(base.latencies, 99)).toFixed(2)} uploading; p50: ${(percentile(alone.latencies, 50) / percentile(base.latencies, 50)).toFixed(2)} alone, ${(percentile(ours.latencies, 50) / percentile(base.latencies, 50)).toFixed(2)} uploading`,
    `  uploads meanwhile: ${uploaded.done} recordings of ${toneWav(3).length} bytes (${(uploaded.done / SECONDS).toFixed(1)}/s, p99 ${uploaded.p99.toFixed(0)} ms), ${uploaded.failed} failed`,
    `getCallList flat out (32 connections, 5 s):`,
    line("bare express no-op", capacityBase),
    line("voip-bridge", capacityOurs),
    `  capacity bridge/express: ${(capacityOurs.requests.average / capacityBase.requests.average).toFixed(2)}`
  ]
}
