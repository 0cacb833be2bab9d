/**
 * Templates: group-chat bots signed the way each service checks, against local stand-ins that
 * check what the real ones do and answer as they do (in-body error codes included); the
 * retries and dead letters follow those answers. OAuth2 for any target against a stand-in
 * token endpoint. The admin API's template list and test-send.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import Database from "better-sqlite3"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { asAdmin, startTestServer, type TestServer } from "./support/TestServer.js"
import { eventually } from "./support/Receiver.js"
import { dingtalkCheck, feishuCheck, slackCheck, startHubSpot, startOAuth, startOdoo, startSalesforce, startStandIn, wecomCheck } from "./support/StandIns.js"

type StandIn = Awaited<ReturnType<typeof startStandIn>>
const fast = { scheduleMs: [0, 60, 120] }
const DING_SECRET = "SEC0a1b2c3d4e5f60718293a4b5c6d7e8f9"
const FEISHU_SECRET = "fS3cr3tFeishu"
const MOBILE = "13900001111"

let server: TestServer
let ding: StandIn, dingEn: StandIn, dingWrong: StandIn, feishu: StandIn, wecom: StandIn, slack: StandIn
let hubspot: Awaited<ReturnType<typeof startHubSpot>>
let sf: Awaited<ReturnType<typeof startSalesforce>>
let odoo: Awaited<ReturnType<typeof startOdoo>>
let oauth: Awaited<ReturnType<typeof startOAuth>>, shortLived: Awaited<ReturnType<typeof startOAuth>>, refreshing: Awaited<ReturnType<typeof startOAuth>>

const adminToken = () => fs.readFileSync(path.join(server.dataDir, "admin-token"), "utf8").trim()
const adminApi = async (method: string, p: string, body?: unknown) => {
  const res = await fetch(`${server.url}/admin/api${p}`, { method, headers: { authorization: `Bearer ${adminToken()}`, "content-type": "application/json" }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) })
  return { status: res.status, body: (await res.json()) as Record<string, unknown> & { items?: Array<Record<string, unknown>> } }
}
const push = async (params: Record<string, string>, pathname = "/api/voip.json") => {
  const res = await fetch(`${server.url}${pathname}`, { method: "POST", body: new URLSearchParams(params) })
  expect(await res.json()).toEqual({ code: 0, message: "OK" })
}
/** A call's hang-up on extension 100008440 (whose mobile is set): talk 0 and inbound is a missed call. */
const hangup = (cdrId: number, talk: number, peer = "2") =>
  push({ type: "3", peer, phone: "13812345678", memo: JSON.stringify({ cdrId, cdrExtension: "100008440", exteName: "前台", cdrTalktime: talk, cdrStartTime: "2026-01-01 09:00:00" }) })
const deliveries = async (target: string) => (await adminApi("GET", `/deliveries?target=${target}`)).body.items ?? []
const bodyOf = (rx: StandIn, i: number) => JSON.parse(rx.received[i]!.body) as Record<string, unknown>

