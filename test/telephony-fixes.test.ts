/**
 * Fixes of the telephony review (/work/notes/review-telephony.md): each over real HTTP, against a
 * real server and its SQLite file.
 */
import * as path from "node:path"
import Database from "better-sqlite3"
import { describe, expect, it } from "vitest"
import { eventually, startReceiver } from "./support/Receiver.js"
import { asAdmin, startTestServer, type TestServer } from "./support/TestServer.js"

const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64")
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const fast = {
  driver: "simulator",
  simulator: { speed: 1000, outcomes: { answered: 1 }, ringMs: { min: 3000, max: 3000 }, talkMs: { min: 20_000, max: 20_000 } },
  callbackDelivery: { timeoutMs: 1000, scheduleMs: [0, 50, 50, 50, 50] }
}
const query = <A>(server: TestServer, sql: string, ...params: ReadonlyArray<unknown>): Array<A> => {
  const db = new Database(path.join(server.dataDir, "bridge.db"), { readonly: true })
  try {
    return db.prepare(sql).all(...params) as Array<A>
  } finally {
    db.close()
  }
}
const healthy = async (server: TestServer) => expect((await fetch(`${server.url}/healthz`)).status).toBe(200)

describe("$adhoc: circuit and concurrency per callback URL origin", () => {
  it("a dead callbackUrl opens its own circuit; another callback's URL still gets its pushes", async () => {
    const good = await startReceiver()
    const server = await startTestServer({
      forwarding: { pollIntervalMs: 50, circuitThreshold: 3, circuitCooldownMs: 60_000, retentionDays: 30 },
      telephony: fast
    })
    try {
      // nothing listens on port 9
      const bad = await asAdmin(server, "callbackPhone", { sourcePhone: "02367073578", descPhone: "13800138001", callbackUrl: b64("http://127.0.0.1:9/cb?cbkId={cbkId}") }, "form")
      expect(bad.code).toBe(0)
      // the dead origin's circuit is open (it says which origin)
      await eventually(() => query<{ data: string }>(server, "SELECT data FROM events WHERE type = 'target.failing'").find((e) => JSON.parse(e.data).origin === "http://127.0.0.1:9"))
      const ok = await asAdmin(server, "callbackPhone", { sourcePhone: "02367073578", descPhone: "13800138002", callbackUrl: b64(`${good.url}?cbkId={cbkId}`) }, "form")
      expect(ok.code).toBe(0)
      const mine = await eventually(() => {
        const got = good.received.filter((r) => r.url.includes(`cbkId=${ok.id}`))
        return got.length >= 2 && got
      })
      expect(mine.length).toBeGreaterThanOrEqual(2)
      // the dead origin's pushes still wait (pending), none went to the healthy URL
      expect(good.received.every((r) => r.url.includes(`cbkId=${ok.id}`))).toBe(true)
      await healthy(server)
    } finally {
      await server.close()
      await good.close()
    }
  }, 20_000)

  it("a callback URL that hangs takes only its own origin's slots", async () => {
    const slow = await startReceiver(() => ({ status: 200, delayMs: 4_000 }))
    const good = await startReceiver()
    const server = await startTestServer({
      forwarding: { pollIntervalMs: 50, circuitThreshold: 50, circuitCooldownMs: 60_000, retentionDays: 30 },
      telephony: { ...fast, callbackDelivery: { timeoutMs: 5_000, scheduleMs: [0, 50] } }
    })
    try {
      // 10 callbacks to the hanging URL: more than an origin's 8 slots
      for (let i = 0; i < 10; i++) {
        const r = await asAdmin(server, "callbackPhone", { sourcePhone: "02367073578", descPhone: `1380013800${i}`, callbackUrl: b64(`${slow.url}?cbkId={cbkId}`) })
        expect(r.code).toBe(0)
      }
      await eventually(() => slow.received.length >= 8 || undefined, 3_000).catch(() => undefined)
      const ok = await asAdmin(server, "callbackPhone", { sourcePhone: "02367073578", descPhone: "13900139000", callbackUrl: b64(`${good.url}?cbkId={cbkId}`) })
      expect(ok.code).toBe(0)
      // the healthy URL is served while the slow origin's sends are all still hanging
      await eventually(() => good.received.find((r) => r.url.includes(`cbkId=${ok.id}`)), 3_000)
      expect(slow.received.length).toBeLessThanOrEqual(8)
      await healthy(server)
    } finally {
      await server.close()
      await slow.close()
      await good.close()
    }
  }, 30_000)
})
