/** Receiving the platform's pushes and forwarding them to real HTTP receivers: formats, signing, retries, dead letters, redrive, order, circuit. */
import { createHmac } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import Database from "better-sqlite3"
import { Webhook } from "standardwebhooks"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { retention } from "../src/forwarding/Retention.js"
import { asAdmin, startTestServer, type TestServer } from "./support/TestServer.js"
import { eventually, startReceiver } from "./support/Receiver.js"

type Rx = Awaited<ReturnType<typeof startReceiver>>
const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
const fast = { scheduleMs: [0, 60, 120, 240] }

let server: TestServer
let crm: Rx, signed: Rx, platform: Rx, formRx: Rx, mapped: Rx, broken: Rx, ops: Rx, flaky: Rx, refusing: Rx, ordered: Rx

const push = async (params: Record<string, string>, how: "get" | "form" | "json" = "form", pathname = "/api/voip.json") => {
  const url = `${server.url}${pathname}`
  const res =
    how === "get"
      ? await fetch(`${url}?${new URLSearchParams(params)}`)
      : how === "json"
        ? await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(params) })
        : await fetch(url, { method: "POST", body: new URLSearchParams(params) })
  return (await res.json()) as { code: number; message: string }
}
const memo = (o: Record<string, unknown>) => JSON.stringify(o)
const bodies = (rx: Rx) => rx.received.map((r) => JSON.parse(r.body) as { type: string; data: Record<string, unknown> })
const adminToken = () => fs.readFileSync(path.join(server.dataDir, "admin-token"), "utf8").trim()
const adminApi = async (method: string, p: string, body?: unknown, token = adminToken()) => {
  const res = await fetch(`${server.url}/admin/api${p}`, { method, headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) })
  return { status: res.status, body: (await res.json()) as Record<string, unknown> & { items?: Array<Record<string, unknown>> } }
}
const db = () => new Database(path.join(server.dataDir, "bridge.db"), { readonly: true })

beforeAll(async () => {
  ;[crm, signed, platform, formRx, mapped, broken, ops, flaky, refusing, ordered] = await Promise.all(Array.from({ length: 10 }, () => startReceiver()))
  server = await startTestServer({
    forwarding: { pollIntervalMs: 50, circuitThreshold: 3, circuitCooldownMs: 300, retentionDays: 30 },
    targets: [
      { name: "crm", url: crm.url, events: ["call.*"], retry: fast },
      { name: "signed", url: signed.url, events: ["call.hangup"], secret: SECRET, retry: fast },
      { name: "platform", url: platform.url, events: ["call.*", "workorder.*"], format: "800ing", retry: fast },
      { name: "form", url: formRx.url, events: ["callback.*"], format: "form", retry: fast },
      { name: "mapped", url: mapped.url, events: ["call.recording"], transform: '{"call": data.memo.cdrId, "what": type, "who": data.memo.exteName}', retry: fast },
      { name: "broken", url: broken.url, events: ["call.answered"], transform: '$error("no mapping for this")', retry: fast },
      { name: "ops", url: ops.url, events: ["delivery.*", "target.*"], retry: fast },
      { name: "flaky", url: flaky.url, events: ["workorder.*"], retry: { scheduleMs: [0, 200, 400, 800] } },
      { name: "refusing", url: refusing.url, events: ["callback.status"], retry: fast },
      { name: "ordered", url: ordered.url, events: ["call.*"], retry: fast }
    ]
  })
})
afterAll(async () => {
  await server.close()
  for (const rx of [crm, signed, platform, formRx, mapped, broken, ops, flaky, refusing, ordered]) await rx.close()
})