beforeAll(async () => {
  ;[ding, dingEn, dingWrong, wecom, slack] = await Promise.all([
    startStandIn(dingtalkCheck("T1", DING_SECRET)),
    startStandIn(dingtalkCheck("T2", undefined)),
    startStandIn(dingtalkCheck("T3", DING_SECRET)),
    startStandIn(wecomCheck("K1")),
    startStandIn(slackCheck("/services/T0/B0/XYZ"))
  ])
  feishu = await startStandIn(feishuCheck("hook-1", FEISHU_SECRET))
  hubspot = await startHubSpot("pat-na1-test", [{ id: "501", phone: "13855550001" }, { id: "502", mobilephone: "13855550002" }])
  sf = await startSalesforce([
    { Id: "003A00000000001", type: "Contact", Phone: "138 5555-0001" },
    { Id: "00QB00000000001", type: "Lead", Phone: "13855550003" }
  ])
  odoo = await startOdoo("acme", "bot@acme.cn", "odoo-key", [{ id: 7, phone: "13855550001" }, { id: 8, mobile: "13855550003" }])
  oauth = await startOAuth({ clientId: "bridge", clientSecret: "s3cret", expiresIn: 3600 })
  shortLived = await startOAuth({ clientId: "bridge", clientSecret: "s3cret", expiresIn: 1 })
  refreshing = await startOAuth({ clientId: "bridge", clientSecret: "s3cret", refreshToken: "rt-1" })
  server = await startTestServer({
    forwarding: { pollIntervalMs: 50, circuitThreshold: 50, circuitCooldownMs: 300 },
    targets: [
      { name: "ding", template: "dingtalk", url: `${ding.base}/robot/send?access_token=T1`, secret: DING_SECRET, events: ["call.hangup"], settings: { calls: "missed" }, retry: fast },
      { name: "ding-en", template: "dingtalk", url: `${dingEn.base}/robot/send?access_token=T2`, events: ["call.hangup"], settings: { language: "en", message: "text", prefix: "[Phones] " }, retry: fast },
      { name: "ding-wrong", template: "dingtalk", url: `${dingWrong.base}/robot/send?access_token=T3`, secret: "SECnotthesecret", events: ["call.hangup"], retry: fast },
      { name: "feishu", template: "feishu", url: `${feishu.base}/open-apis/bot/v2/hook/hook-1`, secret: FEISHU_SECRET, events: ["workorder.*"], retry: fast },
      { name: "wecom", template: "wecom", url: `${wecom.base}/cgi-bin/webhook/send?key=K1`, events: ["callback.status"], settings: { message: "text" }, retry: fast },
      { name: "slack", template: "slack", url: `${slack.base}/services/T0/B0/XYZ`, events: ["delivery.exhausted"], retry: fast },
      { name: "hubspot", template: "hubspot", url: hubspot.base, secret: "pat-na1-test", events: ["call.hangup"], settings: { recordingBaseUrl: "https://bridge.example.com/voip/record/" }, retry: fast },
      { name: "hubspot-known", template: "hubspot", url: hubspot.base, secret: "pat-na1-test", events: ["call.hangup"], settings: { unmatched: "skip" }, retry: fast },
      { name: "hubspot-badkey", template: "hubspot", url: hubspot.base, secret: "pat-na1-revoked", events: ["call.hangup"], retry: fast },
      {
        name: "salesforce",
        template: "salesforce",
        url: sf.api.base,
        auth: { type: "oauth2", grant: "client_credentials", tokenUrl: `${sf.tokenEndpoint.base}/services/oauth2/token`, clientId: "sf-client", clientSecret: "sf-secret" },
        events: ["call.hangup"],
        settings: { language: "en" },
        retry: fast
      },
      { name: "odoo", template: "odoo", url: odoo.base, secret: "odoo-key", settings: { database: "acme", login: "bot@acme.cn" }, events: ["call.hangup"], retry: fast },
      { name: "odoo-badkey", template: "odoo", url: odoo.base, secret: "not-the-key", settings: { database: "acme", login: "bot@acme.cn" }, events: ["call.hangup"], retry: fast },
      {
        name: "crm-cc",
        url: `${oauth.api.base}/calls`,
        events: ["call.answered"],
        auth: { type: "oauth2", grant: "client_credentials", tokenUrl: `${oauth.tokenEndpoint.base}/token`, clientId: "bridge", clientSecret: "s3cret", clientAuth: "basic" },
        retry: fast
      },
      {
        name: "crm-short",
        url: `${shortLived.api.base}/calls`,
        events: ["callback.status"],
        auth: { type: "oauth2", grant: "client_credentials", tokenUrl: `${shortLived.tokenEndpoint.base}/token`, clientId: "bridge", clientSecret: "s3cret", scope: "calls.write" },
        retry: fast
      },
      {
        name: "crm-rt",
        url: `${refreshing.api.base}/calls`,
        events: ["call.recording"],
        auth: { type: "oauth2", grant: "refresh_token", tokenUrl: `${refreshing.tokenEndpoint.base}/token`, clientId: "bridge", refreshToken: "rt-1" },
        retry: fast
      }
    ]
  })
  const { exteId } = await asAdmin(server, "addExtension", { exteExtension: "440", extePassword: "m", exteName: "前台" })
  expect((await asAdmin(server, "setExteMobile", { exteId: String(exteId), phone: MOBILE })).code).toBe(0)
})
afterAll(async () => {
  await server.close()
  for (const s of [ding, dingEn, dingWrong, feishu, wecom, slack, hubspot]) await s.close()
  await oauth.close()
  await refreshing.close()
  await shortLived.close()
  await sf.close()
  await odoo.close()
})

