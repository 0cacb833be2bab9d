import { load, startBridge } from "./ingest.bench.js"
const which = process.argv[2]!
const dir = process.argv[3]!
const b = await startBridge([], {}, { nodeArgs: ["--cpu-prof", `--cpu-prof-dir=${dir}`], ...(which === "now" ? {} : { script: which }) })
await load(b.child.port, 100_000_000, 3)
const r = await load(b.child.port, 1, 8)
console.log(which, r.requests.average, "req/s")
await b.stop()
