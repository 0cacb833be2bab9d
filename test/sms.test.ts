/**
 * smsSend (§2.2.3), verification codes by SMS (§2.11.6–2.11.7) and proxy dialling (§2.2.5
 * setIvrDialing) over real HTTP: what is recorded, what is refused, what reaches a target.
 */
import * as path from "node:path"
import Database from "better-sqlite3"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { proxyDialFor } from "../src/ivr/IvrDialing.js"
import { addEnterpriseAdmin } from "./support/Enterprises.js"
import { eventually, startReceiver } from "./support/Receiver.js"
import { asAdmin, callApi, creds, startTestServer, type TestServer } from "./support/TestServer.js"

type Event = { type: string; source: string; data: Record<string, unknown> }
const other = creds("200008800", "other-pw")
const agent = creds("100008402", "agent-pw")

let server: TestServer
let rx: Awaited<ReturnType<typeof startReceiver>>

beforeAll(async () => {
  rx = await startReceiver()
  server = await startTestServer({
    forwarding: { pollIntervalMs: 50, circuitThreshold: 100, circuitCooldownMs: 100, retentionDays: 30 },
    targets: [{ name: "gateway", url: rx.url, events: ["sms.*", "verification.*", "verification.sms", "ivr.*"] }],
    verification: { codeLength: 6, ttlMs: 60_000, maxAttempts: 3, resendAfterMs: 500 }
  })
  await addEnterpriseAdmin(server, "200008800", "other-pw")
  expect((await asAdmin(server, "addExtension", { exteExtension: "402", extePassword: "agent-pw" })).code).toBe(0)
})
afterAll(async () => {
  await server.close()
  await rx.close()
})

const events = (type: string) => rx.received.map((r) => JSON.parse(r.body) as Event).filter((e) => e.type === type)
const rows = <A>(query: string, ...args: ReadonlyArray<unknown>) => {
  const db = new Database(path.join(server.dataDir, "bridge.db"), { readonly: true })
  try {
    return db.prepare(query).all(...args) as Array<A>
  } finally {
    db.close()
  }
}
/** The code in the last SMS sent to `phone`: what the SMS provider would have delivered (its own event, verification.sms). */
const codeSentTo = async (phone: string) => {
  const sms = await eventually(() => events("verification.sms").filter((e) => e.data.phone === phone && e.source === "api:sendCallAgiPhoneSms").at(-1))
  return /验证码：(\d+)/.exec(String(sms.data.content))![1]!
}

describe("smsSend", () => {
  it("records one SMS per number with the batch, raises sms.added for each, and answers the batch", async () => {
    const a = await asAdmin(server, "smsSend", { phoneNum: "13800000001,138-0000-0002，13800000001", memo: "您的快递已到，请到前台领取。" }, "form")
    expect(a.code).toBe(0)
    const listId = a.listId as number
    expect(typeof listId).toBe("number")
    const stored = rows<{ phone: string; kind: number; content: string; extension: string }>(`SELECT phone, kind, content, extension FROM sms_records WHERE list_id = ? ORDER BY phone`, listId)
    expect(stored).toEqual([
      { phone: "13800000001", kind: 3, content: "您的快递已到，请到前台领取。", extension: "100008800" },
      { phone: "13800000002", kind: 3, content: "您的快递已到，请到前台领取。", extension: "100008800" }
    ])
    const sent = await eventually(() => {
      const e = events("sms.added").filter((x) => x.data.listId === listId)
      return e.length === 2 && e
    })
    expect(sent.map((e) => e.data.phone).sort()).toEqual(["13800000001", "13800000002"])
    expect(sent[0]).toMatchObject({ source: "api:smsSend", data: { outgoing: true, kind: 3 } })
    // the caller's own batch number is kept
    expect(await asAdmin(server, "smsSend", { phoneNum: "13800000003", memo: "x", listId: "77" }, "form")).toMatchObject({ code: 0, listId: 77 })
  })

  it("refuses more than 70 characters (-12), a bad number or an empty text (-14), storing nothing", async () => {
    const before = rows<{ n: number }>(`SELECT count(*) AS n FROM sms_records`)[0]!.n
    expect(await asAdmin(server, "smsSend", { phoneNum: "13800000004", memo: "长".repeat(71) }, "form")).toMatchObject({ code: -12 })
    expect(await asAdmin(server, "smsSend", { phoneNum: "13800000004", memo: "长".repeat(70) }, "form")).toMatchObject({ code: 0 })
    expect(await asAdmin(server, "smsSend", { phoneNum: "13800000004,not-a-number", memo: "x" }, "form")).toMatchObject({ code: -14 })
    expect(await asAdmin(server, "smsSend", { phoneNum: "13800000004", memo: "   " }, "form")).toMatchObject({ code: -14 })
    expect(await asAdmin(server, "smsSend", { memo: "x" }, "form")).toMatchObject({ code: -14 })
    expect(rows<{ n: number }>(`SELECT count(*) AS n FROM sms_records`)[0]!.n).toBe(before + 1)
  })
})