describe("DingTalk custom robot", () => {
  it("signs a missed call the way DingTalk checks it, @-mentions the extension's mobile, and skips answered calls (settings.calls missed)", async () => {
    await hangup(7001, 0)
    await eventually(() => ding.received.length === 1)
    const sent = ding.received[0]!
    const query = new URL(sent.url, "http://x").searchParams
    expect(Math.abs(Number(query.get("timestamp")) - Date.now())).toBeLessThan(60_000)
    // the stand-in answered errcode 0 only because the signature and timestamp held
    const body = bodyOf(ding, 0)
    expect(body).toMatchObject({ msgtype: "markdown", markdown: { title: "未接来电" }, at: { atMobiles: [MOBILE], isAtAll: false } })
    expect((body.markdown as { text: string }).text).toContain("13812345678")
    expect((body.markdown as { text: string }).text).toContain(`@${MOBILE}`)
    await eventually(async () => (await deliveries("ding")).some((d) => d.status === "delivered"))

    // an answered call is no missed call: nothing is sent, the delivery is done, its attempt says why
    await hangup(7002, 42)
    const skipped = await eventually(async () => (await deliveries("ding")).find((d) => (d.event as { data: { cdrId: number } }).data.cdrId === 7002 && d.status === "delivered"))
    expect(skipped.attempts).toEqual([expect.objectContaining({ status: null, error: expect.stringContaining("not a missed call") })])
    expect(ding.received).toHaveLength(1)
  })

  it("speaks English when told, as text with the mention", async () => {
    await eventually(() => dingEn.received.length >= 2)
    const missed = dingEn.received.map((r) => JSON.parse(r.body) as { msgtype: string; text: { content: string }; at: { atMobiles: Array<string> } })
    expect(missed[0]).toMatchObject({ msgtype: "text", at: { atMobiles: [MOBILE] } })
    expect(missed[0]!.text.content).toMatch(/^\[Phones\] Missed call\nNumber: 13812345678\nExtension: 100008440 前台/)
    expect(missed[1]!.text.content).toMatch(/^\[Phones\] Call ended\n/)
    expect(missed[1]!.text.content).toContain("Talk time: 42 s")
  })

  it("a wrong signature: DingTalk's errcode 310000 in an HTTP 200 is a dead letter, not a delivery; a dead-letter alert goes to Slack", async () => {
    const dead = await eventually(async () => (await adminApi("GET", "/dead-letters?target=ding-wrong")).body.items?.[0])
    expect(dead).toMatchObject({ reason: "refused", lastError: "errcode 310000: sign not match", attempts: [expect.objectContaining({ status: 200 })] })
    // the stand-in refuses a stale timestamp as DingTalk does
    const stale = Date.now() - 2 * 3_600_000
    const res = await fetch(`${ding.base}/robot/send?access_token=T1&timestamp=${stale}&sign=x`, { method: "POST", body: "{}" })
    expect(await res.json()).toMatchObject({ errcode: 310000 })
    await eventually(() => slack.received.length > 0)
    const alert = JSON.parse(slack.received[0]!.body) as { text: string; blocks: Array<{ text: { type: string; text: string } }> }
    expect(alert.text).toMatch(/^投递失败，已进入死信\n目标: ding-wrong/)
    expect(alert.blocks[0]!.text).toMatchObject({ type: "mrkdwn", text: expect.stringContaining("*投递失败，已进入死信*") })
  })

  it("retries DingTalk's rate limit (errcode 130101) and delivers when it passes", async () => {
    let limited = false
    ding.setAnswer((r) => {
      if (limited) return dingtalkCheck("T1", DING_SECRET)(r)
      limited = true
      return { status: 200, body: JSON.stringify({ errcode: 130101, errmsg: "send too fast, exceed 20 times per minute" }) }
    })
    await hangup(7003, 0)
    const done = await eventually(async () => (await deliveries("ding")).find((d) => (d.event as { data: { cdrId: number } }).data.cdrId === 7003 && d.status === "delivered"))
    expect(done.attempts).toEqual([expect.objectContaining({ status: 200, error: "errcode 130101: send too fast, exceed 20 times per minute" }), expect.objectContaining({ status: 200, error: null })])
    ding.setAnswer(dingtalkCheck("T1", DING_SECRET))
  })
})