describe("receiving the call/recording push (§2.10.4)", () => {
  it("takes the contract's example (GET, memo JSON not encoded) and forwards it as the json envelope", async () => {
    const res = await fetch(`${server.url}/api/voip.json?type=3&phone=13688888888&peer=1&memo=${memo({ cdrId: 2323, cdrExtension: "100008800", cdrTalktime: 35 })}`)
    expect(await res.json()).toEqual({ code: 0, message: "OK" })
    const got = await eventually(() => bodies(crm).find((b) => b.data.cdrId === 2323))
    expect(got).toMatchObject({ type: "call.hangup", enterprise: "100008", source: "push:voip", data: { type: 3, peer: 1, phone: "13688888888", memo: { cdrId: 2323, cdrExtension: "100008800" }, memoParsed: true } })
    expect(crm.received.find((r) => r.body.includes("2323"))!.headers["webhook-id"]).toMatch(/^msg_\d+$/)
  })

  it("has upserted the pushed call record so findDialrecord shows it", async () => {
    const body = await asAdmin(server, "findDialrecord", { scdrId: "2323" })
    expect(body.rows).toEqual([expect.objectContaining({ cdrId: 2323, cdrTalktime: 35, cdrPhoneNum: "13688888888", cdrPeer: 1, exteName: "管理员" })])
  })

  it.each(["form", "json"] as const)("accepts a %s body, and relaxed JSON in memo", async (how) => {
    const cdrId = how === "form" ? 3001 : 3002
    expect(await push({ type: "1", peer: "2", phone: "13500000000", memo: `{cdrId:${cdrId},cdrExtension:'100008800',exteName:'张三'}` }, how)).toEqual({ code: 0, message: "OK" })
    expect(await eventually(() => bodies(crm).find((b) => b.data.cdrId === cdrId))).toMatchObject({ type: "call.dialing", data: { memo: { exteName: "张三" } } })
  })

  it("accepts a multipart body", async () => {
    const fd = new FormData()
    for (const [k, v] of Object.entries({ type: "2", peer: "2", phone: "13600000000", memo: memo({ cdrId: 3003, cdrExtension: "100008800" }) })) fd.append(k, v)
    const res = await fetch(`${server.url}/api/voip.json`, { method: "POST", body: fd })
    expect(await res.json()).toEqual({ code: 0, message: "OK" })
    expect(await eventually(() => bodies(crm).find((b) => b.data.cdrId === 3003))).toMatchObject({ type: "call.answered", data: { phone: "13600000000" } })
  })

  it("keeps an unparseable memo raw, flags it, and still forwards it", async () => {
    expect((await push({ type: "2", peer: "1", phone: "139", memo: "{cdrId:77, oops" })).code).toBe(0)
    const got = await eventually(() => bodies(crm).find((b) => b.data.memoRaw === "{cdrId:77, oops"))
    expect(got.data).toMatchObject({ memoParsed: false, memo: null })
  })

  it("acknowledges a sender's retry again and stores and forwards it once", async () => {
    const p = { type: "4", peer: "1", phone: "1", memo: memo({ cdrId: 4004, cdrRecordFile: "a.wav" }) }
    expect(await push(p)).toEqual({ code: 0, message: "OK" })
    expect(await push(p)).toEqual({ code: 0, message: "OK" })
    await eventually(() => bodies(crm).some((b) => b.data.cdrId === 4004))
    await new Promise((r) => setTimeout(r, 300))
    expect(bodies(crm).filter((b) => b.data.cdrId === 4004)).toHaveLength(1)
    const d = db()
    expect((d.prepare("SELECT count(*) AS n FROM events WHERE dedup_key = 'voip:4004:4'").get() as { n: number }).n).toBe(1)
    d.close()
  })

  it("answers OK only once the event is committed (it is readable at once)", async () => {
    expect((await push({ type: "1", peer: "1", memo: memo({ cdrId: 5005 }) })).code).toBe(0)
    const d = db()
    expect(d.prepare("SELECT type FROM events WHERE dedup_key = 'voip:5005:1'").get()).toEqual({ type: "call.dialing" })
    d.close()
  })

  it.each([
    [{ peer: "1" }, "parameter type: is missing"],
    [{ type: "7", peer: "1" }, /^parameter type: expected an integer from 1 to 4/],
    [{ type: "1", peer: "x" }, /^parameter peer: expected an integer/]
  ])("refuses %o with -14, storing nothing", async (p, message) => {
    const d = db()
    const before = (d.prepare("SELECT count(*) AS n FROM events").get() as { n: number }).n
    const body = await push(p as Record<string, string>)
    expect(body.code).toBe(-14)
    expect(body.message).toMatch(message)
    expect((d.prepare("SELECT count(*) AS n FROM events").get() as { n: number }).n).toBe(before)
    d.close()
  })

  it("stores all of 200 concurrent pushes, each exactly once", async () => {
    const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => push({ type: "3", peer: "1", memo: memo({ cdrId: 100_000 + i }) })))
    expect(answers.every((a) => a.code === 0)).toBe(true)
    const d = db()
    const n = (d.prepare("SELECT count(*) AS n FROM events WHERE dedup_key LIKE 'voip:1_____:3'").get() as { n: number }).n
    d.close()
    expect(n).toBe(200)
  })

  it("a push whose write fails is refused (-6) and stored not at all, while the pushes committed with it are kept", async () => {
    const w = new Database(path.join(server.dataDir, "bridge.db"))
    w.exec(`CREATE TRIGGER poison_cdr BEFORE INSERT ON cdrs WHEN NEW.platform_cdr_id = '200013'
            BEGIN SELECT RAISE(ABORT, 'disk on fire'); END`)
    try {
      // concurrent, so the poisoned write shares its group commit with the others
      const ids = Array.from({ length: 30 }, (_, i) => 200_000 + i)
      const answers = await Promise.all(ids.map((cdrId) => push({ type: "3", peer: "1", memo: memo({ cdrId, cdrExtension: "100008800" }) })))
      expect(answers[13]).toEqual({ code: -6, message: "the push could not be stored; send it again" })
      expect(answers.filter((a) => a.code === 0)).toHaveLength(29)
      const count = (sql: string) => (w.prepare(sql).get() as { n: number }).n
      expect(count("SELECT count(*) AS n FROM events WHERE dedup_key LIKE 'voip:2000__:3'")).toBe(29)
      expect(count("SELECT count(*) AS n FROM cdrs WHERE platform_cdr_id LIKE '2000__'")).toBe(29)
      // nothing of the refused push: no event, no delivery, no call record
      expect(count("SELECT count(*) AS n FROM events WHERE dedup_key = 'voip:200013:3'")).toBe(0)
      expect(count("SELECT count(*) AS n FROM deliveries d JOIN events e ON e.id = d.event_id WHERE e.dedup_key = 'voip:200013:3'")).toBe(0)
    } finally {
      w.exec("DROP TRIGGER poison_cdr")
    }
    // the sender sends it again, as told: now it is stored and forwarded
    expect(await push({ type: "3", peer: "1", memo: memo({ cdrId: 200_013, cdrExtension: "100008800" }) })).toEqual({ code: 0, message: "OK" })
    expect(await eventually(() => bodies(crm).find((b) => b.data.cdrId === 200_013))).toMatchObject({ type: "call.hangup" })
    expect((w.prepare("SELECT count(*) AS n FROM cdrs WHERE platform_cdr_id = '200013'").get() as { n: number }).n).toBe(1)
    w.close()
  })
})

