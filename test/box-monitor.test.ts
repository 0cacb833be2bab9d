/**
 * The recording box over time: getMessageList's long poll and its web messages, presence
 * (box.offline / box.online) and the channel monitor (systemChannels, getChannelList) — over
 * real HTTP and a real SQLite file.
 */
import * as net from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { adminApi } from "./support/AdminApi.js"
import { eventually, startReceiver } from "./support/Receiver.js"
import { asAdmin, callApi, creds, startTestServer, type TestServer } from "./support/TestServer.js"

const MAC = "00:1A:2B:3C:4D:7A"
const QUIET_MAC = "00:1A:2B:3C:4D:7B"
const OLD_MAC = "00:1A:2B:3C:4D:7C"
type Answer = Record<string, unknown> & { status: number; time: string; data?: Array<Record<string, unknown>> }
type Event = { type: string; data: Record<string, unknown> }

let server: TestServer
let crm: Awaited<ReturnType<typeof startReceiver>>

beforeAll(async () => {
  crm = await startReceiver()
  server = await startTestServer({
    forwarding: { pollIntervalMs: 50, circuitThreshold: 5, circuitCooldownMs: 300, retentionDays: 30 },
    targets: [{ name: "crm", url: crm.url, events: ["box.*"] }],
    box: { messageWaitMs: 1500, offlineAfterMs: 1200 },
    devices: [
      { mac: MAC, enterprise: "100008", channels: { "1": "100008800", "2": "100008800" } },
      { mac: QUIET_MAC, enterprise: "100008", channels: { "1": "100008800" } }
    ]
  })
})
afterAll(async () => {
  await server.close()
  await crm.close()
})

const admin = (method: string, p: string, body?: unknown) => adminApi(server, method, p, body)
const box = async (fields: Record<string, string>, mac = MAC, signal?: AbortSignal) => {
  const res = await fetch(`${server.url}/voip/upload_record`, { method: "POST", body: new URLSearchParams({ satellite: mac, ...fields }), ...(signal ? { signal } : {}) })
  return (await res.json()) as Answer
}
const heartbeat = (channels: ReadonlyArray<Record<string, unknown>>, mac = MAC) =>
  box({ cmd: "channelstatus", status: JSON.stringify({ diskStatus: 0, diskUsagePercent: 5, ip: "10.0.0.9", channels }) }, mac)
const events = (type: string) => crm.received.map((r) => JSON.parse(r.body) as Event).filter((e) => e.type === type)