describe("Feishu, WeCom and Slack", () => {
  it("Feishu: a work order as a signed card; a wrong signature (code 19021) is a dead letter, a rate limit (11232) is retried", async () => {
    await push({ woId: "51", wo_wotId: "1", wotName: "售后维修", woCode: "WO-51", custName: "张三", woPhone: "13800000000", wo_action: "4" }, "/api/workorder.json")
    await eventually(() => feishu.received.length === 1)
    const card = bodyOf(feishu, 0)
    expect(card).toMatchObject({ msg_type: "interactive", card: { header: { title: { content: "工单已结束" } } } })
    expect(JSON.stringify(card)).toContain("售后维修 WO-51")
    await eventually(async () => (await deliveries("feishu"))[0]?.status === "delivered")

    feishu.setAnswer((r) => (feishu.received.length === 2 ? { status: 200, body: JSON.stringify({ code: 11232, msg: "frequency limited psm" }) } : feishuCheck("hook-1", FEISHU_SECRET)(r)))
    await push({ woId: "52", wo_wotId: "1", wotName: "售后维修", wo_action: "2" }, "/api/workorder.json")
    await eventually(async () => (await deliveries("feishu")).filter((d) => d.status === "delivered").length === 2)
    expect(feishu.received).toHaveLength(3)

    feishu.setAnswer(feishuCheck("hook-1", "another secret"))
    await push({ woId: "53", wo_wotId: "1", wotName: "售后维修", wo_action: "1" }, "/api/workorder.json")
    const dead = await eventually(async () => (await adminApi("GET", "/dead-letters?target=feishu")).body.items?.[0])
    expect(dead).toMatchObject({ reason: "refused", lastError: "code 19021: sign match fail or timestamp is not within one hour from current time" })
    feishu.setAnswer(feishuCheck("hook-1", FEISHU_SECRET))
  })

  it("WeCom: a callback as text with mentioned_mobile_list; an invalid key (93000) is a dead letter; a 200 that is not WeCom's answer is retried", async () => {
    await push({ cbkId: "801", cbkStatus: "3", cbkSourcePhone: "13811112222", cbkExtension: "100008440" }, "/api/callback.json")
    await eventually(() => wecom.received.length === 1)
    expect(bodyOf(wecom, 0)).toEqual({ msgtype: "text", text: { content: expect.stringMatching(/^回拨状态: 未接听\n号码: 13811112222/), mentioned_mobile_list: [MOBILE] } })

    wecom.setAnswer((r) => (wecom.received.length === 2 ? { status: 200, body: "<html>portal</html>" } : wecomCheck("K1")(r)))
    await push({ cbkId: "802", cbkStatus: "4" }, "/api/callback.json")
    const retried = await eventually(async () => (await deliveries("wecom")).find((d) => d.status === "delivered" && (d.event as { data: { cbkId: string } }).data.cbkId === "802"))
    expect(retried.attempts).toEqual([expect.objectContaining({ error: "HTTP 200 without errcode: not the service's answer" }), expect.objectContaining({ error: null })])

    wecom.setAnswer(wecomCheck("K2"))
    await push({ cbkId: "803", cbkStatus: "4" }, "/api/callback.json")
    expect(await eventually(async () => (await adminApi("GET", "/dead-letters?target=wecom")).body.items?.[0])).toMatchObject({ reason: "refused", lastError: "errcode 93000: invalid webhook url" })
    wecom.setAnswer(wecomCheck("K1"))
  })

  it("Slack: a removed webhook (404 no_service) is a dead letter", async () => {
    // the slack target follows delivery.exhausted: what the tests before exhausted must have reached it first
    await eventually(async () => (await deliveries("slack")).every((d) => d.status !== "pending"))
    const n = slack.received.length
    slack.setAnswer(slackCheck("/services/T0/B0/OTHER"))
    const res = await adminApi("POST", "/targets/slack/test", { type: "target.failing" })
    expect(res.body).toMatchObject({ code: 0, answer: { status: 404, body: "no_service" }, outcome: { kind: "refused" } })
    expect(slack.received).toHaveLength(n + 1)
    slack.setAnswer(slackCheck("/services/T0/B0/XYZ"))
  })
})