describe("formats and signing", () => {
  it("signs with Standard Webhooks headers an independent verifier accepts", async () => {
    const r = await eventually(() => signed.received.find((x) => x.body.includes("2323")))
    const verified = new Webhook(SECRET).verify(r.body, { "webhook-id": String(r.headers["webhook-id"]), "webhook-timestamp": String(r.headers["webhook-timestamp"]), "webhook-signature": String(r.headers["webhook-signature"]) })
    expect(verified).toMatchObject({ type: "call.hangup" })
    // and recomputed by hand from the definition (v1,<base64 HMAC-SHA256 of id.timestamp.body>, key = base64 after whsec_)
    const key = Buffer.from(SECRET.slice("whsec_".length), "base64")
    const expected = createHmac("sha256", key).update(`${r.headers["webhook-id"]}.${r.headers["webhook-timestamp"]}.${r.body}`).digest("base64")
    expect(String(r.headers["webhook-signature"]).split(" ")).toContain(`v1,${expected}`)
    expect(Math.abs(Number(r.headers["webhook-timestamp"]) - Date.now() / 1000)).toBeLessThan(300)
    expect(() => new Webhook(SECRET).verify(`${r.body} `, { "webhook-id": String(r.headers["webhook-id"]), "webhook-timestamp": String(r.headers["webhook-timestamp"]), "webhook-signature": String(r.headers["webhook-signature"]) })).toThrow()
  })

  it("800ing re-sends the platform's own request: same fields, memo JSON", async () => {
    const r = await eventually(() => platform.received.find((x) => x.body.includes("2323")))
    const fields = new URLSearchParams(r.body)
    expect(r.headers["content-type"]).toBe("application/x-www-form-urlencoded")
    expect(fields.get("type")).toBe("3")
    expect(fields.get("phone")).toBe("13688888888")
    expect(JSON.parse(fields.get("memo")!)).toEqual({ cdrId: 2323, cdrExtension: "100008800", cdrTalktime: 35 })
  })

  it("800ing forwards a work-order push with its fields (§2.12.9), and form flattens the callback push", async () => {
    expect(await push({ woId: "9001", wo_wotId: "282983707131016", wotName: "售后工单", wo_action: "2", woStepId: "2", woOther1: "其它" }, "form", "/api/workorder.json")).toEqual({ code: 0, message: "OK" })
    const wo = await eventually(() => platform.received.find((x) => x.body.includes("woId=9001")))
    expect(Object.fromEntries(new URLSearchParams(wo.body))).toMatchObject({ woId: "9001", wotName: "售后工单", wo_action: "2", woOther1: "其它" })
    expect(await push({ cbkId: "55", cbkStatus: "4", cbkSourcePhone: "023", cbkDescPhone: "138" }, "get", "/api/callback.json")).toEqual({ code: 0, message: "OK" })
    const cb = await eventually(() => formRx.received.find((x) => x.body.includes("cbkId")))
    expect(Object.fromEntries(new URLSearchParams(cb.body))).toMatchObject({ type: "callback.status", "data.cbkId": "55", "data.cbkStatus": "4" })
  })

  it("applies a JSONata transform", async () => {
    expect((await push({ type: "4", peer: "1", memo: memo({ cdrId: 6006, exteName: "李四" }) })).code).toBe(0)
    const r = await eventually(() => mapped.received.find((x) => x.body.includes("6006")))
    expect(JSON.parse(r.body)).toEqual({ call: 6006, what: "call.recording", who: "李四" })
  })

  it("dead-letters a delivery whose transform fails, and says why", async () => {
    expect((await push({ type: "2", peer: "1", memo: memo({ cdrId: 7007 }) })).code).toBe(0)
    const dead = await eventually(async () => (await adminApi("GET", "/dead-letters?target=broken")).body.items?.find((i) => (i.event as { data: { cdrId: number } }).data.cdrId === 7007))
    expect({ target: dead.target, reason: dead.reason }).toEqual({ target: "broken", reason: "transform" })
    expect(String(dead.lastError)).toMatch(/transform failed/)
    expect(broken.received).toHaveLength(0)
  })
})

