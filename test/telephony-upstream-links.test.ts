/**
 * The upstream driver with `telephony.upstream.publicUrl` (issue 13, upstream links): a relayed
 * callbackPhone gives the platform the bridge's own callbackUrl; the platform's status pushes
 * there update our row and reach the integrator's callbackUrl with OUR cbkId; what does not name
 * one of our rows with its key is refused and stores nothing. A fake platform over real HTTP.
 */
import * as http from "node:http"
import * as path from "node:path"
import Database from "better-sqlite3"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { eventually, startReceiver } from "./support/Receiver.js"
import { asAdmin, startTestServer, type TestServer } from "./support/TestServer.js"

const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64")
const fields = (body: string) => Object.fromEntries(new URLSearchParams(body))
const creds = { sa_user: "100088601", sa_password: "0DCBDF0AA187EA7498D8AB64604096FC" }
const PUBLIC = "http://bridge.example:8080/"
const query = <A>(s: TestServer, sql: string, ...params: ReadonlyArray<unknown>): Array<A> => {
  const db = new Database(path.join(s.dataDir, "bridge.db"), { readonly: true })
  try {
    return db.prepare(sql).all(...params) as Array<A>
  } finally {
    db.close()
  }
}

/** A fake platform: each request's fields kept; answers a new id of its own for each. */
const fakePlatform = () =>
  new Promise<{ url: string; calls: Array<URLSearchParams>; close: () => Promise<void> }>((resolve) => {
    const calls: Array<URLSearchParams> = []
    let next = 700_000_000_000_001
    const server = http.createServer((req, res) => {
      let body = ""
      req.on("data", (c: Buffer) => (body += c.toString("utf8")))
      req.on("end", () => {
        calls.push(new URLSearchParams(body))
        res.writeHead(200, { "content-type": "application/json" }).end(`{"code":0,"message":"OK","id":${next++}}`)
      })
    })
    server.listen(0, "127.0.0.1", () =>
      resolve({
        url: `http://127.0.0.1:${(server.address() as { port: number }).port}/voip/api/jsondata.html`,
        calls,
        close: () => new Promise((done) => { server.closeAllConnections(); server.close(() => done()) })
      })
    )
  })