describe("HubSpot", () => {
  const call = (cdrId: number, phone: string, talk: number, peer: string) =>
    push({ type: "3", peer, phone, memo: JSON.stringify({ cdrId, cdrExtension: "100008440", exteName: "前台", cdrTalktime: talk, cdrRecordFile: `r/${cdrId}.wav` }) })
  const created = (cdrId: number) => (hubspot.calls.filter((c) => String(c.properties.hs_call_recording_url ?? "").includes(`r/${cdrId}.wav`) || String(c.properties.hs_call_body ?? "").includes(`#${cdrId}`)))

  it("logs a call on the contact found by phone, with direction, duration and recording link; by mobilephone too", async () => {
    await call(9001, "13855550001", 65, "1")
    await eventually(() => created(9001).length === 1)
    expect(created(9001)[0]).toMatchObject({
      properties: {
        hs_call_direction: "OUTBOUND",
        hs_call_status: "COMPLETED",
        hs_call_duration: "65000",
        hs_call_from_number: "100008440",
        hs_call_to_number: "13855550001",
        hs_call_recording_url: "https://bridge.example.com/voip/record/r/9001.wav",
        hs_timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT/)
      },
      associations: [{ to: { id: "501" }, types: [{ associationCategory: "HUBSPOT_DEFINED", associationTypeId: 194 }] }]
    })
    await call(9002, "13855550002", 0, "2")
    await eventually(() => created(9002).length === 1)
    expect(created(9002)[0]).toMatchObject({ properties: { hs_call_direction: "INBOUND", hs_call_status: "NO_ANSWER" }, associations: [{ to: { id: "502" } }] })
    // the target that skips strangers logged both as well (they are contacts)
    await eventually(async () => (await deliveries("hubspot-known")).filter((d) => d.status === "delivered" && d.attempts && (d.attempts as Array<{ status: number }>)[0]!.status === 201).length === 2)
  })

  it("a number no contact has: logged unassociated, or skipped (settings.unmatched skip) with nothing written", async () => {
    const before = hubspot.calls.length
    await call(9003, "13800009999", 10, "2")
    await eventually(async () => (await deliveries("hubspot")).some((d) => (d.event as { data: { cdrId: number } }).data.cdrId === 9003 && d.status === "delivered"))
    const skipped = await eventually(async () => (await deliveries("hubspot-known")).find((d) => (d.event as { data: { cdrId: number } }).data.cdrId === 9003 && d.status === "delivered"))
    expect(skipped.attempts).toEqual([expect.objectContaining({ status: null, error: 'skipped: no HubSpot contact has phone "13800009999"' })])
    expect(created(9003)).toEqual([expect.objectContaining({ associations: [] })])
    expect(hubspot.calls.length).toBe(before + 1)
  })

  it("a revoked private app token (HubSpot's 401) is a dead letter; a rate limit (429) is retried after its Retry-After", async () => {
    const dead = await eventually(async () => (await adminApi("GET", "/dead-letters?target=hubspot-badkey")).body.items?.[0])
    expect(dead).toMatchObject({ reason: "refused", attempts: [expect.objectContaining({ status: 401, response: expect.stringContaining("INVALID_AUTHENTICATION") })] })
    let limited = false
    hubspot.setAnswer((r) => {
      if (limited || !r.url.endsWith("/calls")) return hubspot.answer(r)
      limited = true
      return { status: 429, headers: { "retry-after": "0" }, body: JSON.stringify({ status: "error", message: "You have reached your ten_secondly_rolling limit.", category: "RATE_LIMITS" }) }
    })
    await call(9004, "13855550001", 5, "1")
    const done = await eventually(async () => (await deliveries("hubspot")).find((d) => (d.event as { data: { cdrId: number } }).data.cdrId === 9004 && d.status === "delivered"))
    expect((done.attempts as Array<{ status: number }>).map((a) => a.status)).toEqual([429, 201])
    hubspot.setAnswer(hubspot.answer)
  })

  it("test-sends show every request: the lookup, then the write; the token is not shown", async () => {
    const { body } = await adminApi("POST", "/targets/hubspot/test", { type: "call.hangup" })
    const steps = body.steps as Array<{ request: { method: string; url: string; headers: Record<string, string>; body: string }; answer: { status: number } }>
    expect(steps.map((s) => [s.request.method, s.request.url.slice(hubspot.base.length), s.answer.status])).toEqual([
      ["POST", "/crm/v3/objects/contacts/search", 200],
      ["POST", "/crm/v3/objects/calls", 201]
    ])
    expect(steps[0]!.request.headers.authorization).toBe("Bearer (not shown)")
    expect(body).toMatchObject({ outcome: { kind: "delivered" }, answer: { status: 201 } })
  })
})

