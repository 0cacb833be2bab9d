/**
 * Delivery at its edges: a transform that never ends, a target deleted under a send, an event
 * that cannot be made into a request, a call's order through an outage and its redrive, a
 * paused target, a transform's string result, deliveries orphaned while the bridge was down.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import Database from "better-sqlite3"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { loadConfig } from "../src/config/AppConfig.js"
import { HELD } from "../src/events/Outbox.js"
import { startServer } from "../src/http/Server.js"
import { startTestServer, tempDir, type TestServer } from "./support/TestServer.js"
import { eventually, startReceiver } from "./support/Receiver.js"

type Rx = Awaited<ReturnType<typeof startReceiver>>
let server: TestServer
let looping: Rx, slow: Rx, plain: Rx, seq: Rx, paused: Rx, text: Rx

const push = async (params: Record<string, string>) =>
  (await (await fetch(`${server.url}/api/voip.json`, { method: "POST", body: new URLSearchParams(params) })).json()) as { code: number }
const adminApi = async (method: string, p: string, body?: unknown) => {
  const token = fs.readFileSync(path.join(server.dataDir, "admin-token"), "utf8").trim()
  const res = await fetch(`${server.url}/admin/api${p}`, { method, headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) })
  return (await res.json()) as Record<string, unknown> & { items?: Array<Record<string, unknown>> }
}
const deliveriesOf = async (target: string) => (await adminApi("GET", `/deliveries?target=${target}&limit=1000`)).items!
/** The settings of a bridge run in this process on `dataDir`, as `npm start` would read them. */
const configFor = (dataDir: string, overrides: Record<string, unknown> = {}) =>
  Effect.runPromise(loadConfig({ env: {}, overrides: { port: 0, host: "127.0.0.1", dataDir, logLevel: "error", ...overrides } }))
const cdrOf = (d: Record<string, unknown>) => ((d.event as { data: { cdrId?: number } }).data.cdrId)

beforeAll(async () => {
  ;[looping, slow, plain, seq, paused, text] = await Promise.all(Array.from({ length: 6 }, () => startReceiver()))
  server = await startTestServer({
    forwarding: { pollIntervalMs: 50 },
    targets: [
      { name: "looping", url: looping.url, events: ["call.dialing"], transform: "($f := function($n){ $f($n + 1) }; $f(0))", retry: { scheduleMs: [0] } },
      { name: "plain", url: plain.url, events: ["call.hangup"], retry: { scheduleMs: [0] } },
      { name: "seq", url: seq.url, events: ["call.*"], retry: { scheduleMs: [0] } },
      { name: "text", url: text.url, events: ["call.recording"], transform: "'cdr=' & data.cdrId", headers: { "Content-Type": "application/x-www-form-urlencoded" }, retry: { scheduleMs: [0] } }
    ]
  })
  // made through the admin API, as the operator who later pauses or deletes them does (the config file's own targets are the file's)
  expect(await adminApi("POST", "/targets", { name: "slow", url: slow.url, events: ["call.answered"], retry: { scheduleMs: [0, 60_000] } })).toMatchObject({ code: 0 })
  expect(await adminApi("POST", "/targets", { name: "paused", url: paused.url, events: ["call.recording"], enabled: false, retry: { scheduleMs: [0] } })).toMatchObject({ code: 0 })
})
afterAll(async () => {
  await server.close()
  for (const rx of [looping, slow, plain, seq, paused, text]) await rx.close()
})

describe("a transform that never ends", () => {
  it("is stopped and dead-lettered with the reason, and the bridge goes on", async () => {
    expect((await push({ type: "1", peer: "1", memo: '{"cdrId":1001}' })).code).toBe(0)
    const dead = await eventually(async () => (await adminApi("GET", "/dead-letters?target=looping")).items?.[0])
    expect(dead).toMatchObject({ reason: "transform", lastError: expect.stringMatching(/^transform failed: Evaluation timeout/) })
    expect(looping.received).toHaveLength(0)
    expect((await push({ type: "3", peer: "1", memo: '{"cdrId":1002}' })).code).toBe(0)
    await eventually(() => plain.received.find((r) => r.body.includes("1002")))
  })
})