describe("getMessageList: the long poll of old firmware", () => {
  it("holds the poll open and answers as soon as a web message is queued, in the §2.1.10 shape", async () => {
    const started = Date.now()
    const polling = box({ cmd: "getMessageList" })
    // queued while the poll waits
    await new Promise((r) => setTimeout(r, 200))
    const queued = await admin("POST", `/devices/${MAC}/messages`, { channel: 1, phone: "1234567890", functionname: "list", paramvalue: "a=b&c=d&bb=2323?}23" })
    expect(queued.status).toBe(201)
    const a = await polling
    expect(a.status).toBe(0)
    expect(a.data).toEqual([
      { status: "51", mdcWan: "1", mdcCode: String((queued.body as { id: number }).id), phone: "1234567890", memo: { functionname: "list", paramvalue: "a=b&c=d&bb=2323?}23" } }
    ])
    // answered on the queueing, not at the end of the wait
    expect(Date.now() - started).toBeLessThan(1500)
    expect(await box({ cmd: "getMessageList_1125" })).toMatchObject({ status: 3003 })
  })

  it("answers 3003 when nothing comes within box.messageWaitMs, having waited", async () => {
    const started = Date.now()
    expect(await box({ cmd: "getMessageList_1125" })).toMatchObject({ status: 3003 })
    expect(Date.now() - started).toBeGreaterThanOrEqual(1400)
  })

  it("hands a dial out once, to whichever poll asks first; getCallList never hands out a web message", async () => {
    expect((await admin("POST", `/devices/${MAC}/messages`, { channel: 2, functionname: "open", paramvalue: "x" })).status).toBe(201)
    expect(await box({ cmd: "getCallList", id: "2" })).toMatchObject({ status: 3003 })
    expect(await asAdmin(server, "sendTelCall", { mac: MAC, channel: "2", phone: "13800000002" }, "form")).toMatchObject({ code: 0 })
    const polls = await Promise.all([box({ cmd: "getMessageList" }), box({ cmd: "getMessageList_1125" }), box({ cmd: "getCallList" }), box({ cmd: "getCallList", id: "2" })])
    const handed = polls.flatMap((p) => p.data ?? [])
    expect(handed.map((d) => [d.status, d.phone]).sort()).toEqual([["0", "13800000002"], ["51", ""]])
    const events51 = await eventually(() => events("box.message.queued").length > 0 && events("box.message.queued"))
    expect(events51[0]!.data).toMatchObject({ mac: MAC, channel: 1, memo: { functionname: "list" }, by: "admin" })
  })

  it("a poll that goes away leaves nothing behind: the next message goes to the next poll", async () => {
    const gone = new AbortController()
    const abandoned = box({ cmd: "getMessageList" }, MAC, gone.signal).catch(() => "aborted")
    await new Promise((r) => setTimeout(r, 100))
    gone.abort()
    expect(await abandoned).toBe("aborted")
    const polling = box({ cmd: "getMessageList" })
    await new Promise((r) => setTimeout(r, 100))
    expect((await admin("POST", `/devices/${MAC}/messages`, { channel: 1, functionname: "ping" })).status).toBe(201)
    expect((await polling).data!.map((d) => (d.memo as { functionname: string }).functionname)).toEqual(["ping"])
  })

  it("a newer poll of the box supersedes an abandoned one (a connection left open by a box that restarted): the message reaches the live poll", async () => {
    // the abandoned poll: sent, never read, never closed
    const url = new URL(server.url)
    const stale: Array<Buffer> = []
    const body = new URLSearchParams({ satellite: MAC, cmd: "getMessageList" }).toString()
    const socket = net.connect(Number(url.port), url.hostname, () =>
      socket.write(`POST /voip/upload_record HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\n\r\n${body}`)
    )
    socket.on("data", (c: Buffer) => stale.push(c))
    try {
      await new Promise((r) => setTimeout(r, 200))
      const live = box({ cmd: "getMessageList" })
      await new Promise((r) => setTimeout(r, 200))
      expect((await admin("POST", `/devices/${MAC}/messages`, { channel: 1, functionname: "after-restart" })).status).toBe(201)
      expect((await live).data!.map((d) => (d.memo as { functionname: string }).functionname)).toEqual(["after-restart"])
      // the abandoned one was answered "nothing", at once, having taken nothing
      const text = await eventually(() => Buffer.concat(stale).toString().includes("\r\n\r\n") && Buffer.concat(stale).toString())
      expect(JSON.parse(text.split("\r\n\r\n")[1]!)).toMatchObject({ status: 3003 })
    } finally {
      socket.destroy()
    }
  })

  it("old firmware dials through its long poll; once a box polls getCallList, the dials are left to that poll", async () => {
    const s = await startTestServer({ box: { messageWaitMs: 1500 }, devices: [{ mac: OLD_MAC, enterprise: "100008", channels: { "1": "100008800" } }] })
    try {
      const poll = async (cmd: string, extra: Record<string, string> = {}) => {
        const res = await fetch(`${s.url}/voip/upload_record`, { method: "POST", body: new URLSearchParams({ satellite: OLD_MAC, cmd, ...extra }) })
        return (await res.json()) as Answer
      }
      const dial = (phone: string) => asAdmin(s, "sendTelCall", { mac: OLD_MAC, channel: "1", phone }, "form")
      // old firmware: only getMessageList, and the dial comes through it as soon as it is queued
      const old = poll("getMessageList")
      await new Promise((r) => setTimeout(r, 200))
      expect(await dial("13800000011")).toMatchObject({ code: 0 })
      expect((await old).data).toEqual([expect.objectContaining({ status: "0", mdcWan: "1", phone: "13800000011" })])
      // new firmware polls getCallList off-hook and holds getMessageList_1125 open: the dial goes to getCallList
      expect(await poll("getCallList", { id: "1" })).toMatchObject({ status: 3003 })
      const held = poll("getMessageList_1125")
      await new Promise((r) => setTimeout(r, 200))
      expect(await dial("13800000012")).toMatchObject({ code: 0 })
      expect((await poll("getCallList", { id: "1" })).data).toEqual([expect.objectContaining({ status: "0", phone: "13800000012" })])
      expect(await held).toMatchObject({ status: 3003 })
    } finally {
      await s.close()
    }
  })

  it("a stop does not wait out an open long poll: it is answered at once", async () => {
    const s = await startTestServer({ box: { messageWaitMs: 60_000 }, devices: [{ mac: OLD_MAC, enterprise: "100008", channels: { "1": "100008800" } }] })
    const polling = fetch(`${s.url}/voip/upload_record`, { method: "POST", body: new URLSearchParams({ satellite: OLD_MAC, cmd: "getMessageList" }) }).then(
      async (r) => (await r.json()) as Answer
    )
    await new Promise((r) => setTimeout(r, 300))
    const started = Date.now()
    await s.close()
    // far under the poll's 60 s: the stop did not wait for it
    expect(Date.now() - started).toBeLessThan(20_000)
    expect(await polling).toMatchObject({ status: 3003 })
  })

  it("the admin API refuses a message for an unknown box, a bad body, or a full channel", async () => {
    expect(await admin("POST", `/devices/00:1A:2B:3C:4D:00/messages`, { channel: 1, functionname: "x" })).toMatchObject({ status: 404, body: { code: -11 } })
    expect(await admin("POST", `/devices/not-a-mac/messages`, { channel: 1, functionname: "x" })).toMatchObject({ status: 400, body: { code: -14 } })
    for (const body of [{ channel: 0, functionname: "x" }, { channel: 1 }, { channel: 1, functionname: "" }, { channel: 1, functionname: "x", paramvalue: "y".repeat(4001) }])
      expect(await admin("POST", `/devices/${MAC}/messages`, body), JSON.stringify(body).slice(0, 80)).toMatchObject({ status: 400, body: { code: -14 } })
    for (let i = 0; i < 16; i++) expect((await admin("POST", `/devices/${QUIET_MAC}/messages`, { channel: 1, functionname: `f${i}` })).status).toBe(201)
    expect(await admin("POST", `/devices/${QUIET_MAC}/messages`, { channel: 1, functionname: "one too many" })).toMatchObject({ status: 429, body: { code: -12 } })
  })
})