describe("Salesforce", () => {
  const taskOf = (cdrId: number) => sf.tasks.find((t) => t.CallObject === String(cdrId))
  it("a completed call Task on the contact found in any phone field however formatted, else on the lead, else on nobody", async () => {
    const task = await eventually(() => taskOf(9001))
    expect(task).toMatchObject({ WhoId: "003A00000000001", Status: "Completed", TaskSubtype: "Call", CallType: "Outbound", CallDurationInSeconds: 65, Subject: "Call ended 13855550001" })
    expect(await eventually(() => taskOf(9003))).not.toHaveProperty("WhoId")
  })

  it("a revoked session (INVALID_SESSION_ID) fetches a new token and the Task is written once", async () => {
    const issued = sf.issued()
    sf.revokeAll()
    await push({ type: "3", peer: "2", phone: "13855550003", memo: JSON.stringify({ cdrId: 9102, cdrExtension: "100008440", cdrTalktime: 12 }) })
    expect(await eventually(() => taskOf(9102))).toMatchObject({ WhoId: "00QB00000000001", CallType: "Inbound" })
    expect(sf.issued()).toBe(issued + 1)
    expect(sf.tasks.filter((t) => t.CallObject === "9102")).toHaveLength(1)
  })
})

describe("Odoo", () => {
  it("a crm.lead per call through execute_kw, linked to the partner with that phone; a wrong API key is a dead letter", async () => {
    const lead = await eventually(() => odoo.leads.find((l) => String(l.description).includes("13855550001") && l.partner_id !== undefined))
    expect(lead).toMatchObject({ partner_id: 7, phone: "13855550001", type: "lead", name: "通话结束 13855550001" })
    const dead = await eventually(async () => (await adminApi("GET", "/dead-letters?target=odoo-badkey")).body.items?.[0])
    expect(dead).toMatchObject({ reason: "refused", lastError: "odoo.exceptions.AccessDenied: login refused: wrong database, login or API key" })
  })

  it("test-send shows the JSON-RPC calls with the API key hidden", async () => {
    const { body } = await adminApi("POST", "/targets/odoo/test", {})
    const steps = body.steps as Array<{ request: { body: string }; answer: { body: string } }>
    expect(steps).toHaveLength(3)
    expect(JSON.stringify(body)).not.toContain("odoo-key")
    expect(steps[0]!.request.body).toContain('"args":["acme","bot@acme.cn","(secret, not shown)"]')
    expect(body).toMatchObject({ outcome: { kind: "delivered" } })
  })
})

