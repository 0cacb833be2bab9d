/**
 * Pushes at the edges of what we take in: JSON nested so deeply that storing it would break
 * every listing and delivery after it, and the receiver's token spelt every way a sender can
 * spell it — none of it stored, none of it passed on.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import Database from "better-sqlite3"
import { Either, ParseResult, Schema } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as P from "../schemas/Param.js"
import { rawRequest } from "./support/Raw.js"
import { eventually, startReceiver } from "./support/Receiver.js"
import { startTestServer, type TestServer } from "./support/TestServer.js"

type Rx = Awaited<ReturnType<typeof startReceiver>>
const TOKEN = "s3cret-hardening-token"
let server: TestServer
let json: Rx, passthrough: Rx

const url = (p: string) => `${server.url}${p}`
const answer = async (res: Promise<Response>) => {
  const r = await res
  return { status: r.status, ...((await r.json()) as { code: number; message: string }) }
}
const post = (p: string, body: string | URLSearchParams | FormData, headers: Record<string, string> = {}) => answer(fetch(url(p), { method: "POST", headers, body }))
const adminToken = () => fs.readFileSync(path.join(server.dataDir, "admin-token"), "utf8").trim()
const adminGet = async (p: string) => {
  const res = await fetch(url(`/admin/api${p}`), { headers: { authorization: `Bearer ${adminToken()}` } })
  return { status: res.status, body: (await res.json()) as { items: Array<Record<string, unknown>> } }
}
const rows = <T>(sql: string, ...args: Array<unknown>) => {
  const d = new Database(path.join(server.dataDir, "bridge.db"), { readonly: true })
  try {
    return d.prepare(sql).all(...args) as Array<T>
  } finally {
    d.close()
  }
}
const healthy = async () => expect((await fetch(url("/healthz"))).status).toBe(200)
// by text, not json_extract: the rows stored directly below are not all JSON SQLite reads
const storedFor = (phone: string) => rows<{ raw: string }>("SELECT raw FROM events WHERE instr(data, ?) > 0", `"phone":"${phone}"`)

/** `{"a":{"a":…1…}}`, `levels` objects deep */
const nested = (levels: number, key = '"a"') => `{${key}:`.repeat(levels) + "1" + "}".repeat(levels)

beforeAll(async () => {
  ;[json, passthrough] = await Promise.all([startReceiver(), startReceiver()])
  server = await startTestServer({
    forwarding: { pollIntervalMs: 50 },
    receive: {
      voip: { path: "/api/voip.json", token: TOKEN, allowFrom: [] },
      workorder: { path: "/api/workorder.json", token: TOKEN, allowFrom: [] },
      callback: { path: "/api/callback.json", token: TOKEN, allowFrom: [] }
    },
    targets: [
      { name: "json", url: json.url, events: ["call.*"], retry: { scheduleMs: [0] } },
      { name: "passthrough", url: passthrough.url, events: ["call.*"], format: "800ing", retry: { scheduleMs: [0] } }
    ]
  })
})
afterAll(async () => {
  await server.close()
  await Promise.all([json.close(), passthrough.close()])
})