describe("a target deleted while its delivery is being sent", () => {
  it("keeps that delivery a dead letter, whatever the send's outcome", async () => {
    slow.setAnswer(() => ({ status: 503, delayMs: 600 }))
    expect((await push({ type: "2", peer: "1", memo: '{"cdrId":1003}' })).code).toBe(0)
    await eventually(() => slow.received.length === 1)
    expect(await adminApi("DELETE", "/targets/slow")).toMatchObject({ code: 0, deadLettered: 1 })
    await new Promise((r) => setTimeout(r, 900))
    const [d] = (await adminApi("GET", "/dead-letters?target=slow")).items!
    expect(d).toMatchObject({ status: "dead", reason: "target deleted" })
    expect(d!.attempts).toHaveLength(1)
  })
})

describe("an event that cannot be made into a request", () => {
  it("is a dead letter at once (unsendable), not retried unseen", async () => {
    const w = new Database(path.join(server.dataDir, "bridge.db"))
    w.pragma("busy_timeout = 5000")
    w.prepare("INSERT INTO events (id, type, occurred_at, source, data) VALUES (77, 'call.hangup', ?, 'push:voip', 'not json')").run(Date.now())
    w.prepare("INSERT INTO deliveries (id, event_id, target, status, next_attempt_at, webhook_id, created_at, updated_at) VALUES (78, 77, 'plain', 'pending', 0, 'msg_78', 0, 0)").run()
    w.close()
    const d = await eventually(() => {
      const r = new Database(path.join(server.dataDir, "bridge.db"), { readonly: true })
      const row = r.prepare("SELECT status, dead_reason, last_error FROM deliveries WHERE id = 78").get() as { status: string; dead_reason: string; last_error: string }
      r.close()
      return row.status === "dead" ? row : undefined
    })
    expect(d).toMatchObject({ dead_reason: "unsendable", last_error: expect.stringMatching(/^the request could not be made: /) })
  })
})

describe("a call's order through an outage", () => {
  it("holds the call's later deliveries behind one that exhausted its retries, and sends them in order once it is redriven", async () => {
    seq.setAnswer(() => ({ status: 503 }))
    expect((await push({ type: "1", peer: "1", memo: '{"cdrId":2001}' })).code).toBe(0)
    await eventually(async () => (await adminApi("GET", "/dead-letters?target=seq")).items?.find((i) => cdrOf(i) === 2001))
    seq.setAnswer(() => ({ status: 200 }))
    seq.received.length = 0
    expect((await push({ type: "2", peer: "1", memo: '{"cdrId":2001}' })).code).toBe(0)
    // another call flows meanwhile
    expect((await push({ type: "2", peer: "1", memo: '{"cdrId":2002}' })).code).toBe(0)
    await eventually(() => seq.received.find((r) => r.body.includes("2002")))
    await new Promise((r) => setTimeout(r, 200))
    expect(seq.received.filter((r) => r.body.includes('"cdrId":2001'))).toHaveLength(0)
    // held out of the due range (claims do not walk past it again), and shown so
    expect((await deliveriesOf("seq")).find((d) => cdrOf(d) === 2001 && d.status === "pending")).toMatchObject({ held: true, nextAttemptAt: null })

    // a call whose later delivery was already waiting when its first one ran out of attempts
    seq.setAnswer(() => ({ status: 503, delayMs: 300 }))
    expect((await push({ type: "1", peer: "1", memo: '{"cdrId":2003}' })).code).toBe(0)
    await eventually(() => seq.received.find((r) => r.body.includes('"cdrId":2003')))
    expect((await push({ type: "3", peer: "1", memo: '{"cdrId":2003}' })).code).toBe(0)
    await eventually(async () => (await adminApi("GET", "/dead-letters?target=seq")).items?.find((i) => cdrOf(i) === 2003))
    expect((await deliveriesOf("seq")).find((d) => cdrOf(d) === 2003 && d.status === "pending")).toMatchObject({ held: true })

    seq.setAnswer(() => ({ status: 200 }))
    seq.received.length = 0
    expect(await adminApi("POST", "/dead-letters/redrive", { target: "seq" })).toEqual({ code: 0, redriven: 2 })
    await eventually(() => seq.received.length === 4)
    const sent = (cdr: number) => seq.received.filter((r) => r.body.includes(`"cdrId":${cdr}`)).map((r) => JSON.parse(r.body).type)
    expect(sent(2001)).toEqual(["call.dialing", "call.answered"])
    expect(sent(2003)).toEqual(["call.dialing", "call.hangup"])
    expect((await deliveriesOf("seq")).filter((d) => d.status !== "delivered")).toEqual([])
  })

  it("keeps an event re-sent to another target in its call's order too; one it reached already is sent again, with a new webhook-id", async () => {
    const [event] = (await adminApi("GET", "/events?type=call.hangup&limit=1")).items!
    const reached = plain.received.filter((r) => r.body.includes(`"id":${String(event!.id)}`) || r.body.includes(`"cdrId":${String((event!.data as { cdrId: number }).cdrId)}`))
    const before = plain.received.length
    expect(await adminApi("POST", `/events/${String(event!.id)}/resend`, { target: "plain" })).toMatchObject({ code: 0 })
    const again = await eventually(() => plain.received.length > before && plain.received[plain.received.length - 1])
    if (reached[0]) expect(again.headers["webhook-id"]).not.toBe(reached[0].headers["webhook-id"])
    expect(await adminApi("POST", `/events/${String(event!.id)}/resend`, { target: "text" })).toMatchObject({ code: 0 })
    const r = new Database(path.join(server.dataDir, "bridge.db"), { readonly: true })
    const row = r.prepare("SELECT order_key FROM deliveries WHERE event_id = ? AND target = 'text'").get(event!.id) as { order_key: string | null }
    r.close()
    expect(row.order_key).toBe(String((event!.data as { cdrId: number }).cdrId))
  })
})