describe("verification codes by SMS", () => {
  it("sends a code by SMS, accepts it once, and raises verification.sent / verification.passed", async () => {
    expect(await asAdmin(server, "sendCallAgiPhoneSms", { phone: "13911110001" })).toMatchObject({ code: 0 })
    const code = await codeSentTo("13911110001")
    expect(code).toMatch(/^\d{6}$/)
    // only a hash is kept
    expect(JSON.stringify(rows(`SELECT * FROM verification_codes`))).not.toContain(code)
    // the number however written
    expect(await asAdmin(server, "CallAgiverificationCode", { phone: "+86 139-1111-0001", vtCode: code })).toMatchObject({ code: 0 })
    expect(await asAdmin(server, "CallAgiverificationCode", { phone: "13911110001", vtCode: code })).toMatchObject({ code: -11 })
    expect((await eventually(() => events("verification.passed")[0])).data).toMatchObject({ phone: "+8613911110001" })
    expect(events("verification.sent")[0]!.data).toMatchObject({ phone: "13911110001", expiresAt: expect.any(Number) })
  })

  it("a wrong code is -14 with the attempts left; the last wrong one voids the code (-12); a new one is then needed", async () => {
    expect(await asAdmin(server, "sendCallAgiPhoneSms", { phone: "13911110002" })).toMatchObject({ code: 0 })
    const code = await codeSentTo("13911110002")
    const wrong = code === "000000" ? "111111" : "000000"
    expect(await asAdmin(server, "CallAgiverificationCode", { phone: "13911110002", vtCode: wrong })).toMatchObject({ code: -14, message: expect.stringContaining("2 attempt") })
    expect(await asAdmin(server, "CallAgiverificationCode", { phone: "13911110002", vtCode: wrong })).toMatchObject({ code: -14 })
    expect(await asAdmin(server, "CallAgiverificationCode", { phone: "13911110002", vtCode: wrong })).toMatchObject({ code: -12 })
    // the right code no longer works: nothing is pending
    expect(await asAdmin(server, "CallAgiverificationCode", { phone: "13911110002", vtCode: code })).toMatchObject({ code: -11 })
    expect((await eventually(() => events("verification.failed")[0])).data).toMatchObject({ phone: "13911110002", attempts: 3 })
  })

  it("asking again too soon is -12; after resendAfterMs a new code replaces the old one", async () => {
    expect(await asAdmin(server, "sendCallAgiPhoneSms", { phone: "13911110003" })).toMatchObject({ code: 0 })
    const first = await codeSentTo("13911110003")
    expect(await asAdmin(server, "sendCallAgiPhoneSms", { phone: "13911110003" })).toMatchObject({ code: -12 })
    await new Promise((r) => setTimeout(r, 600))
    expect(await asAdmin(server, "sendCallAgiPhoneSms", { phone: "13911110003" })).toMatchObject({ code: 0 })
    const second = await eventually(async () => {
      const c = await codeSentTo("13911110003")
      return events("sms.added").filter((e) => e.data.phone === "13911110003").length === 2 && c
    })
    if (first !== second) expect(await asAdmin(server, "CallAgiverificationCode", { phone: "13911110003", vtCode: first })).toMatchObject({ code: -14 })
    expect(await asAdmin(server, "CallAgiverificationCode", { phone: "13911110003", vtCode: second })).toMatchObject({ code: 0 })
  })

  it("an expired code is -11; a code is the enterprise's own; bad input is -14", async () => {
    const s = await startTestServer({ verification: { codeLength: 4, ttlMs: 200, maxAttempts: 3, resendAfterMs: 0 } })
    try {
      expect(await asAdmin(s, "sendCallAgiPhoneSms", { phone: "13911110004" })).toMatchObject({ code: 0 })
      const db = new Database(path.join(s.dataDir, "bridge.db"), { readonly: true })
      // the code in clear is only in the SMS gateway's event (the SMS record holds it masked)
      const content = (JSON.parse((db.prepare(`SELECT data FROM events WHERE type = 'verification.sms' ORDER BY id DESC LIMIT 1`).get() as { data: string }).data) as { content: string }).content
      db.close()
      const code = /验证码：(\d{4})/.exec(content)![1]!
      await new Promise((r) => setTimeout(r, 300))
      expect(await asAdmin(s, "CallAgiverificationCode", { phone: "13911110004", vtCode: code })).toMatchObject({ code: -11 })
    } finally {
      await s.close()
    }
    expect(await asAdmin(server, "sendCallAgiPhoneSms", { phone: "13911110005" })).toMatchObject({ code: 0 })
    const code = await codeSentTo("13911110005")
    expect(await callApi(server, { ...other, method: "CallAgiverificationCode", phone: "13911110005", vtCode: code })).toMatchObject({ code: -11 })
    const bads: Array<Record<string, string>> = [{ phone: "13911110005", vtCode: "12" }, { phone: "13911110005", vtCode: "12ab56" }, { phone: "x", vtCode: "123456" }, { vtCode: "123456" }]
    for (const bad of bads)
      expect(await asAdmin(server, "CallAgiverificationCode", bad), JSON.stringify(bad)).toMatchObject({ code: -14 })
    expect(await asAdmin(server, "CallAgiverificationCode", { phone: "13911110005", vtCode: code })).toMatchObject({ code: 0 })
  })
})

