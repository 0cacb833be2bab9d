/**
 * The disk under the data directory filling up: an operator hears of it (storage.low to the
 * targets that want it, a gauge in /metrics) while pushes are still stored, and again when
 * space is back (storage.ok).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import Database from "better-sqlite3"
import { afterAll, describe, expect, it } from "vitest"
import { eventually, startReceiver } from "./support/Receiver.js"
import { canMountTmpfs, fillDisk, freeBytes, TMPFS_SKIP, tmpfsDir } from "./support/Tmpfs.js"
import { asAdmin, callApi, creds, startTestServer, type TestServer } from "./support/TestServer.js"

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

  it("refuses pushes with -6 while the disk is full, loses none it acknowledged, and stores them again once space is back", { timeout: 60_000 }, async () => {
    const dataDir = tmpfsDir(24 * 1024 * 1024)
    const server = await startTestServer({ dataDir, storage: { lowFreeBytes: 0, checkIntervalMs: 60_000 } })
    servers.push(server)
    const push = async (cdrId: number) => {
      const memo = JSON.stringify({ cdrId, cdrExtension: "100008800", cdrTalktime: 10, note: "x".repeat(2000) })
      const body = new URLSearchParams({ type: "3", peer: "1", phone: "13800138000", memo })
      return ((await (await fetch(`${server.url}/api/voip.json`, { method: "POST", body })).json()) as { code: number; message: string })
    }
    const acked: Array<number> = []
    for (let id = 1; id <= 20; id++) if ((await push(id)).code === 0) acked.push(id)
    expect(acked).toHaveLength(20)

    const filler = fillDisk(dataDir, 0)
    // the WAL may still have room for a few: push until one is refused, within bounds
    let refused: { code: number; message: string } | undefined
    for (let id = 21; id <= 3000 && !refused; id++) {
      const answer = await push(id)
      if (answer.code === 0) acked.push(id)
      else refused = answer
    }
    expect(refused?.code).toBe(-6)
    expect(refused?.message).toMatch(/send it again/)
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200)

    fs.rmSync(filler)
    const after = 100_000
    expect((await push(after)).code).toBe(0)
    acked.push(after)
    const db = new Database(path.join(dataDir, "bridge.db"), { readonly: true })
    try {
      const stored = new Set((db.prepare("SELECT data FROM events WHERE type = 'call.hangup'").all() as Array<{ data: string }>).map((r) => (JSON.parse(r.data) as { cdrId: number }).cdrId))
      expect(acked.filter((id) => !stored.has(id))).toEqual([])
    } finally {
      db.close()
    }
  })

  it("lets people log in and read while the disk is full: the session is held in memory, and ends with a password change", { timeout: 60_000 }, async () => {
    const dataDir = tmpfsDir(24 * 1024 * 1024)
    const server = await startTestServer({ dataDir, storage: { lowFreeBytes: 0, checkIntervalMs: 60_000 } })
    servers.push(server)
    expect((await asAdmin(server, "addExtension", { exteExtension: "401", extePassword: "agent-pw-1" })).code).toBe(0)
    // the disk full, and the WAL's room too: written until a write is refused
    let cbkId = 0
    const fillAll = async () => {
      const filler = fillDisk(dataDir, 0)
      for (let i = 0; i < 3000; i++) {
        const body = new URLSearchParams({ cbkId: String(++cbkId), cbkStatus: "1", note: "y".repeat(4000) })
        if (((await (await fetch(`${server.url}/api/callback.json`, { method: "POST", body })).json()) as { code: number }).code !== 0) break
      }
      return filler
    }
    const filler = await fillAll()
    const login = await callApi(server, { ...creds("100008401", "agent-pw-1"), method: "getExtension" })
    expect(login.code).toBe(0)
    expect(String(login.sessionId)).toMatch(/^voip_/)
    expect((await callApi(server, { sessionId: String(login.sessionId), method: "findDialrecord" })).code).toBe(0)
    expect((await callApi(server, { ...creds("100008401", "agent-pw-1"), method: "findDialrecord" })).code).toBe(0)
    // a write is still refused, and says so
    expect((await asAdmin(server, "addExtension", { exteExtension: "402", extePassword: "x-pw-2" })).code).toBe(-6)

    fs.rmSync(filler)
    expect((await callApi(server, { sessionId: String(login.sessionId), method: "findDialrecord" })).code).toBe(0)
    // disabled and enabled again before the session is next used: it stays ended
    const second = await callApi(server, { ...creds("100008401", "agent-pw-1"), method: "getExtension" })
    const heldAgain = await fillAll()
    const inMemory = await callApi(server, { ...creds("100008401", "agent-pw-1"), method: "getExtension" })
    expect(inMemory.code).toBe(0)
    fs.rmSync(heldAgain)
    expect((await asAdmin(server, "editExtension", { exteId: String(login.exteId), exteStatus: "1" })).code).toBe(0)
    expect((await asAdmin(server, "editExtension", { exteId: String(login.exteId), exteStatus: "0" })).code).toBe(0)
    expect((await callApi(server, { sessionId: String(inMemory.sessionId), method: "findDialrecord" })).code).toBe(-2)
    expect((await callApi(server, { sessionId: String(second.sessionId), method: "findDialrecord" })).code).toBe(-2)
    const fresh = await callApi(server, { ...creds("100008401", "agent-pw-1"), method: "getExtension" })
    expect((await callApi(server, { sessionId: String(fresh.sessionId), method: "findDialrecord" })).code).toBe(0)
    const reset = await asAdmin(server, "initExtensionPassword", { exteId: String(login.exteId) })
    expect(reset.code).toBe(0)
    expect((await callApi(server, { sessionId: String(fresh.sessionId), method: "findDialrecord" })).code).toBe(-2)
  })
})