describe("a paused target", () => {
  it("keeps its deliveries waiting while disabled, and sends them once enabled", async () => {
    expect((await push({ type: "4", peer: "1", memo: '{"cdrId":3001}' })).code).toBe(0)
    await eventually(() => text.received.find((r) => r.body === "cdr=3001"))
    expect((await deliveriesOf("paused")).map((d) => [cdrOf(d), d.status])).toEqual([[3001, "pending"]])
    expect(paused.received).toHaveLength(0)
    expect(await adminApi("PATCH", "/targets/paused", { enabled: true })).toMatchObject({ code: 0 })
    await eventually(() => paused.received.find((r) => r.body.includes("3001")))
  })

  it("sends a transform's string result as it is, with the content-type the target names", async () => {
    const got = text.received.find((r) => r.body === "cdr=3001")!
    expect(got.headers["content-type"]).toBe("application/x-www-form-urlencoded")
  })
})

describe("deliveries of a target gone while the bridge was down", () => {
  it("are dead letters when it starts again, not left waiting unseen", async () => {
    const dataDir = tempDir()
    const config = await configFor(dataDir)
    await (await startServer(config)).close()
    const w = new Database(path.join(dataDir, "bridge.db"))
    w.prepare("INSERT INTO events (id, type, occurred_at, source, data) VALUES (1, 'call.hangup', 0, 'push:voip', '{}')").run()
    w.prepare("INSERT INTO deliveries (id, event_id, target, status, next_attempt_at, webhook_id, created_at, updated_at) VALUES (2, 1, 'removed-from-config', 'pending', 0, 'msg_2', 0, 0)").run()
    w.close()
    const again = await startServer(config)
    try {
      const r = new Database(path.join(dataDir, "bridge.db"), { readonly: true })
      expect(r.prepare("SELECT status, dead_reason FROM deliveries WHERE id = 2").get()).toEqual({ status: "dead", dead_reason: "target deleted" })
      r.close()
      // and the directory is this bridge's alone: a second one is refused while it runs
      await expect(startServer(config)).rejects.toThrow(`another bridge (pid ${process.pid}) serves ${dataDir}`)
    } finally {
      await again.close()
    }
  })
})