describe("retries, dead letters and redrive", () => {
  it("retries 5xx per the schedule and records every attempt", async () => {
    flaky.received.length = 0
    flaky.setAnswer((req) => (flaky.received.filter((r) => r.body === req.body).length <= 2 ? { status: 503, body: "busy" } : { status: 204 }))
    expect((await push({ woId: "8001", wo_wotId: "1", wotName: "t", wo_action: "1" }, "form", "/api/workorder.json")).code).toBe(0)
    // the third answer is in; its outcome is recorded a moment later
    const delivery = await eventually(async () =>
      (await adminApi("GET", "/deliveries?target=flaky")).body.items!.find((i) => (i.event as { data: { woId: string } }).data.woId === "8001" && i.status === "delivered")
    )
    expect(delivery).toMatchObject({ status: "delivered" })
    expect((delivery.attempts as Array<{ status: number; response: string }>).map((a) => a.status)).toEqual([503, 503, 204])
    expect((delivery.attempts as Array<{ response: string }>)[0]!.response).toBe("busy")
    const gaps = flaky.received.slice(1).map((r, i) => r.at - flaky.received[i]!.at)
    expect(gaps[0]).toBeGreaterThanOrEqual(150)
    expect(gaps[1]).toBeGreaterThanOrEqual(300)
  })

  it("honours Retry-After within the scheduled delay and twice it", async () => {
    flaky.received.length = 0
    flaky.setAnswer((req) => (flaky.received.filter((r) => r.body === req.body).length === 1 ? { status: 429, headers: { "retry-after": "60" } } : { status: 200 }))
    expect((await push({ woId: "8002", wo_wotId: "1", wotName: "t", wo_action: "1" }, "form", "/api/workorder.json")).code).toBe(0)
    await eventually(() => flaky.received.length >= 2 && flaky.received)
    const gap = flaky.received[1]!.at - flaky.received[0]!.at
    expect(gap).toBeGreaterThanOrEqual(390)
    expect(gap).toBeLessThan(5000)
  })

  it("dead-letters a 4xx at once as the receiver's refusal, raises delivery.exhausted, and redrives with the same webhook-id", async () => {
    refusing.received.length = 0
    refusing.setAnswer(() => ({ status: 422, body: "unknown customer" }))
    expect((await push({ cbkId: "900", cbkStatus: "3" }, "form", "/api/callback.json")).code).toBe(0)
    const dead = await eventually(async () => (await adminApi("GET", "/dead-letters?target=refusing")).body.items?.[0])
    expect(dead).toMatchObject({ reason: "refused", attempts: [expect.objectContaining({ status: 422, response: "unknown customer" })] })
    expect(refusing.received).toHaveLength(1)
    const alert = await eventually(() => bodies(ops).find((b) => b.type === "delivery.exhausted" && b.data.target === "refusing"))
    expect(alert.data).toMatchObject({ reason: "refused", eventType: "callback.status" })

    refusing.setAnswer(() => ({ status: 200 }))
    const redrive = await adminApi("POST", "/dead-letters/redrive", { target: "refusing" })
    expect(redrive.body).toEqual({ code: 0, redriven: 1 })
    await eventually(() => refusing.received.length === 2)
    expect(refusing.received[1]!.headers["webhook-id"]).toBe(refusing.received[0]!.headers["webhook-id"])
    expect((await adminApi("GET", "/dead-letters?target=refusing")).body.items).toEqual([])
  })

  it("redrives in bulk every dead letter a filter matches, and deletes on request", async () => {
    refusing.received.length = 0
    refusing.setAnswer(() => ({ status: 410 }))
    for (let i = 0; i < 5; i++) await push({ cbkId: String(910 + i), cbkStatus: "1" }, "form", "/api/callback.json")
    await eventually(async () => ((await adminApi("GET", "/dead-letters?target=refusing")).body.items?.length ?? 0) === 5)
    const ids = (await adminApi("GET", "/dead-letters?target=refusing")).body.items!.map((i) => i.id as number)
    expect((await adminApi("POST", "/dead-letters/redrive", { ids: ids.slice(0, 2) })).body.redriven).toBe(2)
    await eventually(() => refusing.received.length >= 7)
    const show = async () => [refusing.received.length, (await adminApi("GET", "/deliveries?target=refusing")).body.items?.map((i) => [i.status, i.reason, i.lastError])]
    await eventually(async () => ((await adminApi("GET", "/dead-letters?target=refusing")).body.items?.length ?? 0) === 5, 10_000, show)
    const bulk = await adminApi("POST", "/dead-letters/redrive", { target: "refusing", type: "callback.status", since: 0, until: Date.now() + 1000 })
    expect(bulk.body.redriven).toBe(5)
    await eventually(() => refusing.received.length >= 12)
    await eventually(async () => ((await adminApi("GET", "/dead-letters?target=refusing")).body.items?.length ?? 0) === 5)
    expect((await adminApi("DELETE", "/dead-letters", { target: "refusing" })).body).toEqual({ code: 0, deleted: 5 })
    expect((await adminApi("GET", "/dead-letters?target=refusing")).body.items).toEqual([])
  })

  it("an empty id list names no dead letter: a redrive or a purge with ids [] touches none", async () => {
    refusing.setAnswer(() => ({ status: 410 }))
    await push({ cbkId: "950", cbkStatus: "1" }, "form", "/api/callback.json")
    await eventually(async () => ((await adminApi("GET", "/dead-letters?target=refusing")).body.items?.length ?? 0) === 1)
    expect((await adminApi("POST", "/dead-letters/redrive", { ids: [] })).body).toEqual({ code: 0, redriven: 0 })
    expect((await adminApi("DELETE", "/dead-letters", { ids: [] })).body).toEqual({ code: 0, deleted: 0 })
    expect((await adminApi("GET", "/dead-letters?target=refusing")).body.items).toHaveLength(1)
    // a body that is not a JSON object is refused, not read as "no filter"
    const res = await fetch(`${server.url}/admin/api/targets/refusing/recover`, { method: "POST", headers: { authorization: `Bearer ${adminToken()}` }, body: "{since:" })
    expect(res.status).toBe(400)
    expect(await res.json()).toEqual({ code: -14, message: "malformed JSON body" })
    expect((await adminApi("POST", "/dead-letters/redrive", [1, 2])).body).toEqual({ code: -14, message: "malformed JSON body: expected a JSON object" })
    expect((await adminApi("GET", "/dead-letters?target=refusing")).body.items).toHaveLength(1)
    expect((await adminApi("DELETE", "/dead-letters", { target: "refusing" })).body).toEqual({ code: 0, deleted: 1 })
  })

  it("lists, and purges by ids, more dead letters than SQLite takes parameters in one statement; listings page with before/next", async () => {
    // 40 000 dead letters of a target nobody configured, written as a long outage would leave them
    const w = new Database(path.join(server.dataDir, "bridge.db"))
    const N = 40_000
    const base = 9_000_000_000_000
    w.pragma("busy_timeout = 10000")
    w.transaction(() => {
      const ev = w.prepare("INSERT INTO events (id, type, occurred_at, enterprise, source, data) VALUES (?, 'call.hangup', ?, '100008', 'push:voip', '{}')")
      const dl = w.prepare("INSERT INTO deliveries (id, event_id, target, status, attempts, next_attempt_at, webhook_id, last_error, dead_reason, created_at, updated_at) VALUES (?, ?, 'ghost', 'dead', 1, 0, ?, 'HTTP 503', 'exhausted', 0, 0)")
      const at = w.prepare("INSERT INTO attempts (delivery_id, n, started_at, status, latency_ms) VALUES (?, 1, 0, 503, 1)")
      for (let i = 0; i < N; i++) {
        ev.run(base + i, Date.now())
        dl.run(base + N + i, base + i, `msg_${base + N + i}`)
        at.run(base + N + i)
      }
    })()
    const ghostCount = () => (w.prepare("SELECT (SELECT count(*) FROM deliveries WHERE target = 'ghost') + (SELECT count(*) FROM attempts WHERE delivery_id >= ? AND delivery_id < ?) AS n").get(base + N, base + 2 * N) as { n: number }).n
    try {
      expect(ghostCount()).toBe(2 * N)
      const first = await adminApi("GET", "/dead-letters?target=ghost&limit=1000")
      expect(first.body.items).toHaveLength(1000)
      expect(first.body.items![0]!.id).toBe(base + 2 * N - 1)
      expect(first.body.next).toBe(first.body.items![999]!.id)
      const second = await adminApi("GET", `/dead-letters?target=ghost&limit=1000&before=${String(first.body.next)}`)
      expect(second.body.items![0]!.id).toBe((first.body.next as number) - 1)
      expect((await adminApi("GET", "/dead-letters?target=ghost&limit=0")).body).toEqual({ code: -14, message: "limit: expected a whole number from 1 to 1000" })
      const last = await adminApi("GET", `/dead-letters?target=ghost&before=${base + N + 5}`)
      expect(last.body.items).toHaveLength(5)
      expect(last.body.next).toBeUndefined()
      // every one of them named by id in one request: all deleted with their attempts, nothing else
      const ids = Array.from({ length: N }, (_, i) => base + N + i)
      expect((await adminApi("DELETE", "/dead-letters", { ids })).body).toEqual({ code: 0, deleted: N })
      expect(ghostCount()).toBe(0)
    } finally {
      w.prepare("DELETE FROM attempts WHERE delivery_id >= ? AND delivery_id < ?").run(base + N, base + 2 * N)
      w.prepare("DELETE FROM deliveries WHERE target = 'ghost'").run()
      w.prepare("DELETE FROM events WHERE id >= ? AND id < ?").run(base, base + N)
      w.close()
    }
  })

  it("recovers a target since a time: every dead letter of its events since then is sent again", async () => {
    refusing.received.length = 0
    refusing.setAnswer(() => ({ status: 404 }))
    const since = Date.now()
    await push({ cbkId: "990", cbkStatus: "2" }, "form", "/api/callback.json")
    await eventually(async () => ((await adminApi("GET", "/dead-letters?target=refusing")).body.items?.length ?? 0) === 1)
    refusing.setAnswer(() => ({ status: 200 }))
    expect((await adminApi("POST", "/targets/refusing/recover", { since: new Date(since).toISOString() })).body).toEqual({ code: 0, redriven: 1 })
    await eventually(() => refusing.received.length === 2)
    expect((await adminApi("GET", "/dead-letters?target=refusing")).body.items).toEqual([])
  })

  it("keeps the order of one call's deliveries to a target, even across retries", async () => {
    ordered.setAnswer((req, n) => (n === 1 ? { status: 500 } : { status: 200 }))
    ordered.received.length = 0
    for (const type of ["1", "2", "3", "4"]) expect((await push({ type, peer: "1", memo: memo({ cdrId: 8888 }) })).code).toBe(0)
    await eventually(() => bodies(ordered).filter((b) => b.data.cdrId === 8888).length >= 5)
    const seen = bodies(ordered).filter((b) => b.data.cdrId === 8888).map((b) => b.type)
    expect(seen).toEqual(["call.dialing", "call.dialing", "call.answered", "call.hangup", "call.recording"])
  })
})