describe("presence: a silent box goes offline, and comes back", () => {
  it("raises box.offline once after box.offlineAfterMs of silence and box.online at its next call", async () => {
    const device = async () => (await admin("GET", `/devices/${QUIET_MAC}`)).body as { presence: string; offlineAt: number | null }
    // never called in: unseen, and not offline
    expect((await device()).presence).toBe("unseen")
    expect(await heartbeat([{ ch: 1, state: 1 }], QUIET_MAC)).toMatchObject({ status: 0 })
    expect((await device()).presence).toBe("online")
    const offline = await eventually(() => events("box.offline").find((e) => e.data.mac === QUIET_MAC), 8000)
    expect(offline.data).toMatchObject({ mac: QUIET_MAC, lastAddress: expect.any(String) })
    expect(offline.data.silentForMs as number).toBeGreaterThanOrEqual(1200)
    expect((await device()).presence).toBe("offline")
    // not raised again while it stays silent
    await new Promise((r) => setTimeout(r, 1200))
    expect(events("box.offline").filter((e) => e.data.mac === QUIET_MAC)).toHaveLength(1)
    expect(await box({ cmd: "getCallList" }, QUIET_MAC)).toMatchObject({ status: 3003 })
    const online = await eventually(() => events("box.online").find((e) => e.data.mac === QUIET_MAC))
    expect(online.data).toMatchObject({ mac: QUIET_MAC, offlineAt: offline.data.at })
    expect((await device()).presence).toBe("online")
  })

  it("a box that keeps polling is never marked offline", async () => {
    // it was silent during the tests before (offline then, maybe): from its first poll on it is not
    const start = Date.now()
    const until = start + 3000
    while (Date.now() < until) {
      expect(await box({ cmd: "getCallList" })).toMatchObject({ status: 3003 })
      await new Promise((r) => setTimeout(r, 250))
    }
    expect(((await admin("GET", `/devices/${MAC}`)).body as { presence: string }).presence).toBe("online")
    expect(events("box.offline").filter((e) => e.data.mac === MAC && (e.data.at as number) >= start)).toHaveLength(0)
  })
})

