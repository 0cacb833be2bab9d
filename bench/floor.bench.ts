/**
 * What a push's writes cost against what serving it costs: bare express, the floor
 * (bench/support/floor-server.mjs: bare express — its own dispatch and body parser — with only
 * the push's writes, group-committed and flushed as the bridge does, into a database the bridge
 * migrated) and the bridge with no target, the ingest bench's load on each, in alternating
 * rounds. The floor against express is what the writes cost; the bridge against the floor is
 * what its own layers cost or save (it parses, validates and routes a push itself, without
 * express's router, prototypes or ETag).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { line, load, median, startBridge } from "./ingest.bench.js"
import { cpuMs, startChild, type Child } from "./support/child.js"

const ROUNDS = 3

const counted = async (child: Child, firstId: number) => {
  const before = cpuMs(child.process.pid!)
  const r = await load(child.port, firstId)
  return Object.assign(r, { cpuUs: ((cpuMs(child.process.pid!) - before) * 1000) / Math.max(1, r.requests.total) })
}

export const run = async () => {
  const baseline = await startChild("bench/support/noop-server.mjs", [], {}, /listening (\d+)/)
  // a database as the bridge leaves it: migrated, with its triggers; the floor then writes it alone
  const migrated = await startBridge([])
  await migrated.child.stop()
  const floor = await startChild("bench/support/floor-server.mjs", [path.join(migrated.dataDir, "bridge.db")], {}, /listening (\d+)/)
  const bridge = await startBridge([])
  await load(baseline.port, 1)
  await load(floor.port, 100_000_000)
  await load(bridge.child.port, 100_000_000)
  const rounds = []
  for (let i = 0; i < ROUNDS; i++) {
    const base = await counted(baseline, 1)
    const bottom = await counted(floor, 1_000_000 * (i + 1))
    const ours = await counted(bridge.child, 1_000_000 * (i + 1))
    rounds.push({ base, bottom, ours })
  }
  await baseline.stop()
  await floor.stop()
  await bridge.stop()
  fs.rmSync(migrated.dataDir, { recursive: true, force: true })
  const floorRatios = rounds.map((r) => r.bottom.requests.average / r.base.requests.average)
  const ratios = rounds.map((r) => r.ours.requests.average / r.base.requests.average)
  const shares = rounds.map((r) => r.ours.requests.average / r.bottom.requests.average)
  return [
    `durable ingest's floor: bare express with the push's writes alone, against bare express and the bridge (no target)`,
    ...rounds.flatMap((r, i) => [line(`round ${i + 1}: bare express no-op`, r.base), line(`round ${i + 1}: floor`, r.bottom), line(`round ${i + 1}: voip-bridge`, r.ours)]),
    `  floor/express per round: ${floorRatios.map((r) => r.toFixed(2)).join(", ")} -> median ${median(floorRatios).toFixed(2)} (what the writes cost behind express)`,
    `  bridge/express per round: ${ratios.map((r) => r.toFixed(2)).join(", ")} -> median ${median(ratios).toFixed(2)}`,
    `  bridge/floor per round: ${shares.map((r) => r.toFixed(2)).join(", ")} -> median ${median(shares).toFixed(2)}`
  ]
}