describe("circuit breaker", () => {
  it("opens after continuous failure (target.failing), probes after the cool-down, closes on success (target.recovered)", async () => {
    flaky.received.length = 0
    let healthy = false
    flaky.setAnswer(() => (healthy ? { status: 200 } : { status: 503 }))
    for (let i = 0; i < 3; i++) expect((await push({ woId: String(8100 + i), wo_wotId: "1", wotName: "t", wo_action: "3" }, "form", "/api/workorder.json")).code).toBe(0)
    const failing = await eventually(() => bodies(ops).find((b) => b.type === "target.failing" && b.data.target === "flaky"))
    expect(failing.data.failures).toBeGreaterThanOrEqual(3)
    const whenOpen = flaky.received.length
    await new Promise((r) => setTimeout(r, 100))
    expect(flaky.received.length).toBe(whenOpen)
    healthy = true
    await eventually(() => bodies(ops).find((b) => b.type === "target.recovered" && b.data.target === "flaky"))
    await eventually(async () => {
      const items = (await adminApi("GET", "/deliveries?target=flaky&status=delivered")).body.items ?? []
      return ["8100", "8101", "8102"].every((id) => items.some((i) => (i.event as { data: { woId: string } }).data.woId === id))
    })
  })
})

describe("admin API", () => {
  it("answers 401 without the bearer token", async () => {
    expect((await adminApi("GET", "/targets", undefined, "wrong-token-wrong-token")).status).toBe(401)
    expect((await fetch(`${server.url}/admin/api/dead-letters`)).status).toBe(401)
  })

  it("creates, reads, patches and deletes targets, validating bodies", async () => {
    const rx = await startReceiver(() => ({ status: 200 }))
    try {
      expect((await adminApi("POST", "/targets", { name: "extra", url: "ftp://nope" })).body).toMatchObject({ code: -14, message: expect.stringMatching(/^url: expected an http\(s\) URL/) })
      expect((await adminApi("POST", "/targets", { name: "extra", url: "http://127.0.0.1:9/never", events: ["blacklist.*"], retry: { scheduleMs: [0, 60000] } })).status).toBe(201)
      expect((await adminApi("POST", "/targets", { name: "extra", url: rx.url })).status).toBe(409)
      expect((await adminApi("GET", "/targets/extra")).body).toMatchObject({ name: "extra", format: "json", events: ["blacklist.*"] })
      // an event waits for the dead URL; a PATCH of the URL applies to it at once
      await asAdmin(server, "addBlacklists", { phones: "13900000000" })
      await eventually(async () => ((await adminApi("GET", "/deliveries?target=extra")).body.items?.[0]?.attempts as unknown[] | undefined)?.length === 1)
      expect((await adminApi("PATCH", "/targets/extra", { url: rx.url, retry: { scheduleMs: [0, 50] } })).body).toMatchObject({ code: 0 })
      await adminApi("POST", "/dead-letters/redrive", { target: "extra" })
      const d = new Database(path.join(server.dataDir, "bridge.db"))
      d.prepare("UPDATE deliveries SET next_attempt_at = 0 WHERE target = 'extra' AND status = 'pending'").run()
      d.close()
      const got = await eventually(() => rx.received[0])
      expect(JSON.parse(got.body)).toMatchObject({ type: "blacklist.added", data: { phones: ["13900000000"] } })
      expect((await adminApi("PATCH", "/targets/extra", { concurrency: 0 })).body).toMatchObject({ code: -14, message: expect.stringMatching(/^concurrency/) })
      expect((await adminApi("DELETE", "/targets/extra")).body).toMatchObject({ code: 0 })
      expect((await adminApi("GET", "/targets/extra")).status).toBe(404)
    } finally {
      await rx.close()
    }
  })

  it("lists events by type and re-sends an event to a target it never went to", async () => {
    const { body } = await adminApi("GET", "/events?type=call.hangup&limit=1000")
    const event = body.items!.find((e) => (e.data as { cdrId?: number }).cdrId === 2323)!
    expect(event).toMatchObject({ type: "call.hangup", source: "push:voip" })
    const first = await adminApi("POST", `/events/${event.id}/resend`, { target: "mapped" })
    expect(first.body).toMatchObject({ code: 0, deliveryId: expect.any(Number) })
    expect((await adminApi("POST", `/events/${event.id}/resend`, { target: "mapped" })).body).toMatchObject({ code: -10 })
    await eventually(() => mapped.received.find((r) => JSON.parse(r.body).what === "call.hangup"))
  })

  it("pages events newest first and filters them by a type glob", async () => {
    const all = (await adminApi("GET", "/events?type=call.*&limit=1000")).body.items!
    expect(all.length).toBeGreaterThan(3)
    expect(all.every((e) => String(e.type).startsWith("call."))).toBe(true)
    const first = await adminApi("GET", "/events?type=call.*&limit=2")
    expect(first.body.items!.map((e) => e.id)).toEqual(all.slice(0, 2).map((e) => e.id))
    const second = await adminApi("GET", `/events?type=call.*&limit=2&before=${String(first.body.next)}`)
    expect(second.body.items!.map((e) => e.id)).toEqual(all.slice(2, 4).map((e) => e.id))
    expect((await adminApi("GET", `/events?type=call.*&limit=1000&before=${String(all[all.length - 2]!.id)}`)).body).toEqual({ items: [all[all.length - 1]] })
    expect((await adminApi("GET", "/events?limit=5000")).body).toEqual({ code: -14, message: "limit: expected a whole number from 1 to 1000" })
    expect((await adminApi("GET", "/events?before=x")).body).toMatchObject({ code: -14, message: expect.stringMatching(/^before:/) })
  })
})