describe("OAuth2 for any target", () => {
  it("fetches a token once, caches it, and on a 401 fetches a new one and sends once more; the token is stored nowhere", async () => {
    const answered = (cdrId: number) => push({ type: "2", peer: "2", phone: "13800000001", memo: JSON.stringify({ cdrId, cdrExtension: "100008440" }) })
    await answered(8001)
    await answered(8002)
    await eventually(async () => (await deliveries("crm-cc")).filter((d) => d.status === "delivered").length === 2)
    expect(oauth.issued()).toBe(1)
    expect(oauth.tokenEndpoint.received[0]!.headers.authorization).toBe(`Basic ${Buffer.from("bridge:s3cret").toString("base64")}`)
    oauth.revokeAll()
    await answered(8003)
    await eventually(async () => (await deliveries("crm-cc")).filter((d) => d.status === "delivered").length === 3)
    expect(oauth.issued()).toBe(2)
    const third = oauth.api.received.slice(-2).map((r) => r.headers.authorization)
    expect(third[0]).not.toBe(third[1])
    const db = new Database(path.join(server.dataDir, "bridge.db"), { readonly: true })
    const stored = JSON.stringify([db.prepare("SELECT * FROM events").all(), db.prepare("SELECT * FROM attempts").all(), db.prepare("SELECT * FROM deliveries").all()])
    db.close()
    expect(stored).not.toMatch(/tok-\d/)
  })

  it("a token past its expires_in is fetched again before the send, not after a 401", async () => {
    await eventually(() => shortLived.api.received.length >= 1)
    const issued = shortLived.issued()
    expect(shortLived.tokenEndpoint.received[0]!.body).toBe("grant_type=client_credentials&scope=calls.write&client_id=bridge&client_secret=s3cret")
    await new Promise((r) => setTimeout(r, 800))
    const sent = shortLived.api.received.length
    await push({ cbkId: "880", cbkStatus: "4" }, "/api/callback.json")
    await eventually(() => shortLived.api.received.length === sent + 1)
    expect(shortLived.issued()).toBe(issued + 1)
    // the request went out with the new token at once: the API never saw the expired one again
    expect(shortLived.api.received[sent]!.headers.authorization).toBe(`Bearer ${shortLived.tokens().at(-1)}`)
  })

  it("a refresh token the endpoint refuses is a dead letter with the reason", async () => {
    await push({ type: "4", peer: "2", phone: "13800000002", memo: JSON.stringify({ cdrId: 8101, cdrExtension: "100008440", cdrRecordFile: "a.wav" }) })
    await eventually(async () => (await deliveries("crm-rt"))[0]?.status === "delivered")
    expect(refreshing.tokenEndpoint.received[0]!.body).toContain("grant_type=refresh_token&refresh_token=rt-1")
    refreshing.revokeAll()
    refreshing.revokeRefresh()
    await push({ type: "4", peer: "2", phone: "13800000002", memo: JSON.stringify({ cdrId: 8102, cdrExtension: "100008440", cdrRecordFile: "b.wav" }) })
    const dead = await eventually(async () => (await adminApi("GET", "/dead-letters?target=crm-rt")).body.items?.[0])
    expect(dead).toMatchObject({ reason: "auth", lastError: "OAuth2 token endpoint answered HTTP 400 (invalid_grant: refresh token expired or revoked)" })
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
  })
})

