/** §2.5.1 sendTelCall queues a dial; §2.1.10 cmd=getCallList hands it to the box exactly once — over real HTTP, real SQLite. */
import * as path from "node:path"
import Database from "better-sqlite3"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { adminApi } from "./support/AdminApi.js"
import { rawRequest } from "./support/Raw.js"
import { eventually, startReceiver } from "./support/Receiver.js"
import { asAdmin, startTestServer, type TestServer } from "./support/TestServer.js"

const MAC = "00:1A:2B:3C:4D:6A"
const FOREIGN_MAC = "00:1A:2B:3C:4D:6B"
type Answer = Record<string, unknown> & { status: number; time: string; data?: Array<Record<string, string>> }

let server: TestServer
let crm: Awaited<ReturnType<typeof startReceiver>>

beforeAll(async () => {
  crm = await startReceiver()
  server = await startTestServer({
    forwarding: { pollIntervalMs: 50, circuitThreshold: 5, circuitCooldownMs: 300, retentionDays: 30 },
    targets: [{ name: "crm", url: crm.url, events: ["box.*"] }],
    devices: [{ mac: MAC, enterprise: "100008", channels: { "1": "100008800", "2": "100008800" } }]
  })
  // a box of another enterprise: the enterprise written straight into the database (the API makes only the first), the box assigned by the admin API
  const db = new Database(path.join(server.dataDir, "bridge.db"))
  try {
    db.prepare(`INSERT OR IGNORE INTO enterprises (comp_number, comp_name, created_at) VALUES ('200008', 'other', 0)`).run()
    db.prepare(`INSERT OR IGNORE INTO extensions (exte_id, comp_number, suffix, extension, password_hash, created_at, updated_at) VALUES (9200008800, '200008', 800, '200008800', 'x', 0, 0)`).run()
  } finally {
    db.close()
  }
  expect((await admin("POST", "/devices", { mac: FOREIGN_MAC, enterprise: "200008", channels: { "1": "200008800" } })).status).toBe(201)
})
afterAll(async () => {
  await server.close()
  await crm.close()
})

const admin = (method: string, p: string, body?: unknown) => adminApi(server, method, p, body)

const poll = async (fields: Record<string, string> = {}, mac = MAC) => {
  const res = await fetch(`${server.url}/voip/upload_record`, { method: "POST", body: new URLSearchParams({ cmd: "getCallList", satellite: mac, ...fields }) })
  return (await res.json()) as Answer
}
const dial = (params: Record<string, string>) => asAdmin(server, "sendTelCall", params, "form")
const alive = async () => expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
const waiting = () => {
  const db = new Database(path.join(server.dataDir, "bridge.db"), { readonly: true })
  try {
    return db.prepare(`SELECT count(*) AS n FROM box_messages WHERE taken_at IS NULL`).get() as { n: number }
  } finally {
    db.close()
  }
}

