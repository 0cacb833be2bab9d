/**
 * The receiving side and the admin API at their edges: what identifies a retry, what must not
 * travel on (the receiver's token), what a passthrough keeps exactly, filters that must not
 * widen to everything, settings refused when saved rather than failing every delivery later.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import Database from "better-sqlite3"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { requestKey } from "../src/receive/receivers.js"
import { asAdmin, startTestServer, type TestServer } from "./support/TestServer.js"
import { eventually, startReceiver } from "./support/Receiver.js"

type Rx = Awaited<ReturnType<typeof startReceiver>>
const TOKEN = "s3cret-push-token"
let server: TestServer
let all: Rx, passthrough: Rx

const url = (p: string) => `${server.url}${p}`
const ack = async (res: Promise<Response>) => (await (await res).json()) as { code: number; message: string }
const form = (p: string, params: Record<string, string>, query = "") => ack(fetch(url(`${p}?token=${TOKEN}${query}`), { method: "POST", body: new URLSearchParams(params) }))
const adminToken = () => fs.readFileSync(path.join(server.dataDir, "admin-token"), "utf8").trim()
const adminApi = async (method: string, p: string, body?: unknown, authorization = `Bearer ${adminToken()}`) => {
  const res = await fetch(url(`/admin/api${p}`), { method, headers: { authorization, "content-type": "application/json" }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) })
  return { status: res.status, body: (await res.json()) as Record<string, unknown> & { items?: Array<Record<string, unknown>> } }
}
const rows = <T>(sql: string, ...args: Array<unknown>) => {
  const d = new Database(path.join(server.dataDir, "bridge.db"), { readonly: true })
  try {
    return d.prepare(sql).all(...args) as Array<T>
  } finally {
    d.close()
  }
}
const envelopes = () => all.received.map((r) => JSON.parse(r.body) as { type: string; data: Record<string, unknown>; raw: { query: string; body?: string; fields?: Array<[string, string]> } | null })

beforeAll(async () => {
  ;[all, passthrough] = await Promise.all([startReceiver(), startReceiver()])
  server = await startTestServer({
    forwarding: { pollIntervalMs: 50 },
    receive: {
      voip: { path: "/api/voip.json", token: TOKEN, allowFrom: [] },
      workorder: { path: "/api/workorder.json", token: TOKEN, allowFrom: [] },
      callback: { path: "/api/callback.json", token: TOKEN, allowFrom: [] }
    },
    targets: [
      { name: "all", url: all.url, events: ["call.*", "workorder.*", "callback.*"], retry: { scheduleMs: [0] } },
      { name: "passthrough", url: passthrough.url, events: ["call.*", "callback.*"], format: "800ing", retry: { scheduleMs: [0] } }
    ]
  })
})
afterAll(async () => {
  await server.close()
  await Promise.all([all.close(), passthrough.close()])
})

describe("what identifies a sender's retry", () => {
  it("takes the same push without a call id again within the hour as a retry, and a push alike an hour later as a new one", () => {
    const pairs = [["type", "1"], ["peer", "1"], ["phone", "13688888888"]] as const
    const now = Date.UTC(2026, 10, 24, 10, 15)
    expect(requestKey(pairs, now)).toBe(requestKey([...pairs].reverse(), now + 60_000))
    expect(requestKey(pairs, now)).not.toBe(requestKey(pairs, now + 3_600_000))
    expect(requestKey(pairs, now)).not.toBe(requestKey([["type", "1"], ["peer", "1"], ["phone", "13688888889"]], now))
  })

  it("does not take a cdrId that names no call (empty, an object) as the key, nor makes a call record of it", async () => {
    for (const cdrId of ['""', "null", '{"a":1}'])
      expect(await form("/api/voip.json", { type: "3", peer: "1", phone: "13700000001", memo: `{"cdrId":${cdrId},"cdrExtension":"100008800","cdrTalktime":5}` })).toEqual({ code: 0, message: "OK" })
    // another hang-up with an empty id but another number is another push, not a retry of the first
    expect(await form("/api/voip.json", { type: "3", peer: "1", phone: "13700000002", memo: '{"cdrId":"","cdrExtension":"100008800"}' })).toEqual({ code: 0, message: "OK" })
    const stored = rows<{ n: number }>("SELECT count(*) AS n FROM events WHERE type = 'call.hangup' AND json_extract(data, '$.phone') IN ('13700000001', '13700000002')")
    expect(stored[0]!.n).toBe(4)
    expect(rows<{ n: number }>("SELECT count(*) AS n FROM cdrs WHERE platform_cdr_id IN ('', 'null', '[object Object]')")[0]!.n).toBe(0)
  })

  it("stores a work order saved twice at the same step with different content as two events, and its exact retry once", async () => {
    const save = (other: string) => form("/api/workorder.json", { woId: "9001", wo_wotId: "1", wotName: "报修", wo_action: "1", woStepId: "1", woOther1: other })
    expect(await save("first")).toEqual({ code: 0, message: "OK" })
    expect(await save("first")).toEqual({ code: 0, message: "OK" })
    expect(await save("second")).toEqual({ code: 0, message: "OK" })
    const saved = rows<{ other: string }>("SELECT json_extract(data, '$.woOther1') AS other FROM events WHERE type = 'workorder.saved' AND json_extract(data, '$.woId') = '9001' ORDER BY id")
    expect(saved.map((r) => r.other)).toEqual(["first", "second"])
  })
})

describe("what is kept and passed on", () => {
  it("keeps the receiver's token out of what is stored and of every target's request", async () => {
    expect(await form("/api/voip.json", { type: "3", peer: "1", phone: "13700000003", memo: '{"cdrId":810001,"cdrExtension":"100008800"}' }, "&x=1")).toEqual({ code: 0, message: "OK" })
    const json = await eventually(() => all.received.find((r) => r.body.includes("810001")))
    const sent = await eventually(() => passthrough.received.find((r) => r.body.includes("810001")))
    for (const text of [json.body, json.url, sent.body, sent.url]) expect(text).not.toContain(TOKEN)
    expect(sent.url).toContain("x=1")
    const raw = rows<{ raw: string }>("SELECT raw FROM events WHERE json_extract(data, '$.cdrId') = 810001")[0]!.raw
    expect(raw).not.toContain(TOKEN)
    // the same from a JSON body
    expect(await ack(fetch(url("/api/callback.json"), { method: "POST", headers: { "content-type": "application/json" }, body: `{"cbkId":"7001","cbkStatus":"1","token":"${TOKEN}","cbkRef":7687658987667780097}` }))).toEqual({ code: 0, message: "OK" })
    // what is left of the body keeps its numbers' exact digits
    expect((await eventually(() => passthrough.received.find((r) => r.body.includes("7001")))).body).toBe('{"cbkId":"7001","cbkStatus":"1","cbkRef":7687658987667780097}')
  })

  it("re-sends a multipart push as its fields once each, the query's included", async () => {
    const fd = new FormData()
    fd.append("type", "2")
    fd.append("peer", "1")
    fd.append("memo", '{"cdrId":810002,"cdrExtension":"100008800"}')
    expect(await ack(fetch(url(`/api/voip.json?token=${TOKEN}&phone=13700000004`), { method: "POST", body: fd }))).toEqual({ code: 0, message: "OK" })
    const sent = await eventually(() => passthrough.received.find((r) => r.body.includes("810002")))
    const fields = new URLSearchParams(sent.body)
    expect(fields.getAll("phone")).toEqual(["13700000004"])
    expect(fields.getAll("type")).toEqual(["2"])
    expect(fields.has("token")).toBe(false)
  })

  it("keeps ids beyond 2^53 exactly, and reads a memo sent as a JSON object", async () => {
    const body = '{"type":3,"peer":1,"phone":"13700000005","memo":{"cdrId":7687658987667780097,"cdrExtension":"100008800","cdrTalktime":12}}'
    expect(await ack(fetch(url(`/api/voip.json?token=${TOKEN}`), { method: "POST", headers: { "content-type": "application/json" }, body }))).toEqual({ code: 0, message: "OK" })
    const got = await eventually(() => envelopes().find((e) => e.data.phone === "13700000005"))
    expect(got.data).toMatchObject({ memoParsed: true, cdrId: "7687658987667780097", memo: { cdrId: "7687658987667780097", cdrTalktime: 12 } })
    expect((await asAdmin(server, "findDialrecord", { scdrId: "7687658987667780097" })).rows).toEqual([expect.objectContaining({ cdrTalktime: 12 })])
    // the passthrough sends the bytes as they came
    expect((await eventually(() => passthrough.received.find((r) => r.body.includes("13700000005")))).body).toBe(body)
  })
})

describe("JSON as senders write it", () => {
  it("takes a JSON body with a key given twice (the last wins, as JSON.parse does) and digits inside strings as they are", async () => {
    const body = '{"type":3,"type":2,"peer":1,"phone":"13700000010","memo":"{\\"cdrId\\":840001,\\"cdrExtension\\":\\"100008800\\",\\"idCard\\":\\"110101199003070012345\\"}","n":12345678901234567890}'
    expect(await ack(fetch(url(`/api/voip.json?token=${TOKEN}`), { method: "POST", headers: { "content-type": "application/json" }, body }))).toEqual({ code: 0, message: "OK" })
    const got = await eventually(() => envelopes().find((e) => e.data.phone === "13700000010"))
    expect(got).toMatchObject({ type: "call.answered", data: { memo: { cdrId: 840001, idCard: "110101199003070012345" } } })
  })
})

describe("long GET pushes", () => {
  it("takes a GET push whose query passes Node's 16 KiB default, and answers an oversized one with a coded JSON body", async () => {
    const fields = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`woOther${i + 1}`, "备注".repeat(40)]))
    const long = `${server.url}/api/voip.json?token=${TOKEN}&type=1&peer=1&phone=13700000009&memo=${encodeURIComponent(JSON.stringify({ cdrId: 830001, cdrExtension: "100008800", ...fields }))}`
    expect(long.length).toBeGreaterThan(30_000)
    expect(await ack(fetch(long))).toEqual({ code: 0, message: "OK" })
    const huge = await fetch(`${long}&more=${"x".repeat(70_000)}`)
    expect(huge.status).toBe(431)
    expect(await huge.json()).toEqual({ code: -12, message: "request line and headers are larger than 65536 bytes" })
  })
})

describe("the call record a memo describes", () => {
  it("reads Java's .0 seconds, ignores a date that does not exist and a negative talk time, and lets a push without the extension update the call", async () => {
    const memo = (o: Record<string, unknown>) => JSON.stringify({ cdrId: 820001, ...o })
    expect((await form("/api/voip.json", { type: "3", peer: "1", phone: "13700000006", memo: memo({ cdrExtension: "100008800", cdrStartTime: "2026-11-24 10:00:00.0", cdrHangupTime: "2026-02-30 25:61:00", cdrTalktime: -5 }) })).code).toBe(0)
    const [row] = (await asAdmin(server, "findDialrecord", { scdrId: "820001" })).rows as Array<Record<string, unknown>>
    expect(row).toMatchObject({ cdrStartTime: "2026-11-24 10:00:00", cdrHangupTime: "", cdrTalktime: 0 })
    // the recording push names the call but not its extension
    expect((await form("/api/voip.json", { type: "4", peer: "1", memo: memo({ cdrRecordFile: "820001.wav", cdrTalktime: 42 }) })).code).toBe(0)
    const [after] = (await asAdmin(server, "findDialrecord", { scdrId: "820001" })).rows as Array<Record<string, unknown>>
    expect(after).toMatchObject({ cdrTalktime: 42, cdrExtension: "100008800" })
  })
})

describe("admin API filters and settings", () => {
  it("refuses an empty filter value instead of reading it as no filter", async () => {
    const d = new Database(path.join(server.dataDir, "bridge.db"))
    d.pragma("busy_timeout = 5000")
    d.prepare("INSERT INTO events (id, type, occurred_at, source, data) VALUES (1, 'call.hangup', 0, 'push:voip', '{}')").run()
    d.prepare("INSERT INTO deliveries (id, event_id, target, status, attempts, next_attempt_at, webhook_id, dead_reason, created_at, updated_at) VALUES (2, 1, 'all', 'dead', 1, 0, 'msg_2', 'exhausted', 0, 0)").run()
    d.close()
    expect((await adminApi("DELETE", "/dead-letters?target=")).body).toEqual({ code: -14, message: "target: expected a target name, got an empty value" })
    expect((await adminApi("POST", "/dead-letters/redrive", { type: "" })).body).toEqual({ code: -14, message: "type: expected an event type or glob, got an empty value" })
    expect((await adminApi("GET", "/dead-letters?ids=1.5")).body).toEqual({ code: -14, message: "ids.0: expected whole-number ids" })
    expect((await adminApi("GET", "/dead-letters?since=2026-11-25&until=2026-11-24")).body).toEqual({ code: -14, message: "until: expected a time at or after since" })
    expect((await adminApi("GET", "/dead-letters?since=yesterday")).body).toEqual({ code: -14, message: "since: expected an ISO 8601 time or Unix ms" })
    expect((await adminApi("GET", "/deliveries?status=bogus")).body).toEqual({ code: -14, message: "status: expected one of pending, in_flight, delivered, dead" })
    expect((await adminApi("GET", "/dead-letters?target=all")).body.items).toHaveLength(1)
  })

  it("leaves dead letters of a deleted target as they are on redrive, and says so; recover needs a target that exists", async () => {
    expect((await adminApi("POST", "/targets", { name: "gone", url: "http://127.0.0.1:9/x" })).status).toBe(201)
    const d = new Database(path.join(server.dataDir, "bridge.db"))
    d.pragma("busy_timeout = 5000")
    d.prepare("INSERT INTO deliveries (id, event_id, target, status, attempts, next_attempt_at, webhook_id, dead_reason, created_at, updated_at) VALUES (3, 1, 'gone', 'dead', 1, 0, 'msg_3', 'exhausted', 0, 0)").run()
    d.close()
    expect((await adminApi("DELETE", "/targets/gone")).body).toMatchObject({ code: 0 })
    expect((await adminApi("POST", "/dead-letters/redrive", { target: "gone" })).body).toEqual({
      code: 0,
      redriven: 0,
      skipped: 1,
      message: "1 dead letter(s) of targets that no longer exist were left as they are"
    })
    expect((await adminApi("GET", "/dead-letters?target=gone")).body.items).toHaveLength(1)
    expect((await adminApi("POST", "/targets/gone/recover", { since: 0 })).status).toBe(404)
    expect((await adminApi("POST", "/targets/all/recover", { since: 0, until: 0, typo: 1 })).body).toEqual({ code: -14, message: "typo: not a field of recover (since, until)" })
    // until is honoured: nothing occurred at or before 0 but the event made above
    expect((await adminApi("POST", "/targets/all/recover", { since: 0, until: 0 })).body).toEqual({ code: 0, redriven: 1 })
    expect((await adminApi("DELETE", "/dead-letters", { target: "gone" })).body).toEqual({ code: 0, deleted: 1 })
  })

  it.each([
    [{ secret: "whsec_abc" }, /^secret: expected whsec_ followed by a base64 key/],
    [{ transform: "$$$ (((" }, /^transform: not a JSONata expression: /],
    [{ headers: { "bad header": "x" } }, /^headers: header name "bad header" is not an HTTP token/],
    [{ headers: { "X-Ok": "a\r\nb" } }, /^headers: header X-Ok: the value holds a control character/],
    [{ headers: { Host: "crm" } }, /^headers: header Host is set by the bridge itself/],
    [{ name: ".." }, /^name: expected 1–64 letters/]
  ])("refuses a target that could never deliver: %o", async (bad, message) => {
    const res = await adminApi("POST", "/targets", { name: "t1", url: "http://127.0.0.1:9/x", ...bad })
    expect(res.status).toBe(400)
    expect(res.body).toMatchObject({ code: -14, message: expect.stringMatching(message) })
    expect((await adminApi("GET", "/targets/t1")).status).toBe(404)
  })

  it("clears an optional setting with null in a PATCH, and takes the bearer scheme in any case", async () => {
    expect((await adminApi("POST", "/targets", { name: "t2", url: "http://127.0.0.1:9/x", transform: "type", rateLimit: 5, concurrency: 2 })).status).toBe(201)
    const patched = await adminApi("PATCH", "/targets/t2", { transform: null, rateLimit: null, concurrency: null })
    expect(patched.body).toMatchObject({ code: 0 })
    const t = (await adminApi("GET", "/targets/t2", undefined, `bearer ${adminToken()}`)).body
    expect(t).not.toHaveProperty("transform")
    expect(t).not.toHaveProperty("rateLimit")
    expect(t.concurrency).toBe(4)
    expect((await adminApi("DELETE", "/targets/t2")).body).toMatchObject({ code: 0 })
  })
})