describe("upstream callback statuses linked back (telephony.upstream.publicUrl)", () => {
  let platform: Awaited<ReturnType<typeof fakePlatform>>
  let hooks: Awaited<ReturnType<typeof startReceiver>>
  let server: TestServer

  beforeAll(async () => {
    platform = await fakePlatform()
    hooks = await startReceiver()
    server = await startTestServer({
      forwarding: { pollIntervalMs: 50, circuitThreshold: 50, circuitCooldownMs: 300, retentionDays: 30 },
      telephony: { driver: "upstream", upstream: { url: platform.url, ...creds, timeoutMs: 2000, publicUrl: PUBLIC }, callbackDelivery: { scheduleMs: [0, 50] } }
    })
  })
  afterAll(async () => {
    await server.close()
    await platform.close()
    await hooks.close()
  })

  /** what the platform pushes: to the URL it was given (our host in place of publicUrl's), its id in place of {cbkId} */
  const push = (given: string, platformId: string, body: Record<string, string>) =>
    fetch(given.replace("http://bridge.example:8080", server.url).replace("{cbkId}", platformId), { method: "POST", body: new URLSearchParams(body) }).then(
      async (r) => ({ status: r.status, body: (await r.json()) as { code: number; message: string } })
    )

  it("the platform gets our URL; its pushes update our row and reach the integrator with our cbkId, once each", async () => {
    const answer = await asAdmin(server, "callbackPhone", { sourcePhone: "02367073578", descPhone: "13800138000", callbackUrl: b64(`${hooks.url}?cbkId={cbkId}`) })
    expect(answer.code).toBe(0)
    const sent = platform.calls.at(-1)!
    const given = Buffer.from(sent.get("callbackUrl")!, "base64").toString("utf8")
    expect(given).toMatch(/^http:\/\/bridge\.example:8080\/voip\/upstream\/callback\/\{cbkId\}\?key=[\w-]{24}$/)
    const [row] = query<{ upstream_id: string; status: number }>(server, "SELECT upstream_id, status FROM callbacks WHERE cbk_id = ?", answer.id)
    expect(row).toEqual({ upstream_id: "700000000000001", status: 0 })
    const platformId = row!.upstream_id

    expect(await push(given, platformId, { cbkId: platformId, cbkStatus: "1", cbkBeginTime: "2026-11-27 10:00:00" })).toEqual({ status: 200, body: { code: 0, message: "OK" } })
    const done = { cbkId: platformId, cbkStatus: "5", cbkBeginTime: "2026-11-27 10:00:00", cbkSuccessTime: "2026-11-27 10:00:05", cbkTransferSuccessTime: "2026-11-27 10:00:09",
      cbkEndTime: "2026-11-27 10:01:09", cbkTransferEndTime: "2026-11-27 10:01:09", cbkTimes: "64", cbkTransferTimes: "60", cbkResultCode: "NORMAL_CLEARING", cbkWavFile: "2026/11/27/x.wav" }
    expect((await push(given, platformId, done)).body.code).toBe(0)
    // the platform sends the last one again: stored once, announced once
    expect((await push(given, platformId, done)).body.code).toBe(0)

    const pushes = await eventually(() => (hooks.received.length >= 3 ? hooks.received.map((r) => fields(r.body)) : undefined), 5_000)
    await new Promise((r) => setTimeout(r, 300))
    expect(hooks.received.map((r) => fields(r.body).cbkStatus)).toEqual(["0", "1", "5"])
    for (const p of hooks.received) expect(p.url).toBe(`/hook?cbkId=${answer.id}`)
    expect(pushes[2]).toMatchObject({ cbkId: String(answer.id), cbkStatus: "5", cbkTimes: "64", cbkTransferTimes: "60", cbkEndTime: "2026-11-27 10:01:09", cbkResultCode: "NORMAL_CLEARING", cbkWavFile: "2026/11/27/x.wav" })
    const list = await asAdmin(server, "getCallbackList", { id: String(answer.id) })
    expect((list.rows as Array<Record<string, unknown>>)[0]).toMatchObject({ cbkStatus: 5, cbkTimes: 64 })
    expect(query<{ n: number }>(server, "SELECT count(*) AS n FROM events WHERE type = 'callback.status'")[0]!.n).toBe(3)
  })

  it("an unknown id or a wrong key is -11, a missing key or a malformed field -14: nothing stored, the bridge still serves", async () => {
    const answer = await asAdmin(server, "callbackPhone", { sourcePhone: "02367073578", descPhone: "13800138001" })
    expect(answer.code).toBe(0)
    const given = Buffer.from(platform.calls.at(-1)!.get("callbackUrl")!, "base64").toString("utf8")
    const [row] = query<{ upstream_id: string }>(server, "SELECT upstream_id FROM callbacks WHERE cbk_id = ?", answer.id)
    const before = () => ({
      row: query<{ status: number; seq: number }>(server, "SELECT status, seq FROM callbacks WHERE cbk_id = ?", answer.id),
      events: query<{ n: number }>(server, "SELECT count(*) AS n FROM events")[0]!.n
    })
    const start = before()
    const wrongKey = given.replace(/key=[\w-]+/, "key=AAAAAAAAAAAAAAAAAAAAAAAA")
    const cases: Array<[string, string, Record<string, string>, number, RegExp]> = [
      [given, "123456", { cbkId: "123456", cbkStatus: "4" }, -11, /no callback/],
      [wrongKey, row!.upstream_id, { cbkId: row!.upstream_id, cbkStatus: "4" }, -11, /no callback/],
      [given.replace(/\?key=.*$/, ""), row!.upstream_id, { cbkId: row!.upstream_id, cbkStatus: "4" }, -14, /key/],
      [given, row!.upstream_id, { cbkId: row!.upstream_id, cbkStatus: "9" }, -14, /cbkStatus/],
      [given, row!.upstream_id, { cbkId: row!.upstream_id, cbkStatus: "4", cbkBeginTime: "yesterday" }, -14, /cbkBeginTime/],
      [given, row!.upstream_id, { cbkId: row!.upstream_id, cbkStatus: "4", cbkTimes: "-3" }, -14, /cbkTimes/],
      [given, "x%2F..%2Fy", { cbkStatus: "4" }, -14, /cbkId/]
    ]
    for (const [url, id, body, code, message] of cases) {
      const r = await push(url, id, body)
      expect(r.status, JSON.stringify(body)).toBe(200)
      expect(r.body.code, JSON.stringify(body)).toBe(code)
      expect(r.body.message).toMatch(message)
    }
    expect(before()).toEqual(start)
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
  })

  it("a push older than the row's state does not reopen an ended callback: answered 0, nothing stored or announced", async () => {
    const answer = await asAdmin(server, "callbackPhone", { sourcePhone: "02367073578", descPhone: "13800138010", callbackUrl: b64(`${hooks.url}?cbkId={cbkId}`) })
    expect(answer.code).toBe(0)
    const given = Buffer.from(platform.calls.at(-1)!.get("callbackUrl")!, "base64").toString("utf8")
    const platformId = query<{ upstream_id: string }>(server, "SELECT upstream_id FROM callbacks WHERE cbk_id = ?", answer.id)[0]!.upstream_id
    const end = { cbkId: platformId, cbkStatus: "4", cbkBeginTime: "2026-11-27 10:00:00", cbkSuccessTime: "2026-11-27 10:00:05", cbkEndTime: "2026-11-27 10:00:35", cbkTimes: "30" }
    expect((await push(given, platformId, end)).body.code).toBe(0)
    const ended = query<{ status: number; end_ms: number | null; seq: number }>(server, "SELECT status, end_ms, seq FROM callbacks WHERE cbk_id = ?", answer.id)[0]!
    // the platform's retry of "calling", and a status past the end without an end of its own, arrive late
    const stale = await push(given, platformId, { cbkId: platformId, cbkStatus: "1", cbkBeginTime: "2026-11-27 10:00:00" })
    expect(stale).toEqual({ status: 200, body: { code: 0, message: "OK" } })
    expect((await push(given, platformId, { cbkId: platformId, cbkStatus: "5", cbkBeginTime: "2026-11-27 10:00:00" })).body.code).toBe(0)
    expect(query(server, "SELECT status, end_ms, seq FROM callbacks WHERE cbk_id = ?", answer.id)[0]).toEqual(ended)
    expect(ended).toMatchObject({ status: 4 })
    expect(ended.end_ms).not.toBeNull()
    const statuses = query<{ data: string }>(server, "SELECT data FROM events WHERE type = 'callback.status' ORDER BY id")
      .map((e) => JSON.parse(e.data) as { cbkId: number; cbkStatus: number })
      .filter((d) => d.cbkId === answer.id)
    expect(statuses.map((e) => e.cbkStatus)).toEqual([0, 4])
    await eventually(() => hooks.received.filter((r) => r.url === `/hook?cbkId=${answer.id}`).length >= 2 || undefined, 5_000)
    await new Promise((r) => setTimeout(r, 300))
    expect(hooks.received.filter((r) => r.url === `/hook?cbkId=${answer.id}`).map((r) => fields(r.body).cbkStatus)).toEqual(["0", "4"])
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
  })
})