describe("dialling through a recording box", () => {
  it("sendTelCall queues a dial; getCallList hands it out once in the contract's shape, then 3003", async () => {
    expect(await poll()).toMatchObject({ status: 3003 })
    const before = Date.now()
    expect(await dial({ mac: "00-1a-2b-3c-4d-6a", channel: "2", phone: "13800138000" })).toMatchObject({ code: 0 })
    const a = await poll({ id: "2" })
    expect(a.status).toBe(0)
    expect(Number(a.time)).toBeGreaterThanOrEqual(before)
    expect(a.data).toHaveLength(1)
    expect(a.data![0]).toMatchObject({ status: "0", mdcWan: "2", phone: "13800138000" })
    expect(Object.keys(a.data![0]!).sort()).toEqual(["mdcCode", "mdcWan", "phone", "status"])
    expect(a.data![0]!.mdcCode).toMatch(/^\d+$/)
    expect(await poll({ id: "2" })).toMatchObject({ status: 3003 })
    expect(await poll()).toMatchObject({ status: 3003 })
    // its event, for whoever follows the boxes
    const queued = await eventually(() => {
      const found = crm.received.map((r) => JSON.parse(r.body) as { type: string; data: Record<string, unknown> }).filter((e) => e.type === "box.dial.queued")
      return found.length > 0 && found
    })
    expect(queued[0]!.data).toMatchObject({ mac: MAC, channel: 2, phone: "13800138000", extension: "100008800", by: "100008800" })
  })

  it("a poll naming a channel takes only that channel's dials; one without takes all, oldest first", async () => {
    expect(await dial({ mac: MAC, channel: "1", phone: "13800138001" })).toMatchObject({ code: 0 })
    expect(await dial({ mac: MAC, channel: "2", phone: "13800138002" })).toMatchObject({ code: 0 })
    expect(await dial({ mac: MAC, channel: "1", phone: "13800138003" })).toMatchObject({ code: 0 })
    const two = await poll({ id: "2" })
    expect(two.data!.map((d) => d.phone)).toEqual(["13800138002"])
    const rest = await poll()
    expect(rest.data!.map((d) => [d.mdcWan, d.phone])).toEqual([["1", "13800138001"], ["1", "13800138003"]])
    expect(await poll()).toMatchObject({ status: 3003 })
  })

  it("concurrent polls hand a dial out exactly once", async () => {
    for (let round = 0; round < 5; round++) {
      expect(await dial({ mac: MAC, channel: "1", phone: `1390000000${round}` })).toMatchObject({ code: 0 })
      const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => poll(i % 2 === 0 ? { id: "1" } : {})))
      const handed = answers.filter((a) => a.status === 0)
      expect(handed, `round ${round}`).toHaveLength(1)
      expect(handed[0]!.data!.map((d) => d.phone)).toEqual([`1390000000${round}`])
      expect(answers.filter((a) => a.status !== 0).every((a) => a.status === 3003)).toBe(true)
    }
    await alive()
  })

  it("a dial not taken within box.dialTtlMs is never handed out, nor counts against the channel's room", async () => {
    const s = await startTestServer({ box: { diskAlertPercent: 90, dialTtlMs: 200 }, devices: [{ mac: MAC, enterprise: "100008", channels: { "1": "100008800" } }] })
    try {
      const pollS = async () =>
        (await (await fetch(`${s.url}/voip/upload_record`, { method: "POST", body: new URLSearchParams({ cmd: "getCallList", satellite: MAC }) })).json()) as Answer
      for (let i = 0; i < 16; i++) expect((await asAdmin(s, "sendTelCall", { mac: MAC, channel: "1", phone: `1370000${String(i).padStart(4, "0")}` })).code).toBe(0)
      await new Promise((r) => setTimeout(r, 400))
      expect(await pollS()).toMatchObject({ status: 3003 })
      // the expired dials do not fill the channel: as many again are taken
      for (let i = 0; i < 16; i++) expect((await asAdmin(s, "sendTelCall", { mac: MAC, channel: "1", phone: `1371000${String(i).padStart(4, "0")}` })).code).toBe(0)
      expect((await fetch(`${s.url}/healthz`)).status).toBe(200)
    } finally {
      await s.close()
    }
  })

  it("-11 for an unknown box, -14 for a channel the box has not or a bad number, -5 for another enterprise's box; nothing queued", async () => {
    const before = waiting().n
    expect(await dial({ mac: "00:1A:2B:3C:4D:99", channel: "1", phone: "13800138000" })).toMatchObject({ code: -11 })
    for (const channel of ["3", "0", "65", "-1", "1.5", "x", ""]) {
      const a = await dial({ mac: MAC, channel, phone: "13800138000" })
      expect(a.code, `channel ${JSON.stringify(channel)}`).toBe(-14)
      expect(a.message).toMatch(/channel/)
    }
    for (const phone of ["", "abc", "1".repeat(200)]) {
      const a = await dial({ mac: MAC, channel: "1", phone })
      expect(a.code, `phone ${phone.slice(0, 10)}`).toBe(-14)
      expect(a.message).toMatch(/phone/)
    }
    expect(await dial({ mac: "not-a-mac", channel: "1", phone: "13800138000" })).toMatchObject({ code: -14 })
    const foreign = await dial({ mac: FOREIGN_MAC, channel: "1", phone: "13800138000" })
    expect(foreign.code).toBe(-5)
    expect(waiting().n).toBe(before)
    expect(await poll({}, FOREIGN_MAC)).toMatchObject({ status: 3003 })
    expect(await poll()).toMatchObject({ status: 3003 })
    await alive()
  })

  it("a box forgotten (or given to another enterprise) loses the dials queued for it", async () => {
    const mac = "00:1A:2B:3C:4D:6D"
    expect((await admin("POST", "/devices", { mac, enterprise: "100008", channels: { "1": "100008800" } })).status).toBe(201)
    expect(await dial({ mac, channel: "1", phone: "13800138010" })).toMatchObject({ code: 0 })
    expect((await admin("DELETE", `/devices/${mac}`)).status).toBeLessThan(300)
    expect((await admin("POST", "/devices", { mac, enterprise: "100008", channels: { "1": "100008800" } })).status).toBe(201)
    expect(await poll({}, mac)).toMatchObject({ status: 3003 })
    expect(await dial({ mac, channel: "1", phone: "13800138011" })).toMatchObject({ code: 0 })
    expect((await admin("PATCH", `/devices/${mac}`, { enterprise: "200008", channels: { "1": "200008800" } })).status).toBe(200)
    expect(await poll({}, mac)).toMatchObject({ status: 3003 })
  })

  it("a pending box (called in, never assigned) is unknown: -11", async () => {
    const pending = "00:1A:2B:3C:4D:6C"
    expect(await poll({}, pending)).toMatchObject({ status: 3001 })
    expect(await dial({ mac: pending, channel: "1", phone: "13800138000" })).toMatchObject({ code: -11 })
  })

  it("a channel holds a bounded number of waiting dials (-12 past it)", async () => {
    const s = await startTestServer({ devices: [{ mac: MAC, enterprise: "100008", channels: { "1": "100008800" } }] })
    try {
      for (let i = 0; i < 16; i++) expect((await asAdmin(s, "sendTelCall", { mac: MAC, channel: "1", phone: `1380000${String(i).padStart(4, "0")}` })).code).toBe(0)
      expect((await asAdmin(s, "sendTelCall", { mac: MAC, channel: "1", phone: "13899999999" })).code).toBe(-12)
      const body = Buffer.from(`cmd=getCallList&satellite=${encodeURIComponent(MAC)}&id=1`)
      const res = await rawRequest(s.url, "POST", "/voip/upload_record", { "Content-Type": "application/x-www-form-urlencoded" }, body)
      expect(res.status).toBe(200)
      const answer = JSON.parse(res.body.toString()) as Answer
      expect(answer.status).toBe(0)
      expect(answer.data).toHaveLength(16)
      // taken, the channel has room again
      expect((await asAdmin(s, "sendTelCall", { mac: MAC, channel: "1", phone: "13899999999" })).code).toBe(0)
    } finally {
      await s.close()
    }
  })
})
