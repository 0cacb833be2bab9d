/**
 * Fixes of the telephony review (/work/notes/review-telephony.md): each over real HTTP, against a
 * real server and its SQLite file.
 */
import * as http from "node:http"
import * as path from "node:path"
import Database from "better-sqlite3"
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { loadConfig } from "../src/config/AppConfig.js"
import { startServer } from "../src/http/Server.js"
import { adminApi } from "./support/AdminApi.js"
import { eventually, startReceiver } from "./support/Receiver.js"
import { ADMIN, asAdmin, md5, startTestServer, tempDir, type TestServer } from "./support/TestServer.js"

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64")
const fast = {
  driver: "simulator",
  simulator: { speed: 1000, outcomes: { answered: 1 }, ringMs: { min: 3000, max: 3000 }, talkMs: { min: 20_000, max: 20_000 } },
  callbackDelivery: { timeoutMs: 1000, scheduleMs: [0, 50, 50, 50, 50] }
}
const query = <A>(server: { readonly dataDir: string }, sql: string, ...params: ReadonlyArray<unknown>): Array<A> => {
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

/** A fake 800ing platform's jsondata URL answering each call after `delayMs`. */
const startPlatform = (delayMs: number) =>
  new Promise<{ url: string; calls: () => number; close: () => Promise<void> }>((resolve) => {
    let calls = 0
    const s = http.createServer((req, res) => {
      req.resume()
      req.on("end", () => {
        calls++
        setTimeout(() => res.writeHead(200, { "content-type": "application/json" }).end(`{"code":0,"message":"OK","id":1}`), delayMs)
      })
    })
    s.listen(0, "127.0.0.1", () =>
      resolve({
        url: `http://127.0.0.1:${(s.address() as { port: number }).port}/j`,
        calls: () => calls,
        close: () => new Promise((d) => { s.closeAllConnections(); s.close(() => d()) })
      })
    )
  })

describe("a client that goes away does not split place → store → start", () => {
  it("upstream placed the call while the client was gone: the callback and the verification call are stored all the same", async () => {
    const platform = await startPlatform(800)
    const server = await startTestServer({ telephony: { driver: "upstream", upstream: { url: platform.url, sa_user: "100088601", sa_password: "0DCBDF0AA187EA7498D8AB64604096FC", timeoutMs: 5000 } } })
    try {
      const ask = async (params: Record<string, string>) => {
        const q = new URLSearchParams({ sa_user: ADMIN.user, sa_password: md5(ADMIN.password), ...params })
        const ac = new AbortController()
        const p = fetch(`${server.url}/voip/api/jsondata.html?${q}`, { signal: ac.signal }).catch((e: unknown) => String(e))
        await sleep(300)
        ac.abort()
        await p
      }
      await ask({ method: "callbackPhone", sourcePhone: "02367073578", descPhone: "13800138000" })
      await ask({ method: "phoneAudit", yzm: "1234", type: "1", phone: "13900139000" })
      await eventually(() => platform.calls() === 2)
      const rows = await eventually(() => {
        const r = query<{ cb: number; wa: number }>(server, "SELECT (SELECT count(*) FROM callbacks) AS cb, (SELECT count(*) FROM phone_audits) AS wa")[0]
        return r !== undefined && r.cb === 1 && r.wa === 1 && r
      })
      expect(rows).toEqual({ cb: 1, wa: 1 })
      await healthy(server)
    } finally {
      await server.close()
      await platform.close()
    }
  }, 15_000)
})

describe("setIvrDialing is used when a call is placed", () => {
  it("a callback to a cached pair dials the dialPhone; the callback keeps the number asked for", async () => {
    const server = await startTestServer({ telephony: fast })
    try {
      expect((await asAdmin(server, "setIvrDialing", { sourcePhone: "02367073578", descPhone: "13800138000", dialPhone: "13700137000", saveTimes: "600" })).code).toBe(0)
      const cb = await asAdmin(server, "callbackPhone", { sourcePhone: "02367073578", descPhone: "13800138000" })
      expect(cb.code).toBe(0)
      const cdr = await eventually(() => query<{ phone: string }>(server, "SELECT phone FROM cdrs")[0])
      expect(cdr.phone).toBe("13700137000")
      const list = await asAdmin(server, "getCallbackList", { id: String(cb.id) })
      expect(JSON.stringify(list)).toContain("13800138000")
      // a pair not cached dials the number asked for
      expect((await asAdmin(server, "callbackPhone", { sourcePhone: "02367073578", descPhone: "13600136000" })).code).toBe(0)
      await eventually(() => query<{ phone: string }>(server, "SELECT phone FROM cdrs WHERE phone = '13600136000'")[0])
      // a proxy number blacklisted since it was cached is refused, nothing stored
      expect((await asAdmin(server, "addBlacklists", { phones: "13700137000" })).code).toBe(0)
      const refused = await asAdmin(server, "callbackPhone", { sourcePhone: "02367073578", descPhone: "13800138000" })
      expect(refused.code).toBe(-5)
      expect(query<{ n: number }>(server, "SELECT count(*) AS n FROM callbacks")[0]?.n).toBe(2)
      await healthy(server)
    } finally {
      await server.close()
    }
  })
})

describe("verification codes do not travel in clear to every target", () => {
  it("the SMS record and sms.added hold the code masked; verification.sms carries it only to the exact subscriber; phoneaudit.status masks the spoken code", async () => {
    const gateway = await startReceiver()
    const everything = await startReceiver()
    const server = await startTestServer({
      forwarding: { pollIntervalMs: 50, circuitThreshold: 100, circuitCooldownMs: 100, retentionDays: 30 },
      targets: [
        { name: "gateway", url: gateway.url, events: ["verification.sms"] },
        { name: "all", url: everything.url, events: ["*", "verification.*", "verification.sm*"] }
      ],
      verification: { codeLength: 6, ttlMs: 60_000, maxAttempts: 3, resendAfterMs: 0 },
      telephony: fast
    })
    try {
      expect((await asAdmin(server, "sendCallAgiPhoneSms", { phone: "13911110001" })).code).toBe(0)
      const sms = await eventually(() => gateway.received.map((r) => JSON.parse(r.body) as { type: string; data: { content: string; code: string } }).find((e) => e.type === "verification.sms"))
      const code = sms.data.code
      expect(code).toMatch(/^\d{6}$/)
      expect(sms.data.content).toContain(`验证码：${code}`)
      const stored = query<{ content: string }>(server, "SELECT content FROM sms_records")
      expect(stored).toEqual([{ content: expect.stringContaining("验证码：******") }])
      await eventually(() => everything.received.some((r) => r.body.includes("sms.added")) && everything.received.some((r) => r.body.includes("verification.sent")))
      expect(everything.received.some((r) => r.body.includes("verification.sms"))).toBe(false)
      expect(everything.received.some((r) => r.body.includes(code))).toBe(false)
      // the code still works
      expect((await asAdmin(server, "CallAgiverificationCode", { phone: "13911110001", vtCode: code })).code).toBe(0)

      const audit = await asAdmin(server, "phoneAudit", { yzm: "987654", type: "1", phone: "13002367525" })
      expect(audit.code).toBe(0)
      const pushed = await eventually(() => everything.received.filter((r) => r.body.includes("phoneaudit.status")).length >= 2 && everything.received.filter((r) => r.body.includes("phoneaudit.status")))
      for (const p of pushed) expect((JSON.parse(p.body) as { data: { wsValue: string } }).data.wsValue).toBe("******")
      expect(everything.received.some((r) => r.body.includes("987654"))).toBe(false)
      // the API itself still answers it to the enterprise
      expect(JSON.stringify(await asAdmin(server, "getPhoneAudit", { id: String(audit.id) }))).toContain("987654")
      await healthy(server)
    } finally {
      await server.close()
      await gateway.close()
      await everything.close()
    }
  })
})

describe("telephony.callbackDelivery.allowTo", () => {
  it("a callbackUrl to a host not allowed is -14 naming callbackUrl, nothing stored; allowed hosts go through", async () => {
    const hook = await startReceiver()
    const server = await startTestServer({ telephony: { ...fast, callbackDelivery: { ...fast.callbackDelivery, allowTo: ["127.0.0.1", "10.0.0.0/8", "crm.example.com"] } } })
    try {
      for (const url of ["http://169.254.169.254/latest/meta-data?cbkId={cbkId}", "http://192.168.1.10/cb", "http://localhost:8080/cb", "http://[::1]/cb"]) {
        const r = await asAdmin(server, "callbackPhone", { sourcePhone: "02367073578", descPhone: "13800138000", callbackUrl: b64(url) })
        expect(r.code, url).toBe(-14)
        expect(r.message, url).toContain("callbackUrl")
      }
      expect(query<{ n: number }>(server, "SELECT count(*) AS n FROM callbacks")[0]?.n).toBe(0)
      expect(query<{ n: number }>(server, "SELECT count(*) AS n FROM deliveries")[0]?.n).toBe(0)
      const ok = await asAdmin(server, "callbackPhone", { sourcePhone: "02367073578", descPhone: "13800138000", callbackUrl: b64(`${hook.url}?cbkId={cbkId}`) })
      expect(ok.code).toBe(0)
      for (const url of ["http://10.1.2.3:8080/cb", "https://CRM.example.com/cb"])
        expect((await asAdmin(server, "callbackPhone", { sourcePhone: "02367073578", descPhone: "13800138000", callbackUrl: b64(url) })).code, url).toBe(0)
      await eventually(() => hook.received.some((r) => r.url.includes(`cbkId=${ok.id}`)))
      await healthy(server)
    } finally {
      await server.close()
      await hook.close()
    }
  })

  it("empty (the default) allows any host; a bad entry is refused at start", async () => {
    const server = await startTestServer({ telephony: fast })
    try {
      expect((await asAdmin(server, "callbackPhone", { sourcePhone: "02367073578", descPhone: "13800138000", callbackUrl: b64("http://192.168.1.10/cb") })).code).toBe(0)
    } finally {
      await server.close()
    }
    await expect(startTestServer({ telephony: { ...fast, callbackDelivery: { allowTo: ["10.0.0.0/99"] } } })).rejects.toThrow()
  })
})

describe("a simulated call cut by a stop", () => {
  it("its call record gets a hang-up (INTERRUPTED) at the next start, with its call.hangup event", async () => {
    const dataDir = tempDir()
    const config = await Effect.runPromise(
      loadConfig({
        env: {},
        overrides: {
          port: 0,
          host: "127.0.0.1",
          dataDir,
          logLevel: "error",
          // ringing for an hour: the stop comes first
          telephony: { driver: "simulator", simulator: { outcomes: { answered: 1 }, ringMs: { min: 3_600_000, max: 3_600_000 } } }
        }
      })
    )
    const db = () => new Database(path.join(dataDir, "bridge.db"), { readonly: true })
    const open = () => {
      const d = db()
      try {
        return d.prepare("SELECT cdr_id, hangup_ms, fields FROM cdrs").all() as Array<{ cdr_id: number; hangup_ms: number | null; fields: string }>
      } finally {
        d.close()
      }
    }
    const first = await startServer(config)
    try {
      expect((await asAdmin(first, "callbackPhone", { sourcePhone: "02367073578", descPhone: "13800138000" })).code).toBe(0)
      await eventually(() => open().length === 1)
    } finally {
      await first.close()
    }
    expect(open()[0]!.hangup_ms).toBeNull()
    const second = await startServer(config)
    try {
      const [cdr] = open()
      expect(cdr!.hangup_ms).not.toBeNull()
      expect(JSON.parse(cdr!.fields)).toMatchObject({ cdrHangupReasonCode: "INTERRUPTED", cdrPhoneNum: "13800138000" })
      const d = db()
      const hangups = d.prepare("SELECT count(*) AS n FROM events WHERE type = 'call.hangup'").get() as { n: number }
      d.close()
      expect(hangups.n).toBe(1)
      expect((await fetch(`${second.url}/healthz`)).status).toBe(200)
    } finally {
      await second.close()
    }
    // once: a third start finds nothing more to end
    const third = await startServer(config)
    try {
      const d = db()
      const hangups = d.prepare("SELECT count(*) AS n FROM events WHERE type = 'call.hangup'").get() as { n: number }
      d.close()
      expect(hangups.n).toBe(1)
    } finally {
      await third.close()
    }
  }, 20_000)
})

describe("telephony.box.mac", () => {
  const MAC = "00:1A:2B:3C:4D:8B"
  it("an agent with no box channel of its own is dialled by the configured box; a MAC that is not one is refused at start", async () => {
    const server = await startTestServer({ telephony: { driver: "box", box: { mac: "00-1a-2b-3c-4d-8b" } } })
    try {
      // the box's channel is another agent's
      expect((await asAdmin(server, "addExtension", { exteExtension: "401", extePassword: "agent-pw" })).code).toBe(0)
      expect((await adminApi(server, "POST", "/devices", { mac: MAC, enterprise: "100008", channels: { "3": "100008401" } })).status).toBe(201)
      const answer = await asAdmin(server, "callbackPhone", { sourcePhone: "02367073578", descPhone: "13800138000" })
      expect(answer.code, String(answer.message)).toBe(0)
      const res = await fetch(`${server.url}/voip/upload_record`, { method: "POST", body: new URLSearchParams({ cmd: "getCallList", satellite: MAC }) })
      expect(await res.json()).toMatchObject({ status: 0, data: [expect.objectContaining({ mdcWan: "3", phone: "13800138000" })] })
      await healthy(server)
    } finally {
      await server.close()
    }
    await expect(startTestServer({ telephony: { driver: "box", box: { mac: "not-a-mac" } } })).rejects.toThrow()
  })
})