describe("JSON nested too deeply", () => {
  it("refuses a memo nested thousands of levels deep (strict or relaxed) with -14 naming it, and stores nothing", async () => {
    const cases = [
      ["13800000001", nested(4000)],
      ["13800000002", nested(4180)],
      ["13800000003", nested(4000, "a")],
      // a 19-digit number sends strict JSON through lossless-json, which recurses
      ["13800000004", `{"id":7687658987667780097,"n":${nested(4000)}}`],
      ["13800000005", nested(65)]
    ] as const
    for (const [phone, memo] of cases) {
      const got = await post(`/api/voip.json?token=${TOKEN}`, new URLSearchParams({ type: "1", peer: "1", phone, memo }))
      expect(got).toMatchObject({ status: 200, code: -14, message: expect.stringMatching(/memo: nested deeper than 64 levels/) })
      expect(storedFor(phone)).toEqual([])
    }
    await healthy()
    const events = await adminGet("/events")
    expect(events.status).toBe(200)
  })

  it("takes a memo 64 levels deep, and brackets inside strings and comments do not count", async () => {
    const brackets = "{[".repeat(200)
    const memos = [
      ["13800000011", nested(64)],
      ["13800000012", JSON.stringify({ cdrId: 860012, note: brackets })],
      ["13800000013", `{cdrId:860013, note:'${brackets}', /* ${brackets} */ n:1}`]
    ] as const
    for (const [phone, memo] of memos) {
      expect(await post(`/api/voip.json?token=${TOKEN}`, new URLSearchParams({ type: "1", peer: "1", phone, memo }))).toMatchObject({ code: 0, message: "OK" })
      expect(storedFor(phone)).toHaveLength(1)
    }
    const [relaxed] = rows<{ data: string }>("SELECT data FROM events WHERE instr(data, '13800000013') > 0")
    expect(JSON.parse(relaxed!.data)).toMatchObject({ memoParsed: true, memo: { cdrId: 860013, note: brackets } })
  })

  it("refuses a JSON body whose memo object nests too deeply, before parsing it", async () => {
    for (const body of [
      `{"type":1,"peer":1,"phone":"13800000021","memo":${nested(4000)}}`,
      `{"type":1,"peer":1,"phone":"13800000022","n":1234567890123456789,"memo":${nested(4000)}}`,
      `{"type":1,"peer":1,"phone":"13800000023","memo":${nested(65)}}`
    ]) {
      const got = await post(`/api/voip.json?token=${TOKEN}`, body, { "content-type": "application/json" })
      expect(got).toMatchObject({ status: 400, code: -14, message: "JSON body: a value is nested deeper than 64 levels" })
    }
    expect(["13800000021", "13800000022", "13800000023"].flatMap(storedFor)).toEqual([])
    // the same memo 64 levels deep, as an object in the body, is taken
    const ok = await post(`/api/voip.json?token=${TOKEN}`, `{"type":1,"peer":1,"phone":"13800000024","memo":${nested(64)}}`, { "content-type": "application/json" })
    expect(ok).toMatchObject({ code: 0, message: "OK" })
    await healthy()
  })

  it("holds every embedded JSON parameter to the same limit (memo, data, content), and parses none too deep when called directly", () => {
    const params = Schema.Struct({ data: P.json })
    const decode = Schema.decodeUnknownEither(params, { errors: "first" })
    const refused = decode({ data: `[${nested(4000)}]` })
    expect(Either.isLeft(refused) && ParseResult.ArrayFormatter.formatErrorSync(refused.left)).toEqual([expect.objectContaining({ path: ["data"], message: "nested deeper than 64 levels" })])
    expect(Either.isRight(decode({ data: `[${nested(63)}]` }))).toBe(true)
    // a message's stored content is read with parseEmbeddedJson itself: too deep is "not parsed", not a crash
    expect(P.parseEmbeddedJson(nested(5000))).toEqual({ raw: nested(5000), parsed: false, value: undefined })
    // past 64 KiB only strict JSON is tried: relaxed text that long is kept raw, as text neither grammar reads
    const long = `{note:'${"x".repeat(70_000)}'}`
    expect(P.parseEmbeddedJson(long)).toMatchObject({ parsed: false })
    expect(P.parseEmbeddedJson(JSON.stringify({ note: "x".repeat(70_000) }))).toMatchObject({ parsed: true })
  })

  it("lists a deeply nested event stored before the limit as unreadable, and dead-letters its delivery rather than failing", async () => {
    const w = new Database(path.join(server.dataDir, "bridge.db"))
    w.pragma("busy_timeout = 5000")
    const deep = `{"type":1,"memo":${nested(4000)}}`
    w.prepare("INSERT INTO events (id, type, occurred_at, source, data, raw) VALUES (9001, 'call.ringing', ?, 'push:voip', ?, ?)").run(
      Date.now(),
      deep,
      JSON.stringify({ method: "POST", query: "", contentType: null, body: "type=1" })
    )
    w.prepare("INSERT INTO events (id, type, occurred_at, source, data) VALUES (9002, 'call.ringing', ?, 'push:voip', 'not json')").run(Date.now())
    w.prepare("INSERT INTO deliveries (id, event_id, target, status, next_attempt_at, webhook_id, created_at, updated_at) VALUES (9001, 9001, 'json', 'pending', 0, 'msg_9001', 0, 0)").run()
    w.close()
    for (let i = 0; i < 2; i++) {
      const events = await adminGet("/events")
      expect(events.status).toBe(200)
      expect(events.body.items.find((e) => e.id === 9001)).toMatchObject({ data: null, unreadable: true })
      expect(events.body.items.find((e) => e.id === 9002)).toMatchObject({ data: null, unreadable: true })
      const deliveries = await adminGet("/deliveries")
      expect(deliveries.status).toBe(200)
      expect(deliveries.body.items.find((d) => d.id === 9001)).toMatchObject({ event: { id: 9001, data: null, unreadable: true } })
    }
    const dead = await eventually(() => rows<{ status: string; dead_reason: string; last_error: string }>("SELECT status, dead_reason, last_error FROM deliveries WHERE id = 9001").find((d) => d.status === "dead"))
    expect(dead).toMatchObject({ dead_reason: "unsendable", last_error: expect.stringMatching(/stored data cannot be read: nested deeper than 256 levels/) })
    expect(json.received.some((r) => r.headers["webhook-id"] === "msg_9001")).toBe(false)
    expect((await adminGet("/dead-letters")).status).toBe(200)
    await healthy()
  })
})