describe("a target stored by an earlier version that fails a check added since", () => {
  it("does not stop the bridge: it is loaded as it was, and what it cannot send is a dead letter (unsendable), not a retry loop", async () => {
    const dataDir = tempDir()
    const rx = await startReceiver()
    const config = await configFor(dataDir, { forwarding: { pollIntervalMs: 50 } })
    await (await startServer(config)).close()
    const w = new Database(path.join(dataDir, "bridge.db"))
    const old = { name: "legacy", url: rx.url, events: ["callback.*"], headers: { "X-Agent": "张三" }, retry: { scheduleMs: [0, 50, 50] } }
    w.prepare("INSERT INTO targets (name, config, origin, created_at, updated_at) VALUES ('legacy', ?, 'api', 0, 0)").run(JSON.stringify(old))
    w.prepare("INSERT INTO targets (name, config, origin, created_at, updated_at) VALUES ('garbled', '{not json', 'api', 0, 0)").run()
    w.close()
    const bridge = await startServer(config)
    try {
      const token = fs.readFileSync(path.join(dataDir, "admin-token"), "utf8").trim()
      const admin = async (p: string, init: RequestInit = {}) =>
        (await (await fetch(`${bridge.url}/admin/api${p}`, { ...init, headers: { authorization: `Bearer ${token}`, "content-type": "application/json" } })).json()) as Record<string, unknown> & { items?: Array<Record<string, unknown>> }
      expect(await admin("/targets/legacy")).toMatchObject({ name: "legacy", headers: { "X-Agent": "张三" } })
      // an unreadable row is left out, not a reason to stay down
      expect((await admin("/targets")).items!.map((t) => t.name)).toEqual(["legacy"])
      await fetch(`${bridge.url}/api/callback.json?cbkId=5&cbkStatus=1`)
      const dead = await eventually(async () => (await admin("/dead-letters?target=legacy")).items?.[0])
      expect(dead).toMatchObject({ reason: "unsendable", lastError: expect.stringMatching(/^the request could not be sent: /) })
      expect(dead!.attempts).toHaveLength(1)
      expect(rx.received).toHaveLength(0)
      // fixed through the admin API, then redriven
      expect(await admin("/targets/legacy", { method: "PATCH", body: JSON.stringify({ headers: { "X-Agent": "zhangsan" } }) })).toMatchObject({ code: 0 })
      expect(await admin("/dead-letters/redrive", { method: "POST", body: JSON.stringify({ target: "legacy" }) })).toEqual({ code: 0, redriven: 1 })
      await eventually(() => rx.received[0])
      expect(rx.received[0]!.headers["x-agent"]).toBe("zhangsan")
    } finally {
      await bridge.close()
      await rx.close()
    }
  })
})

describe("a circuit open when the bridge stops", () => {
  it("is open again after a restart: a probe goes first, and its success still raises target.recovered", async () => {
    const dataDir = tempDir()
    const [crm, ops] = await Promise.all([startReceiver(() => ({ status: 503 })), startReceiver()])
    const config = await configFor(dataDir, {
      forwarding: { pollIntervalMs: 50, circuitThreshold: 2, circuitCooldownMs: 60_000 },
      targets: [
        { name: "crm", url: crm.url, events: ["callback.*"], retry: { scheduleMs: [0, 50, 50, 50] } },
        { name: "ops", url: ops.url, events: ["target.*"] }
      ]
    })
    const types = () => ops.received.map((r) => JSON.parse(r.body).type as string)
    try {
      let bridge = await startServer(config)
      await fetch(`${bridge.url}/api/callback.json?cbkId=1&cbkStatus=1`)
      await eventually(() => types().includes("target.failing"))
      await bridge.close()
      crm.setAnswer(() => ({ status: 200 }))
      bridge = await startServer(config)
      try {
        // the cool-down (a minute) is not waited again: the restart probes at once
        await eventually(() => types().includes("target.recovered"))
        expect(types()).toEqual(["target.failing", "target.recovered"])
        await eventually(() => crm.received.some((r) => r.body.includes('"cbkId":"1"') && r.headers["webhook-id"]))
      } finally {
        await bridge.close()
      }
    } finally {
      await Promise.all([crm.close(), ops.close()])
    }
  })
})