describe("setIvrDialing: proxy dialling", () => {
  it("sets (and replaces) what to dial when a source calls a destination, for saveTimes seconds; administrators only", async () => {
    expect(await asAdmin(server, "setIvrDialing", { sourcePhone: "13800001111", descPhone: "02363846384", dialPhone: "13900002222" })).toMatchObject({ code: 0 })
    const lookup = (source: string, dest: string, comp = "100008") => server.runtime.runPromise(proxyDialFor(comp, source, dest))
    expect(await lookup("+86 138-0000-1111", "023-63846384")).toBe("13900002222")
    expect(await lookup("13800001111", "02363846384", "200008")).toBeUndefined()
    expect(await asAdmin(server, "setIvrDialing", { sourcePhone: "13800001111", descPhone: "02363846384", dialPhone: "13900003333", saveTimes: "1" })).toMatchObject({ code: 0 })
    expect(await lookup("13800001111", "02363846384")).toBe("13900003333")
    await new Promise((r) => setTimeout(r, 1100))
    expect(await lookup("13800001111", "02363846384")).toBeUndefined()
    expect((await eventually(() => events("ivr.dialing.set")[1])).data).toMatchObject({ sourcePhone: "13800001111", dialPhone: "13900003333", by: "100008800" })

    expect(await callApi(server, { ...agent, method: "setIvrDialing", sourcePhone: "13800001111", descPhone: "02363846384", dialPhone: "13900004444" })).toMatchObject({ code: -5 })
    const bads: Array<Record<string, string>> = [
      { sourcePhone: "x", descPhone: "1", dialPhone: "1" },
      { sourcePhone: "13800001111", descPhone: "02363846384", dialPhone: "13900004444", saveTimes: "0" },
      { sourcePhone: "13800001111", descPhone: "02363846384" }
    ]
    for (const bad of bads)
      expect(await asAdmin(server, "setIvrDialing", bad), JSON.stringify(bad)).toMatchObject({ code: -14 })
    expect(await lookup("13800001111", "02363846384")).toBeUndefined()
  })
})