describe("retention", () => {
  it("deletes old delivered events with their deliveries, and keeps dead letters whatever their age", async () => {
    const w = new Database(path.join(server.dataDir, "bridge.db"))
    const old = Date.now() - 40 * 86_400_000
    const delivered = w.prepare("SELECT event_id FROM deliveries WHERE status = 'delivered' LIMIT 1").get() as { event_id: number }
    const dead = w.prepare("SELECT event_id FROM deliveries WHERE status = 'dead' LIMIT 1").get() as { event_id: number }
    w.prepare(`UPDATE events SET occurred_at = ? WHERE id IN (?, ?)`).run(old, delivered.event_id, dead.event_id)
    w.close()
    await server.runtime.runPromise(retention.run)
    const r = db()
    expect(r.prepare("SELECT count(*) AS n FROM events WHERE id = ?").get(delivered.event_id)).toEqual({ n: 0 })
    expect(r.prepare("SELECT count(*) AS n FROM deliveries WHERE event_id = ?").get(delivered.event_id)).toEqual({ n: 0 })
    expect(r.prepare("SELECT count(*) AS n FROM events WHERE id = ?").get(dead.event_id)).toEqual({ n: 1 })
    r.close()
  })
})

describe("receiver guards", () => {
  it("requires the configured token, and refuses addresses outside the allow-list", async () => {
    const guarded = await startTestServer({
      receive: {
        voip: { path: "/hooks/voip", token: "s3cret-token", allowFrom: [] },
        workorder: { path: "/api/workorder.json", allowFrom: ["10.0.0.0/8"] },
        callback: { path: "/api/callback.json", allowFrom: ["127.0.0.1"] }
      }
    })
    try {
      const post = (p: string, params: Record<string, string>, headers: Record<string, string> = {}) =>
        fetch(`${guarded.url}${p}`, { method: "POST", headers, body: new URLSearchParams(params) }).then((r) => r.json() as Promise<{ code: number }>)
      expect((await post("/hooks/voip", { type: "1", peer: "1" })).code).toBe(-2)
      expect((await post("/hooks/voip", { type: "1", peer: "1", token: "wrong-token!" })).code).toBe(-2)
      expect((await post("/hooks/voip", { type: "1", peer: "1", token: "s3cret-token" })).code).toBe(0)
      expect((await post("/hooks/voip", { type: "1", peer: "2" }, { "x-bridge-token": "s3cret-token" })).code).toBe(0)
      expect((await fetch(`${guarded.url}/api/voip.json`, { method: "POST" })).status).toBe(404)
      expect((await post("/api/workorder.json", { woId: "1", wo_wotId: "1", wotName: "t", wo_action: "1" })).code).toBe(-5)
      expect((await post("/api/callback.json", { cbkId: "1", cbkStatus: "1" })).code).toBe(0)
    } finally {
      await guarded.close()
    }
  })
})