describe("the admin API", () => {
  it("lists the templates with their settings", async () => {
    const { body } = await adminApi("GET", "/templates")
    expect(body.items!.map((t) => t.name)).toEqual(["wecom", "dingtalk", "feishu", "slack", "hubspot", "salesforce", "odoo"])
    const dingtalk = body.items!.find((t) => t.name === "dingtalk")!
    expect(dingtalk).toMatchObject({ secret: { required: false }, url: { example: expect.stringContaining("/robot/send?access_token=") } })
    expect(JSON.stringify(dingtalk.settings)).toContain('"zh"')
  })

  it("refuses a template target whose url, secret or settings the template cannot use, naming the field, and stores nothing", async () => {
    const base = { name: "bad", template: "dingtalk", url: "https://oapi.dingtalk.com/robot/send?access_token=x" }
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ ...base, url: "https://oapi.dingtalk.com/robot/other" }, "url: dingtalk: expected …/robot/send?access_token=…"],
      [{ ...base, url: "https://oapi.dingtalk.com/robot/send" }, "url: dingtalk: expected …/robot/send?access_token=… (the access_token query parameter is missing)"],
      [{ ...base, secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }, "secret: dingtalk: expected the robot's signing secret, SEC followed by letters and digits"],
      [{ ...base, settings: { language: "fr" } }, 'settings.language: dingtalk: Expected "zh", actual "fr"'],
      [{ ...base, settings: { colour: "red" } }, "settings.colour: dingtalk: is unexpected, expected: \"language\" | \"message\" | \"mention\" | \"prefix\" | \"calls\""],
      [{ ...base, template: "slack", url: "https://hooks.slack.com/services/T/B/X", secret: "x" }, "secret: slack takes no secret"],
      [{ ...base, template: "teams" }, 'template: expected one of wecom, dingtalk, feishu, slack, hubspot, salesforce, odoo (GET /admin/api/templates), got "teams"'],
      [{ ...base, template: "hubspot", url: "https://api.hubapi.com" }, "secret: hubspot needs a secret: a private app's access token (pat-…)"],
      [{ ...base, template: "salesforce", url: "https://acme.my.salesforce.com" }, "auth: salesforce needs auth (OAuth2)"],
      [{ ...base, template: "odoo", url: "https://acme.odoo.com", secret: "k", settings: { database: "acme" } }, "settings.login: odoo: is missing"],
      [{ name: "bad", url: "http://127.0.0.1:9/x", settings: { language: "en" } }, "settings: settings belong to a template: name one (template)"],
      [{ name: "bad", url: "http://127.0.0.1:9/x", auth: { type: "oauth2", grant: "refresh_token", tokenUrl: "http://127.0.0.1:9/t", clientId: "c" } }, "auth.refreshToken: the refresh_token grant needs refreshToken"]
    ]
    for (const [body, message] of cases) expect(await adminApi("POST", "/targets", body)).toEqual({ status: 400, body: { code: -14, message } })
    expect((await adminApi("GET", "/targets/bad")).status).toBe(404)
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
  })

  it("test-sends: the exact request that goes out, signed, and what the destination answered; nothing is stored", async () => {
    const before = ding.received.length
    const events = (await adminApi("GET", "/events")).body.items!.length
    const { status, body } = await adminApi("POST", "/targets/ding/test", {})
    expect(status).toBe(200)
    expect(body).toMatchObject({ code: 0, event: { type: "call.hangup" }, answer: { status: 200, body: '{"errcode":0,"errmsg":"ok"}' }, outcome: { kind: "delivered" } })
    const request = body.request as { method: string; url: string; headers: Record<string, string>; body: string }
    expect(request.url).toMatch(new RegExp(`^${ding.base}/robot/send\\?access_token=T1&timestamp=\\d+&sign=`))
    expect(ding.received).toHaveLength(before + 1)
    expect(ding.received[before]!.url).toBe(request.url.slice(ding.base.length))
    expect(ding.received[before]!.body).toBe(request.body)
    expect(JSON.parse(request.body)).toMatchObject({ msgtype: "markdown", markdown: { title: "未接来电" } })

    const dry = await adminApi("POST", "/targets/ding/test", { send: false, data: { type: 3, peer: 2, phone: "1", memo: { cdrExtension: "100008440", cdrTalktime: 0 } } })
    expect(dry.body).toMatchObject({ code: 0, answer: null, outcome: null, request: { method: "POST" } })
    expect(ding.received).toHaveLength(before + 1)
    expect((await adminApi("GET", "/events")).body.items!.length).toBe(events)

    // an OAuth2 target's token is not shown
    const oauthTest = await adminApi("POST", "/targets/crm-cc/test", {})
    expect(oauthTest.body).toMatchObject({ request: { headers: { authorization: "Bearer (OAuth2 access token, not shown)" } }, answer: { status: 201 }, outcome: { kind: "delivered" } })

    expect(await adminApi("POST", "/targets/nope/test", {})).toEqual({ status: 404, body: { code: -11, message: "target nope does not exist" } })
    expect(await adminApi("POST", "/targets/ding/test", { send: "yes" })).toMatchObject({ status: 400, body: { code: -14, message: expect.stringMatching(/^send: /) } })
  })
})
