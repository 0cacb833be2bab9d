/**
 * The disk under the data directory filling up: an operator hears of it (storage.low to the
 * targets that want it, a gauge in /metrics) while pushes are still stored, and again when
 * space is back (storage.ok).
 */
import * as fs from "node:fs"
import { afterAll, describe, expect, it } from "vitest"
import { eventually, startReceiver } from "./support/Receiver.js"
import { canMountTmpfs, fillDisk, freeBytes, TMPFS_SKIP, tmpfsDir } from "./support/Tmpfs.js"
import { startTestServer, type TestServer } from "./support/TestServer.js"

const servers: Array<TestServer> = []
afterAll(async () => {
  for (const s of servers) await s.close()
})

describe.skipIf(!canMountTmpfs)(`free space on the data directory's disk${canMountTmpfs ? "" : ` — skipped: ${TMPFS_SKIP}`}`, () => {
  it("raises storage.low below the threshold, before pushes are refused, and storage.ok when space is back", { timeout: 30_000 }, async () => {
    const receiver = await startReceiver()
    const dataDir = tmpfsDir(16 * 1024 * 1024)
    const server = await startTestServer({
      dataDir,
      storage: { lowFreeBytes: 6 * 1024 * 1024, checkIntervalMs: 100 },
      targets: [{ name: "ops", url: receiver.url, events: ["storage.*"] }]
    })
    servers.push(server)
    const types = () => receiver.received.map((r) => (JSON.parse(r.body) as { type: string }).type)

    const metrics = async () => (await (await fetch(`${server.url}/metrics`)).text()).match(/^bridge_storage_free_bytes (\d+)/m)?.[1]
    expect(Number(await eventually(metrics))).toBeGreaterThan(6 * 1024 * 1024)
    expect(types()).toEqual([])

    const filler = fillDisk(dataDir, 4 * 1024 * 1024)
    await eventually(() => types().includes("storage.low"), 10_000, types)
    const low = JSON.parse(receiver.received.find((r) => r.body.includes("storage.low"))!.body) as { data: { freeBytes: number; lowBelowBytes: number } }
    expect(low.data.freeBytes).toBeLessThan(low.data.lowBelowBytes)
    // said once, not at every check
    await new Promise((r) => setTimeout(r, 400))
    expect(types().filter((t) => t === "storage.low")).toHaveLength(1)
    // still room for pushes: they are stored
    const body = new URLSearchParams({ type: "1", peer: "1", phone: "13800138000", memo: JSON.stringify({ cdrId: 77, cdrExtension: "100008800" }) })
    expect(((await (await fetch(`${server.url}/api/voip.json`, { method: "POST", body })).json()) as { code: number }).code).toBe(0)

    fs.rmSync(filler)
    expect(freeBytes(dataDir)).toBeGreaterThan(6 * 1024 * 1024)
    await eventually(() => types().includes("storage.ok"), 10_000, types)
    expect(types()).toEqual(["storage.low", "storage.ok"])
    await receiver.close()
  })
})