describe("deliveries held behind a dead letter that is gone", () => {
  it("are released when the bridge starts (a redrive or purge that stopped short left them)", async () => {
    const dataDir = tempDir()
    const rx = await startReceiver()
    const config = await configFor(dataDir, { forwarding: { pollIntervalMs: 50 }, targets: [{ name: "crm", url: rx.url, events: ["call.*"] }] })
    await (await startServer(config)).close()
    const w = new Database(path.join(dataDir, "bridge.db"))
    w.prepare("INSERT INTO events (id, type, occurred_at, source, data) VALUES (1, 'call.hangup', 0, 'push:voip', '{\"cdrId\":9}')").run()
    w.prepare("INSERT INTO deliveries (id, event_id, target, status, next_attempt_at, order_key, webhook_id, created_at, updated_at) VALUES (2, 1, 'crm', 'pending', ?, '9', 'msg_2', 0, 0)").run(HELD)
    w.close()
    const bridge = await startServer(config)
    try {
      await eventually(() => rx.received.find((r) => r.headers["webhook-id"] === "msg_2"))
    } finally {
      await bridge.close()
      await rx.close()
    }
  })
})

describe("deliveries held behind a dead letter that is purged", () => {
  it("go at once, not at the next poll", async () => {
    let failing = true
    const crm = await startReceiver(() => ({ status: failing ? 500 : 200 }))
    // a poll a minute away: only a wake sends the held delivery within the test's time
    const server = await startTestServer({ forwarding: { pollIntervalMs: 60_000 }, targets: [{ name: "crm", url: crm.url, events: ["call.*"], retry: { scheduleMs: [0] } }] })
    try {
      const token = fs.readFileSync(path.join(server.dataDir, "admin-token"), "utf8").trim()
      const admin = async (p: string, init: RequestInit = {}) =>
        (await (await fetch(`${server.url}/admin/api${p}`, { ...init, headers: { authorization: `Bearer ${token}`, "content-type": "application/json" } })).json()) as Record<string, unknown> & { items?: Array<Record<string, unknown>> }
      const push = async (type: number) =>
        (await (await fetch(`${server.url}/api/voip.json`, { method: "POST", body: new URLSearchParams({ type: String(type), peer: "1", memo: JSON.stringify({ cdrId: 77, cdrExtension: "100008801" }) }) })).json()) as { code: number }
      expect(await push(1)).toMatchObject({ code: 0 })
      // the call's first event fails and is a dead letter (its retries exhausted): its next one waits behind it
      await eventually(async () => (await admin("/dead-letters?target=crm")).items?.[0])
      failing = false
      const sent = crm.received.length
      expect(await push(3)).toMatchObject({ code: 0 })
      await new Promise((r) => setTimeout(r, 300))
      expect(crm.received).toHaveLength(sent)
      expect(await admin("/dead-letters", { method: "DELETE", body: JSON.stringify({ target: "crm" }) })).toMatchObject({ code: 0, deleted: 1 })
      const held = await eventually(() => crm.received[sent], 3_000)
      expect(JSON.parse(held.body).type).toBe("call.hangup")
    } finally {
      await server.close()
      await crm.close()
    }
  })
})

describe("bridges starting at the same moment on one data directory", () => {
  it("let exactly one of them serve", async () => {
    const dataDir = tempDir()
    const config = await configFor(dataDir)
    await (await startServer(config)).close()
    const started = await Promise.allSettled([startServer(config), startServer(config), startServer(config)])
    const up = started.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []))
    try {
      expect(up).toHaveLength(1)
      for (const r of started) if (r.status === "rejected") expect(String(r.reason)).toMatch(/another bridge \(pid \d+\) serves/)
    } finally {
      for (const b of up) await b.close()
    }
  })
})
