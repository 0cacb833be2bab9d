import { load, startBridge } from "./ingest.bench.js"
import { cpuMs } from "./support/child.js"
const scripts = process.argv.slice(2)
const bridges = []
for (const s of scripts) bridges.push({ s, b: await startBridge([], {}, s === "now" ? {} : { script: s }) })
for (const { b } of bridges) await load(b.child.port, 100_000_000, 3)
const res = new Map<string, Array<number>>()
for (let round = 0; round < 3; round++) {
  for (const { s, b } of bridges) {
    const before = cpuMs(b.child.process.pid!)
    const r = await load(b.child.port, 1_000_000 * (round + 1), 4)
    const us = ((cpuMs(b.child.process.pid!) - before) * 1000) / r.requests.total
    res.set(s, [...(res.get(s) ?? []), us])
  }
}
for (const [s, xs] of res) console.log(s.padEnd(28), xs.map((x) => x.toFixed(0)).join(" "), " median", [...xs].sort((a, b) => a - b)[1]!.toFixed(0), "µs/req")
for (const { b } of bridges) await b.stop()
