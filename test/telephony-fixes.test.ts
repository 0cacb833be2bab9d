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

describe("blacklist: one normal form for entries and checks", () => {
  it("entries written +86…, 0086… or with dashes block the plain number everywhere a phone is rung or texted", async () => {
    const server = await startTestServer({ telephony: fast })
    try {
      expect((await asAdmin(server, "addBlacklists", { phones: "+8613800138000,008613900139000,137-0013-7000" })).code).toBe(0)
      const cb = await asAdmin(server, "callbackPhone", { sourcePhone: "02367073578", descPhone: "13800138000" })
      expect(cb.code).toBe(-5)
      expect(cb.message).toContain("descPhone")
      const audit = await asAdmin(server, "phoneAudit", { yzm: "1234", type: "1", phone: "13900139000" })
      expect(audit.code).toBe(-5)
      const sms = await asAdmin(server, "smsSend", { phoneNum: "13600136000,13700137000", memo: "hello" }, "form")
      expect(sms.code).toBe(-5)
      expect(sms.message).toContain("phoneNum")
      const code = await asAdmin(server, "sendCallAgiPhoneSms", { phone: "+86 138 0013 8000" })
      expect(code.code).toBe(-5)
      expect(code.message).toContain("phone")
      const ivr = await asAdmin(server, "setIvrDialing", { sourcePhone: "02367073578", descPhone: "13500135000", dialPhone: "013900139000" })
      expect(ivr.code).toBe(-5)
      expect(ivr.message).toContain("dialPhone")
      // nothing was stored for a refused request
      const counts = query<{ cb: number; wa: number; sms: number; vc: number; ivr: number }>(
        server,
        `SELECT (SELECT count(*) FROM callbacks) AS cb, (SELECT count(*) FROM phone_audits) AS wa, (SELECT count(*) FROM sms_records) AS sms,
          (SELECT count(*) FROM verification_codes) AS vc, (SELECT count(*) FROM ivr_dialing) AS ivr`
      )[0]
      expect(counts).toEqual({ cb: 0, wa: 0, sms: 0, vc: 0, ivr: 0 })
      // a number not listed still goes through
      expect((await asAdmin(server, "callbackPhone", { sourcePhone: "02367073578", descPhone: "13800138009" })).code).toBe(0)
      await healthy(server)
    } finally {
      await server.close()
    }
  })
})

describe("phoneaudit.status: a verification call's statuses keep their order", () => {
  it("a retried first status is delivered before the later ones, each status once", async () => {
    const crm = await startReceiver((_, n) => ({ status: n === 1 ? 503 : 200 }))
    const server = await startTestServer({
      forwarding: { pollIntervalMs: 50, circuitThreshold: 50, circuitCooldownMs: 300, retentionDays: 30 },
      targets: [{ name: "crm", url: crm.url, events: ["phoneaudit.*"], retry: { scheduleMs: [0, 500, 500] } }],
      telephony: fast
    })
    try {
      const a = await asAdmin(server, "phoneAudit", { yzm: "1234", type: "1", phone: "13002367525" })
      expect(a.code).toBe(0)
      const statuses = () => crm.received.map((r) => { const j = JSON.parse(r.body); return `${j.data.wsStatus}${j.data.wsEndTime ? "e" : ""}` })
      await eventually(() => statuses().at(-1)?.endsWith("e"), 10_000, statuses)
      // the 503'd first status was sent again, and only then did the others go
      const got = statuses()
      expect(got[0]).toBe("0")
      expect(got[1]).toBe("0")
      expect(got.slice(1)).toEqual([...new Set(got.slice(1))])
      expect(got.slice(2).every((s) => s !== "0")).toBe(true)
      await healthy(server)
    } finally {
      await server.close()
      await crm.close()
    }
  }, 15_000)
})