describe("the receiver's token, however it is spelt", () => {
  const form = (phone: string) => `type=3&peer=1&phone=${phone}&memo=${encodeURIComponent(`{"cdrExtension":"100008800","cdrTalktime":3}`)}`
  const header = { "x-bridge-token": TOKEN }
  const cases: ReadonlyArray<{ name: string; phone: string; send: (phone: string) => Promise<{ code: number; message: string }> }> = [
    { name: "JSON, escaped key", phone: "13900000001", send: (p) => post("/api/voip.json", `{"type":3,"peer":1,"phone":"${p}","\\u0074oken":"${TOKEN}"}`, { "content-type": "application/json" }) },
    { name: "JSON, key given twice (the last one counts)", phone: "13900000002", send: (p) => post("/api/voip.json", `{"token":"${TOKEN}-not","type":3,"peer":1,"phone":"${p}","token":"${TOKEN}"}`, { "content-type": "application/json" }) },
    { name: "JSON, twice, escaped, pretty", phone: "13900000003", send: (p) => post("/api/voip.json", `{\n  "tok\\u0065n": "${TOKEN}",\n  "type": 3,\n  "peer": 1,\n  "phone": "${p}",\n  "token" : "${TOKEN}"\n}`, { "content-type": "application/json" }) },
    { name: "JSON, indexed key with the header", phone: "13900000004", send: (p) => post("/api/voip.json", `{"type":3,"peer":1,"phone":"${p}","token[0]":"${TOKEN}","n":7687658987667780097}`, { "content-type": "application/json", ...header }) },
    { name: "urlencoded %74oken", phone: "13900000005", send: (p) => post("/api/voip.json", `%74oken=${TOKEN}&${form(p)}`, { "content-type": "application/x-www-form-urlencoded" }) },
    { name: "urlencoded tok%65n", phone: "13900000006", send: (p) => post("/api/voip.json", `${form(p)}&tok%65n=${TOKEN}`, { "content-type": "application/x-www-form-urlencoded" }) },
    { name: "urlencoded token[] and token%5B0%5D with the header", phone: "13900000007", send: (p) => post("/api/voip.json", `token[]=${TOKEN}&${form(p)}&token%5B0%5D=${TOKEN}`, { "content-type": "application/x-www-form-urlencoded", ...header }) },
    { name: "query tok%65n", phone: "13900000008", send: (p) => post(`/api/voip.json?tok%65n=${TOKEN}&x=1`, form(p), { "content-type": "application/x-www-form-urlencoded" }) },
    { name: "header only", phone: "13900000009", send: (p) => post("/api/voip.json?x=2", form(p), { "content-type": "application/x-www-form-urlencoded", ...header }) },
    {
      name: "multipart token and token[1] with the header",
      phone: "13900000010",
      send: (p) => {
        const fd = new FormData()
        for (const [k, v] of new URLSearchParams(form(p))) fd.append(k, v)
        fd.append("token", TOKEN)
        fd.append("token[1]", TOKEN)
        return answer(fetch(url("/api/voip.json"), { method: "POST", headers: header, body: fd }))
      }
    }
  ]

  for (const c of cases)
    it(`keeps it out of events.raw and of both targets' requests: ${c.name}`, async () => {
      expect(await c.send(c.phone)).toMatchObject({ code: 0, message: "OK" })
      const [stored] = storedFor(c.phone)
      expect(stored).toBeDefined()
      expect(stored!.raw).not.toContain(TOKEN)
      const got = [await eventually(() => json.received.find((r) => r.body.includes(c.phone))), await eventually(() => passthrough.received.find((r) => r.body.includes(c.phone)))]
      for (const r of got) {
        expect(r.body).not.toContain(TOKEN)
        expect(r.url).not.toContain(TOKEN)
        expect(JSON.stringify(r.headers)).not.toContain(TOKEN)
      }
    })

  it("re-sends what is left of a JSON body byte for byte, exact numbers and layout kept", async () => {
    const sent = await eventually(() => passthrough.received.find((r) => r.body.includes("13900000004")))
    expect(sent.body).toBe('{"type":3,"peer":1,"phone":"13900000004","n":7687658987667780097}')
    const pretty = await eventually(() => passthrough.received.find((r) => r.body.includes("13900000003")))
    expect(pretty.body).toBe('{\n  "type": 3,\n  "peer": 1,\n  "phone": "13900000003"\n}')
    const form = await eventually(() => passthrough.received.find((r) => r.body.includes("13900000007")))
    expect(new URLSearchParams(form.body).get("phone")).toBe("13900000007")
  })

  it("refuses a push whose token would be left in what is stored (-14), and stores nothing", async () => {
    const refused = [
      post("/api/voip.json", `{"type":3,"peer":1,"phone":"13900000021","note":"${TOKEN}"}`, { "content-type": "application/json", ...header }),
      post("/api/voip.json", `TOKEN=${TOKEN}&type=3&peer=1&phone=13900000022`, { "content-type": "application/x-www-form-urlencoded", ...header })
    ]
    for (const r of await Promise.all(refused)) expect(r).toMatchObject({ status: 200, code: -14, message: expect.stringMatching(/^parameter token: the token could not be removed from the body/) })
    expect(storedFor("13900000021")).toEqual([])
    expect(storedFor("13900000022")).toEqual([])
    await healthy()
  })

  it("takes the token out of a raw JSON body whose key is escaped letter by letter", async () => {
    const body = `{"type":3,"peer":1,"phone":"13900000030","\\u0074\\u006fken":"${TOKEN}"}`
    const res = await rawRequest(server.url, "POST", "/api/voip.json", { "Content-Type": "application/json" }, Buffer.from(body))
    expect(res.status).toBe(200)
    expect(JSON.parse(res.body.toString("utf8"))).toEqual({ code: 0, message: "OK" })
    expect(storedFor("13900000030")[0]!.raw).not.toContain(TOKEN)
  })
})
