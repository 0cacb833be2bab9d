/**
 * Telephony actions on a driver (issue 13 items 1, 2, 3, 7): callbackPhone on the simulator —
 * status pushes at the callback URL (retried, dead-lettered), the call record in findDialrecord,
 * its recording, the events; getCallbackList; phoneAudit / getPhoneAudit; blacklisted numbers;
 * the upstream driver against a fake platform. Real server, real HTTP, real SQLite.
 */
import * as http from "node:http"
import * as path from "node:path"
import Database from "better-sqlite3"
import { Effect, Exit } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { loadConfig } from "../src/config/AppConfig.js"
import { startServer } from "../src/http/Server.js"
import { adminApi } from "./support/AdminApi.js"
import { eventually, startReceiver } from "./support/Receiver.js"
import { ADMIN, asAdmin, md5, startTestServer, tempDir, type TestServer } from "./support/TestServer.js"

const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64")
const fields = (body: string) => Object.fromEntries(new URLSearchParams(body))
const alive = async (s: TestServer) => expect((await fetch(`${s.url}/healthz`)).status).toBe(200)
const count = (s: TestServer, table: string) => {
  const db = new Database(path.join(s.dataDir, "bridge.db"), { readonly: true })
  try {
    return (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n
  } finally {
    db.close()
  }
}

/** Every cbk* field of §2.3.1 / §2.3.2. */
const CBK_FIELDS = [
  "cbkId", "cbk_exteId", "cbkSourcePhone", "cbkDescPhone", "cbkStatus", "cbkCreateTime", "cbkBeginTime", "cbkSuccessTime", "cbkEndTime", "cbkTimes",
  "cbkTransferSuccessTime", "cbkTransferEndTime", "cbkTransferTimes", "cbkResultCode", "cbkErrorCode", "cbkWavFile", "cbkExtension", "cbkType", "cbkUrl"
]
const TIME = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/
// a fast, certain simulator: every leg answered, 20 s of talk played in 20 ms
const fast = (outcomes: Record<string, number>) => ({
  driver: "simulator",
  simulator: { speed: 1000, outcomes, ringMs: { min: 3000, max: 3000 }, talkMs: { min: 20_000, max: 20_000 } },
  callbackDelivery: { timeoutMs: 2000, scheduleMs: [0, 50, 50] }
})

describe("callbacks on the simulator", () => {
  let server: TestServer
  let crm: Awaited<ReturnType<typeof startReceiver>>
  let hooks: Awaited<ReturnType<typeof startReceiver>>

  beforeAll(async () => {
    crm = await startReceiver()
    hooks = await startReceiver()
    server = await startTestServer({
      forwarding: { pollIntervalMs: 50, circuitThreshold: 50, circuitCooldownMs: 300, retentionDays: 30 },
      targets: [{ name: "crm", url: crm.url, events: ["call.*", "callback.*", "phoneaudit.*"] }],
      telephony: fast({ answered: 1 })
    })
  })
  afterAll(async () => {
    await server.close()
    await crm.close()
    await hooks.close()
  })

  it("callbackPhone → id; each status change pushed to the callback URL with every cbk* field; the call record in findDialrecord; its WAV", async () => {
    const answer = await asAdmin(server, "callbackPhone", { sourcePhone: "02367073578", descPhone: "13800138000", callbackUrl: b64(`${hooks.url}?cbkId={cbkId}`) }, "form")
    expect(answer).toMatchObject({ code: 0, message: "OK" })
    const id = answer.id as number
    expect(Number.isSafeInteger(id)).toBe(true)

    // 0 created, 1 calling, 4 the source answered, 5 the customer answered the transfer, then the hang-up
    const pushes = await eventually(() => (hooks.received.length >= 5 ? hooks.received : undefined), 10_000, () => hooks.received.map((r) => r.body))
    for (const p of pushes) {
      expect(p.method).toBe("POST")
      expect(p.url).toBe(`/hook?cbkId=${id}`)
      expect(p.headers["content-type"]).toBe("application/x-www-form-urlencoded")
    }
    const bodies = pushes.map((p) => fields(p.body))
    expect(bodies.map((b) => b.cbkStatus)).toEqual(["0", "1", "4", "5", "5"])
    const last = bodies[4]!
    // a field with no value yet (null) is left out of a form: the last push has every one
    for (const f of CBK_FIELDS) expect(Object.keys(last)).toContain(f)
    expect(last).toMatchObject({
      cbkId: String(id),
      cbkSourcePhone: "02367073578",
      cbkDescPhone: "13800138000",
      cbkExtension: ADMIN.user,
      cbkType: "0",
      cbkTimes: "23",
      cbkTransferTimes: "20",
      cbkResultCode: "NORMAL_CLEARING",
      cbkErrorCode: "",
      cbkUrl: `${hooks.url}?cbkId=${id}`
    })
    for (const f of ["cbkCreateTime", "cbkBeginTime", "cbkSuccessTime", "cbkEndTime", "cbkTransferSuccessTime", "cbkTransferEndTime"]) expect(last[f]).toMatch(TIME)
    expect(bodies[0]!.cbkBeginTime).toBeUndefined()
    expect(last.cbkWavFile).toMatch(/^100008\/sim\/\d{6}\/\d{2}\/sim-\d+\.wav$/)
    // the order of the simulated timeline: ring 3 s, answered, ring 3 s, transferred, 20 s talk
    const ms = (t: string) => new Date(t.replace(" ", "T") + "Z").getTime()
    expect(ms(last.cbkSuccessTime!) - ms(last.cbkBeginTime!)).toBe(3000)
    expect(ms(last.cbkTransferSuccessTime!) - ms(last.cbkSuccessTime!)).toBe(3000)
    expect(ms(last.cbkEndTime!) - ms(last.cbkTransferSuccessTime!)).toBe(20_000)
    // the same webhook-id never for two pushes: each status is its own delivery
    expect(new Set(pushes.map((p) => p.headers["webhook-id"])).size).toBe(5)

    // the call record, written by the same ingest as a platform push
    const dial = await asAdmin(server, "findDialrecord", { phoneNum: "13800138000" })
    expect(dial).toMatchObject({ code: 0, total: 1 })
    const [cdr] = dial.rows as Array<Record<string, unknown>>
    expect(cdr).toMatchObject({
      cdrExtension: ADMIN.user,
      cdrPhoneNum: "13800138000",
      cdrLastPhoneNum: "13800138000",
      cdrPeer: 1,
      cdrTalktime: 23,
      cdrCmmId: String(id),
      cdrTrunkRoute: "simulator",
      cdrHangupReasonCode: "NORMAL_CLEARING",
      cdrRecordFile: last.cbkWavFile
    })
    expect(cdr!.cdrStartTime).toBe(last.cbkBeginTime)
    expect(cdr!.cdrHangupTime).toBe(last.cbkEndTime)

    // the recording: a real WAV, downloadable by path and by the call record's id
    const wav = await fetch(`${server.url}/voip/record/${last.cbkWavFile}?sa_user=${ADMIN.user}&sa_password=${md5(ADMIN.password)}`)
    expect(wav.status).toBe(200)
    const bytes = Buffer.from(await wav.arrayBuffer())
    expect(bytes.subarray(0, 4).toString("ascii")).toBe("RIFF")
    expect(bytes.subarray(8, 12).toString("ascii")).toBe("WAVE")

    // the same events a platform push raises, at a target
    const events = await eventually(() => {
      const types = crm.received.map((r) => (JSON.parse(r.body) as { type: string }).type)
      return types.includes("call.recording") && types.filter((t) => t === "callback.status").length === 5 ? types : undefined
    })
    expect(events.filter((t) => t.startsWith("call."))).toEqual(["call.dialing", "call.answered", "call.hangup", "call.recording"])
    const hangup = crm.received.map((r) => JSON.parse(r.body) as { type: string; source: string; data: { memo: Record<string, unknown> } }).find((e) => e.type === "call.hangup")!
    expect(hangup.source).toBe("telephony:simulator")
    expect(hangup.data.memo).toMatchObject({ cdrCmmId: String(id), cdrTalktime: 23, cdrPhoneNum: "13800138000" })
  })

  it("getCallbackList: every cbk* field, filtered by id, extension and time, paged", async () => {
    const second = await asAdmin(server, "callbackPhone", { sourcePhone: "02367073578", descPhone: "13800138001" })
    expect(second.code).toBe(0)
    const all = await eventually(async () => {
      const a = await asAdmin(server, "getCallbackList", { start: "0", limit: "25" })
      return (a.rows as Array<Record<string, unknown>>).every((r) => r.cbkEndTime !== null) && a.total === 2 ? a : undefined
    })
    expect(all).toMatchObject({ code: 0, total: 2 })
    const rows = all.rows as Array<Record<string, unknown>>
    expect(rows[0]!.cbkId).toBe(second.id)
    for (const r of rows) expect(Object.keys(r).sort()).toEqual([...CBK_FIELDS].sort())
    expect(rows[0]).toMatchObject({ cbkStatus: 5, cbkUrl: "", cbkTimes: 23, cbkTransferTimes: 20, cbkType: 0, cbkExtension: ADMIN.user })
    expect(typeof rows[0]!.cbk_exteId).toBe("number")

    const byId = await asAdmin(server, "getCallbackList", { start: "0", limit: "25", id: String(second.id) })
    expect(byId).toMatchObject({ code: 0, total: 1, rows: [expect.objectContaining({ cbkDescPhone: "13800138001" })] })
    const paged = await asAdmin(server, "getCallbackList", { start: "1", limit: "1" })
    expect(paged).toMatchObject({ total: 2, rows: [expect.objectContaining({ cbkDescPhone: "13800138000" })] })
    expect(await asAdmin(server, "getCallbackList", { start: "0", limit: "25", extension: "100008801" })).toMatchObject({ code: 0, total: 0, rows: [] })
    expect(await asAdmin(server, "getCallbackList", { start: "0", limit: "25", startTime: "2000-01-01 00:00:00", endTime: "2001-01-01 00:00:00" })).toMatchObject({ total: 0 })
    expect(await asAdmin(server, "getCallbackList", { start: "0", limit: "25", startTime: "2001-01-01 00:00:00", endTime: "2000-01-01 00:00:00" })).toMatchObject({ code: -14 })
    expect(await asAdmin(server, "getCallbackList", { start: "0", limit: "100000" })).toMatchObject({ code: -12 })
  })

  it("a blacklisted number is refused (-5 naming the parameter), nothing stored, nothing rung", async () => {
    expect((await asAdmin(server, "addBlacklists", { phones: "13900000099" })).code).toBe(0)
    const before = { callbacks: count(server, "callbacks"), cdrs: count(server, "cdrs"), audits: count(server, "phone_audits") }
    const refused = await asAdmin(server, "callbackPhone", { sourcePhone: "02367073578", descPhone: "13900000099", callbackUrl: b64(`${hooks.url}?cbkId={cbkId}`) })
    expect(refused).toMatchObject({ code: -5, httpStatus: 200 })
    expect(refused.message).toMatch(/descPhone.*13900000099.*blacklist/)
    expect(await asAdmin(server, "phoneAudit", { yzm: "1234", type: "1", phone: "013900000099" })).toMatchObject({ code: -5 })
    expect(await asAdmin(server, "sendTelCall", { mac: "00:1A:2B:3C:4D:7F", channel: "1", phone: "13900000099" })).toMatchObject({ code: -5 })
    await alive(server)
    await new Promise((r) => setTimeout(r, 200))
    expect({ callbacks: count(server, "callbacks"), cdrs: count(server, "cdrs"), audits: count(server, "phone_audits") }).toEqual(before)
  })

  it("a callback URL that fails is retried with the same webhook-id, then delivered; one that keeps failing is a dead letter with its URL", async () => {
    const flaky = await startReceiver((_, n) => ({ status: n <= 2 ? 503 : 200 }))
    const down = await startReceiver(() => ({ status: 500 }))
    try {
      const a = await asAdmin(server, "callbackPhone", { sourcePhone: "02367073578", descPhone: "13800138002", callbackUrl: b64(`${flaky.url}?id={cbkId}`) })
      const b = await asAdmin(server, "callbackPhone", { sourcePhone: "02367073578", descPhone: "13800138003", callbackUrl: b64(`${down.url}?id={cbkId}`) })
      expect([a.code, b.code]).toEqual([0, 0])
      // the first status tried three times (503, 503, 200) before the next goes: a callback's pushes keep their order
      const got = await eventually(() => (flaky.received.filter((r) => r.headers["webhook-id"] === flaky.received[0]!.headers["webhook-id"]).length === 3 && flaky.received.length >= 7 ? flaky.received : undefined))
      expect(got.slice(0, 3).map((r) => fields(r.body).cbkStatus)).toEqual(["0", "0", "0"])
      expect(got.slice(2).map((r) => fields(r.body).cbkStatus)).toEqual(["0", "1", "4", "5", "5"])
      // always 500: three attempts (the schedule), a dead letter — the later statuses wait behind it, in order
      const dead = await eventually(async () => {
        const page = await adminApi(server, "GET", `/dead-letters?target=${encodeURIComponent("$adhoc")}`)
        const items = (page.body.items ?? []) as Array<Record<string, unknown>>
        return items.length >= 1 ? items : undefined
      })
      expect(down.received.length).toBe(3)
      expect(dead[0]).toMatchObject({ target: "$adhoc", url: `${down.url}?id=${b.id}`, reason: "exhausted" })
      expect(dead[0]!.attempts).toHaveLength(3)
      await alive(server)
    } finally {
      await flaky.close()
      await down.close()
    }
  })

  it("phoneAudit → id and yzm; getPhoneAudit answers every ws* field, filtered and paged", async () => {
    const answer = await asAdmin(server, "phoneAudit", { yzm: "我的验证码是 4321", type: "3", phone: "13002367525", isRecord: "2", commandNo: "6001", ws_wlstConnectId: "778899" })
    expect(answer).toMatchObject({ code: 0, success: true, yzm: "我的验证码是 4321" })
    const id = answer.id as number
    expect(await asAdmin(server, "phoneAudit", { yzm: "12a4", type: "1", phone: "13002367525" })).toMatchObject({ code: -14 })
    const done = await eventually(async () => {
      const a = await asAdmin(server, "getPhoneAudit", { id: String(id) })
      const [row] = a.rows as Array<Record<string, unknown>>
      return row?.wsEndTime ? a : undefined
    })
    expect(done).toMatchObject({ code: 0, total: 1 })
    const row = (done.rows as Array<Record<string, unknown>>)[0]!
    expect(Object.keys(row).sort()).toEqual(
      ["wsId", "wsStatus", "wsTalkTimes", "wsPhone", "wsCreateTime", "wsBeginTime", "wsSuccessTime", "wsEndTime", "ws_exteId", "wsValue", "wsType", "wsRecordPath", "WsResultKey", "ws_tyConnectId", "wsSipRound", "wsShowPhone"].sort()
    )
    expect(row).toMatchObject({
      wsId: id,
      wsStatus: 4,
      wsPhone: "13002367525",
      wsValue: "我的验证码是 4321",
      wsType: 3,
      ws_tyConnectId: "778899",
      wsSipRound: "simulator",
      wsShowPhone: "4008000000",
      WsResultKey: ""
    })
    // the code said twice: 2 s and a second a character (11)
    expect(row.wsTalkTimes).toBe(13)
    for (const f of ["wsCreateTime", "wsBeginTime", "wsSuccessTime", "wsEndTime"]) expect(row[f]).toMatch(TIME)
    expect(row.wsRecordPath).toMatch(/^100008\/sim\/.*\.wav$/)

    expect(await asAdmin(server, "getPhoneAudit", { status: "3,5" })).toMatchObject({ code: 0, total: 0 })
    expect(await asAdmin(server, "getPhoneAudit", { status: "4", sipShowPhone: "0" })).toMatchObject({ total: 1, rows: [expect.objectContaining({ wsShowPhone: "" })] })
    expect(await asAdmin(server, "getPhoneAudit", { page: "2", rows: "1" })).toMatchObject({ total: 1, rows: [] })
    expect(await asAdmin(server, "getPhoneAudit", { loginId: "100008801" })).toMatchObject({ total: 0 })
    expect(await asAdmin(server, "getPhoneAudit", { status: "4,9" })).toMatchObject({ code: -14 })
    const events = await eventually(() => {
      const audits = crm.received.map((r) => JSON.parse(r.body) as { type: string; data: Record<string, unknown> }).filter((e) => e.type === "phoneaudit.status" && e.data.wsId === id)
      return audits.length >= 3 ? audits : undefined
    })
    expect(events.map((e) => e.data.wsStatus)).toEqual([0, 1, 4, 4])
  })
})

describe("outcomes on the simulator", () => {
  it("a busy customer: status 3 with the cause, no talk, no recording", async () => {
    const hooks = await startReceiver()
    const server = await startTestServer({ forwarding: { pollIntervalMs: 50, circuitThreshold: 5, circuitCooldownMs: 300, retentionDays: 30 }, telephony: fast({ busy: 1 }) })
    try {
      const answer = await asAdmin(server, "callbackPhone", { sourcePhone: "02367073578", descPhone: "13800138000", callbackUrl: b64(`${hooks.url}?cbkId={cbkId}`) })
      expect(answer.code).toBe(0)
      const pushes = await eventually(() => (hooks.received.length >= 3 ? hooks.received.map((r) => fields(r.body)) : undefined))
      expect(pushes.map((p) => p.cbkStatus)).toEqual(["0", "1", "3"])
      expect(pushes[2]).toMatchObject({ cbkResultCode: "USER_BUSY", cbkErrorCode: "486", cbkTimes: "0", cbkWavFile: "" })
      expect(pushes[2]!.cbkSuccessTime).toBeUndefined()
      const dial = await asAdmin(server, "findDialrecord", {})
      expect(dial).toMatchObject({ total: 1, rows: [expect.objectContaining({ cdrTalktime: 0, cdrRecordFile: "", cdrHangupReasonCode: "USER_BUSY" })] })
    } finally {
      await server.close()
      await hooks.close()
    }
  })
})

/** A small 800ing platform: answers jsondata calls as told, remembers what it was sent. */
const fakePlatform = (answer: (params: URLSearchParams) => { status: number; body: string }) =>
  new Promise<{ url: string; calls: Array<URLSearchParams>; close: () => Promise<void> }>((resolve) => {
    const calls: Array<URLSearchParams> = []
    const server = http.createServer((req, res) => {
      let body = ""
      req.on("data", (c: Buffer) => (body += c.toString("utf8")))
      req.on("end", () => {
        const params = new URLSearchParams(body)
        calls.push(params)
        const a = answer(params)
        res.writeHead(a.status, { "content-type": "application/json" }).end(a.body)
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number }
      resolve({
        url: `http://127.0.0.1:${port}/voip/api/jsondata.html`,
        calls,
        close: () => new Promise((done) => { server.closeAllConnections(); server.close(() => done()) })
      })
    })
  })

describe("the upstream driver", () => {
  const creds = { sa_user: "100088601", sa_password: "0DCBDF0AA187EA7498D8AB64604096FC" }
  let platform: Awaited<ReturnType<typeof fakePlatform>>
  let server: TestServer
  let down: TestServer

  beforeAll(async () => {
    platform = await fakePlatform((p) =>
      p.get("descPhone") === "13800000500" ? { status: 200, body: `{"code":-14,"message":"bad number"}` } : { status: 200, body: `{"code":0,"message":"OK","id":282982852097151}` }
    )
    server = await startTestServer({ telephony: { driver: "upstream", upstream: { url: platform.url, ...creds, timeoutMs: 2000 } } })
    // a platform that cannot be reached: a port nothing listens on
    down = await startTestServer({ telephony: { driver: "upstream", upstream: { url: "http://127.0.0.1:9/voip/api/jsondata.html", ...creds, timeoutMs: 1000 } } })
  })
  afterAll(async () => {
    await server.close()
    await down.close()
    await platform.close()
  })

  it("relays callbackPhone with the configured credentials and keeps the platform's answer", async () => {
    const url = b64("http://crm.example/cb?cbkId={cbkId}")
    const answer = await asAdmin(server, "callbackPhone", { sourcePhone: "02367073578", descPhone: "13800138000", callbackUrl: url })
    expect(answer.code).toBe(0)
    const sent = platform.calls.at(-1)!
    expect(Object.fromEntries(sent)).toEqual({ method: "callbackPhone", ...creds, sourcePhone: "02367073578", descPhone: "13800138000", callbackUrl: url })
    const db = new Database(path.join(server.dataDir, "bridge.db"), { readonly: true })
    try {
      const row = db.prepare(`SELECT driver, upstream_answer, status FROM callbacks WHERE cbk_id = ?`).get(answer.id) as { driver: string; upstream_answer: string; status: number }
      expect(row).toEqual({ driver: "upstream", status: 0, upstream_answer: `{"code":0,"message":"OK","id":282982852097151}` })
    } finally {
      db.close()
    }
  })

  it("relays phoneAudit and sendTelCall; a coded refusal is -3 with the platform's code", async () => {
    expect(await asAdmin(server, "phoneAudit", { yzm: "1234", type: "1", phone: "13002367525" })).toMatchObject({ code: 0, yzm: "1234" })
    expect(Object.fromEntries(platform.calls.at(-1)!)).toMatchObject({ method: "phoneAudit", yzm: "1234", type: "1", phone: "13002367525", ...creds })
    // the box is the platform's: no local registration is asked for
    expect(await asAdmin(server, "sendTelCall", { mac: "00:1A:2B:3C:4D:5E", channel: "2", phone: "13800138000" })).toMatchObject({ code: 0 })
    expect(Object.fromEntries(platform.calls.at(-1)!)).toMatchObject({ method: "sendTelCall", mac: "00:1A:2B:3C:4D:5E", channel: "2", phone: "13800138000" })
    const before = count(server, "callbacks")
    const refused = await asAdmin(server, "callbackPhone", { sourcePhone: "02367073578", descPhone: "13800000500" })
    expect(refused.code).toBe(-3)
    expect(refused.message).toMatch(/code -14.*bad number/)
    expect(count(server, "callbacks")).toBe(before)
  })

  it("relays smsSend (recorded once the platform said yes) and the verification codes (the platform's own, no local code)", async () => {
    const before = count(server, "sms_records")
    expect(await asAdmin(server, "smsSend", { phoneNum: "13800000001,13800000002", memo: "您好", listId: "9" }, "form")).toMatchObject({ code: 0, listId: 9 })
    expect(Object.fromEntries(platform.calls.at(-1)!)).toMatchObject({ method: "smsSend", phoneNum: "13800000001,13800000002", memo: "您好", listId: "9", ...creds })
    expect(count(server, "sms_records")).toBe(before + 2)
    expect(await asAdmin(server, "sendCallAgiPhoneSms", { phone: "13800000003" })).toMatchObject({ code: 0 })
    expect(Object.fromEntries(platform.calls.at(-1)!)).toMatchObject({ method: "sendCallAgiPhoneSms", phone: "13800000003" })
    expect(await asAdmin(server, "CallAgiverificationCode", { phone: "13800000003", vtCode: "123456" })).toMatchObject({ code: 0 })
    expect(Object.fromEntries(platform.calls.at(-1)!)).toMatchObject({ method: "CallAgiverificationCode", phone: "13800000003", vtCode: "123456" })
    expect(count(server, "verification_codes")).toBe(0)
    // the platform unreachable: -1, no SMS recorded
    const downBefore = count(down, "sms_records")
    expect(await asAdmin(down, "smsSend", { phoneNum: "13800000001", memo: "x" }, "form")).toMatchObject({ code: -1 })
    expect(count(down, "sms_records")).toBe(downBefore)
  })

  it("a platform that cannot be reached is -1, nothing stored, the bridge still serves", async () => {
    expect(await asAdmin(down, "callbackPhone", { sourcePhone: "02367073578", descPhone: "13800138000" })).toMatchObject({ code: -1, httpStatus: 200 })
    expect(await asAdmin(down, "phoneAudit", { yzm: "1234", type: "1", phone: "13002367525" })).toMatchObject({ code: -1 })
    expect(await asAdmin(down, "sendTelCall", { mac: "00:1A:2B:3C:4D:5E", channel: "2", phone: "13800138000" })).toMatchObject({ code: -1 })
    expect([count(down, "callbacks"), count(down, "phone_audits")]).toEqual([0, 0])
    await alive(down)
  })
})

describe("telephony config", () => {
  const load = (telephony: unknown) => Effect.runPromiseExit(loadConfig({ env: {}, overrides: { telephony } }))
  it("defaults to the simulator; refuses an unknown driver, an upstream without its URL, weights that are all 0", async () => {
    const ok = await load({ driver: "simulator" })
    expect(Exit.isSuccess(ok) && ok.value.telephony.simulator.outcomes).toEqual({ answered: 0.7, noAnswer: 0.2, busy: 0.1, failed: 0 })
    const given = await load({ driver: "simulator", simulator: { outcomes: { answered: 1 } } })
    expect(Exit.isSuccess(given) && given.value.telephony.simulator.outcomes).toEqual({ answered: 1, noAnswer: 0, busy: 0, failed: 0 })
    for (const bad of [{ driver: "pbx" }, { driver: "upstream" }, { driver: "simulator", simulator: { outcomes: { answered: 0 } } }, { driver: "simulator", simulator: { speed: 0 } }]) {
      const exit = await load(bad)
      expect(Exit.isFailure(exit)).toBe(true)
      expect(JSON.stringify(exit)).toMatch(/telephony/)
    }
  })
})

describe("the box driver", () => {
  const MAC = "00:1A:2B:3C:4D:8A"
  it("a callback is dialled from the agent's own box channel (getCallList), calling from then on; sendTelCall queues as before", async () => {
    const hooks = await startReceiver()
    const server = await startTestServer({
      forwarding: { pollIntervalMs: 50, circuitThreshold: 5, circuitCooldownMs: 300, retentionDays: 30 },
      devices: [{ mac: MAC, enterprise: "100008", channels: { "2": ADMIN.user } }],
      telephony: { driver: "box", callbackDelivery: { scheduleMs: [0, 50] } }
    })
    try {
      const answer = await asAdmin(server, "callbackPhone", { sourcePhone: "02367073578", descPhone: "13800138000", callbackUrl: b64(`${hooks.url}?cbkId={cbkId}`) })
      expect(answer.code).toBe(0)
      const res = await fetch(`${server.url}/voip/upload_record`, { method: "POST", body: new URLSearchParams({ cmd: "getCallList", satellite: MAC }) })
      const polled = (await res.json()) as { status: number; data: Array<Record<string, string>> }
      expect(polled).toMatchObject({ status: 0, data: [expect.objectContaining({ mdcWan: "2", phone: "13800138000", status: "0" })] })
      const pushes = await eventually(() => (hooks.received.length >= 2 ? hooks.received.map((r) => fields(r.body)) : undefined))
      expect(pushes.map((p) => p.cbkStatus)).toEqual(["0", "1"])
      expect(await asAdmin(server, "sendTelCall", { mac: MAC, channel: "2", phone: "13800138009" })).toMatchObject({ code: 0 })
      expect(await asAdmin(server, "sendTelCall", { mac: "00:1A:2B:3C:4D:99", channel: "1", phone: "13800138009" })).toMatchObject({ code: -11 })
    } finally {
      await server.close()
      await hooks.close()
    }
  })

  it("an agent with no box channel of its own: -3, nothing stored", async () => {
    const server = await startTestServer({ devices: [{ mac: MAC, enterprise: "100008", channels: { "2": "100008801" } }], telephony: { driver: "box" } })
    try {
      const refused = await asAdmin(server, "callbackPhone", { sourcePhone: "02367073578", descPhone: "13800138000" })
      expect(refused.code).toBe(-3)
      expect(refused.message).toMatch(/100008800 has none/)
      expect(count(server, "callbacks")).toBe(0)
      await alive(server)
    } finally {
      await server.close()
    }
  })
})

describe("a stop in the middle of a simulated call", () => {
  it("ends it at the next start (status 3, INTERRUPTED), pushed like any change", async () => {
    const hooks = await startReceiver()
    const dataDir = tempDir()
    // ringing for an hour: the stop comes first
    const config = await Effect.runPromise(
      loadConfig({
        env: {},
        overrides: {
          port: 0,
          host: "127.0.0.1",
          dataDir,
          logLevel: "error",
          forwarding: { pollIntervalMs: 50, circuitThreshold: 5, circuitCooldownMs: 300, retentionDays: 30 },
          telephony: { driver: "simulator", simulator: { outcomes: { answered: 1 }, ringMs: { min: 3_600_000, max: 3_600_000 } }, callbackDelivery: { scheduleMs: [0, 50] } }
        }
      })
    )
    const first = await startServer(config)
    try {
      const answer = await asAdmin(first, "callbackPhone", { sourcePhone: "02367073578", descPhone: "13800138000", callbackUrl: b64(`${hooks.url}?cbkId={cbkId}`) })
      expect(answer.code).toBe(0)
      await eventually(() => hooks.received.length >= 2)
    } finally {
      await first.close()
    }
    const second = await startServer(config)
    try {
      const pushes = await eventually(() => (hooks.received.length >= 3 ? hooks.received.map((r) => fields(r.body)) : undefined))
      expect(pushes.map((p) => p.cbkStatus)).toEqual(["0", "1", "3"])
      expect(pushes[2]).toMatchObject({ cbkResultCode: "INTERRUPTED" })
      expect(pushes[2]!.cbkEndTime).toMatch(TIME)
    } finally {
      await second.close()
      await hooks.close()
    }
  })
})