describe("the channel monitor: systemChannels and getChannelList", () => {
  it("shows every channel of the enterprise's boxes with its live state; lines in use and the ringing queue", async () => {
    expect(
      await heartbeat([
        { ch: 1, state: 2, phone: "13900000001", peer: 2, timelen: 3 },
        { ch: 2, state: 4, phone: "13900000002", peer: 1, timelen: 40 },
        { ch: 3, state: 1 }
      ])
    ).toMatchObject({ status: 0 })
    const sys = (await asAdmin(server, "systemChannels")) as unknown as Record<string, unknown> & { channelviewinfo: Array<Record<string, unknown>> }
    expect(sys.code).toBe(0)
    const mine = sys.channelviewinfo.filter((c) => c.mac === MAC)
    expect(mine.map((c) => [c.ch, c.state, c.extension, c.phone])).toEqual([
      [1, 2, "100008800", "13900000001"],
      [2, 4, "100008800", "13900000002"],
      [3, 1, null, ""]
    ])
    expect(mine[0]).toMatchObject({ channelName: `${MAC}/1`, stateText: "震铃中", online: true, calltime: 3 })
    expect(sys).toMatchObject({ totalGroupCallNum: 0, useGroupCallNum: 0 })
    expect(sys.totalNum).toBe(sys.channelviewinfo.length)
    expect(sys.channelNum).toBe(sys.totalNum)
    expect(sys.useAgiCallNum).toBe(2)

    const queue = (await asAdmin(server, "getChannelList", { queueSize: "1" })) as unknown as { code: number; rows: Array<Record<string, unknown>> }
    expect(queue.code).toBe(0)
    expect(queue.rows).toEqual([{ channelName: `${MAC}/1`, callinTel: "13900000001", createTime: expect.stringMatching(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/), queueId: 1 }])
    const all = (await asAdmin(server, "getChannelList", { queueSize: "0" })) as unknown as { rows: Array<Record<string, unknown>> }
    expect(all.rows.map((r) => r.callinTel).sort()).toEqual(["13900000001", "13900000002"])
    expect(await asAdmin(server, "getChannelList")).toMatchObject({ code: 0, rows: all.rows })
  })

  it("an offline box's lines read 未连接 whatever it said last", async () => {
    const sys = await eventually(async () => {
      const s = (await asAdmin(server, "systemChannels")) as unknown as { channelviewinfo: Array<Record<string, unknown>> }
      const quiet = s.channelviewinfo.filter((c) => c.mac === QUIET_MAC)
      return quiet.length > 0 && quiet.every((c) => c.online === false) && quiet
    }, 8000)
    expect(sys.map((c) => [c.state, c.stateText])).toEqual([[0, "未连接"]])
  })

  it("another enterprise's monitor is refused (-5); an agent is refused (-5); a bad queueSize is -14", async () => {
    expect(await asAdmin(server, "systemChannels", { CompNumber: "200008" })).toMatchObject({ code: -5 })
    expect(await asAdmin(server, "systemChannels", { CompNumber: "100008" })).toMatchObject({ code: 0 })
    expect(await asAdmin(server, "getChannelList", { queueSize: "2" })).toMatchObject({ code: -14 })
    expect((await asAdmin(server, "addExtension", { exteExtension: "805", extePassword: "agent-pw-805" })).code).toBe(0)
    for (const method of ["systemChannels", "getChannelList"])
      expect(await callApi(server, { method, ...creds("100008805", "agent-pw-805") }), method).toMatchObject({ code: -5 })
  })
})
