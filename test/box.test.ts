/** §2.1.10 the recording box's URL, over real HTTP against a real bridge and a real receiver. */
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import Database from "better-sqlite3"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from "vitest"
import { loadConfig } from "../src/config/AppConfig.js"
import { startServer } from "../src/http/Server.js"
import { adminApi } from "./support/AdminApi.js"
import { rawRequest } from "./support/Raw.js"
import { eventually, startReceiver } from "./support/Receiver.js"
import { asAdmin, creds, startTestServer, tempDir, type TestServer } from "./support/TestServer.js"

const MAC = "00:1A:2B:3C:4D:5E"
type Answer = Record<string, unknown> & { status: number; time: string }

let server: TestServer
let crm: Awaited<ReturnType<typeof startReceiver>>

beforeAll(async () => {
  crm = await startReceiver()
  server = await startTestServer({
    forwarding: { pollIntervalMs: 50, circuitThreshold: 5, circuitCooldownMs: 300, retentionDays: 30 },
    targets: [{ name: "crm", url: crm.url, events: ["box.*", "call.*"] }],
    // the message lists answer at once when nothing is queued (the long poll has its own tests)
    box: { messageWaitMs: 0 },
    devices: [{ mac: "00-1a-2b-3c-4d-5e", enterprise: "100008", channels: { "1": "100008800" } }]
  })
  // the extensions the admin tests assign channels to: a channel names an existing extension of its enterprise
  for (const exteExtension of ["801", "802"]) expect((await asAdmin(server, "addExtension", { exteExtension, extePassword: "box-pw-801" })).code).toBe(0)
})
afterAll(async () => {
  await server.close()
  await crm.close()
})

const post = async (fields: Record<string, string>, file?: { name: string; bytes: Buffer }, via: "form" | "multipart" = "form") => {
  let body: URLSearchParams | FormData
  if (via === "form" && !file) body = new URLSearchParams(fields)
  else {
    const fd = new FormData()
    for (const [k, v] of Object.entries(fields)) fd.append(k, v)
    if (file) fd.append("file", new Blob([file.bytes]), file.name)
    body = fd
  }
  const res = await fetch(`${server.url}/voip/upload_record`, { method: "POST", body })
  return Object.assign((await res.json()) as Answer, { httpStatus: res.status })
}

const admin = (method: string, p: string, body?: unknown) => adminApi(server, method, p, body)

const alive = async () => expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
const events = (type: string) => crm.received.map((r) => JSON.parse(r.body) as { type: string; data: Record<string, unknown> }).filter((e) => e.type === type)
const sent = (type: string, min = 1) => eventually(() => events(type).length >= min && events(type))
const statusJson = (channels: ReadonlyArray<Record<string, unknown>>, disk: Record<string, unknown> = {}) =>
  JSON.stringify({ diskUsagePercent: "5", diskSize: "1000", diskSurplusSize: "950", diskStatus: 0, ip: "192.168.1.9", channels, ...disk })

describe("the box endpoint", () => {
  it("answers every cmd with status and time; any other cmd status 0", async () => {
    const before = Date.now()
    const a = await post({ cmd: "whatever", satellite: MAC })
    expect(a).toMatchObject({ status: 0, httpStatus: 200 })
    expect(Number(a.time)).toBeGreaterThanOrEqual(before)
    expect(await post({ cmd: "getCallList", satellite: MAC, id: "1" })).toMatchObject({ status: 3003 })
    expect(await post({ cmd: "getMessageList", satellite: MAC })).toMatchObject({ status: 3003 })
    expect(await post({ cmd: "getMessageList_1125", satellite: MAC }, undefined, "multipart")).toMatchObject({ status: 3003 })
  })

  it("takes the contract's own five-byte device number (3001 until it is registered)", async () => {
    const res = await fetch(`${server.url}/voip/upload_record`, { method: "POST", body: new URLSearchParams({ cmd: "getMessageList", satellite: "00:00:00:00:01" }) })
    expect(((await res.json()) as { status: number }).status).toBe(3001)
  })

  it("3002 without satellite or with one that is not a MAC; every spelling of a MAC is the same box", async () => {
    for (const satellite of [undefined, "", "00:00:01", "00:1a-2b:3c:4d:5e", "zz:1A:2B:3C:4D:5E"]) {
      const a = await post({ cmd: "channelstatus", ...(satellite === undefined ? {} : { satellite }) })
      expect(a.status, String(satellite)).toBe(3002)
      expect(typeof a.time).toBe("string")
    }
    for (const satellite of ["00:1a:2b:3c:4d:5e", "00-1A-2B-3C-4D-5E", "001a2b3c4d5e", " 001A2B3C4D5E "]) expect((await post({ cmd: "x", satellite })).status, satellite).toBe(0)
  })

  it("3001 for a box not registered, which is then listed as pending with its address", async () => {
    const a = await post({ cmd: "channelstatus", satellite: "aa:bb:cc:dd:ee:ff", status: statusJson([]) })
    expect(a).toMatchObject({ status: 3001 })
    const list = await admin("GET", "/devices")
    expect(list.status).toBe(200)
    const { items } = list.body as { items: Array<Record<string, unknown>> }
    expect(items.find((d) => d.mac === "AA:BB:CC:DD:EE:FF")).toMatchObject({ pending: true, enterprise: null, lastAddress: "127.0.0.1" })
    expect(items.find((d) => d.mac === MAC)).toMatchObject({ pending: false, enterprise: "100008", origin: "config", channels: { "1": "100008800" } })
  })

  it("the admin API registers, assigns, changes and forgets boxes", async () => {
    const pendingMac = "aabbccddeeff"
    await post({ cmd: "x", satellite: pendingMac })
    const assigned = await admin("POST", "/devices", { mac: "AA-BB-CC-DD-EE-FF", enterprise: "100008", channels: { "2": "100008801" } })
    expect(assigned).toMatchObject({ status: 201, body: { code: 0, device: { mac: "AA:BB:CC:DD:EE:FF", pending: false, channels: { "2": "100008801" } } } })
    expect(await post({ cmd: "x", satellite: pendingMac })).toMatchObject({ status: 0 })
    expect(await admin("POST", "/devices", { mac: "aa:bb:cc:dd:ee:ff", enterprise: "100008", channels: {} })).toMatchObject({ status: 409, body: { code: -10 } })
    expect(await admin("POST", "/devices", { mac: "nope", enterprise: "100008", channels: {} })).toMatchObject({ status: 400, body: { code: -14 } })
    expect(await admin("PATCH", "/devices/aa:bb:cc:dd:ee:ff", { channels: { "1": "100008802" } })).toMatchObject({ status: 200, body: { device: { channels: { "1": "100008802" } } } })
    expect(await admin("GET", "/devices/AABBCCDDEEFF")).toMatchObject({ status: 200, body: { mac: "AA:BB:CC:DD:EE:FF", enterprise: "100008" } })
    expect(await admin("DELETE", "/devices/aa-bb-cc-dd-ee-ff")).toMatchObject({ status: 200, body: { code: 0 } })
    expect(await admin("GET", "/devices/aa-bb-cc-dd-ee-ff")).toMatchObject({ status: 404, body: { code: -11 } })
    expect(await post({ cmd: "x", satellite: pendingMac })).toMatchObject({ status: 3001 })
  })

  it("GET is 405 with a coded body", async () => {
    const res = await fetch(`${server.url}/upload_record?cmd=channelstatus&satellite=${MAC}`)
    expect(res.status).toBe(405)
    expect(await res.json()).toMatchObject({ status: -14 })
    await alive()
  })
})

describe("cmd=channelstatus", () => {
  it("stores the live state; a change of state raises box.channel once, a heartbeat nothing", async () => {
    const idle = [{ ch: "1", state: "1", phone: "", timelen: "", peer: "", serial: "1" }]
    expect(await post({ cmd: "channelstatus", satellite: MAC, status: statusJson(idle) })).toMatchObject({ status: 0 })
    await sent("box.channel")
    expect(await post({ cmd: "channelstatus", satellite: MAC, status: statusJson(idle) })).toMatchObject({ status: 0 })
    // relaxed JSON, as devices write it
    const ringing = `{diskUsagePercent:5,diskStatus:0,ip:'192.168.1.9',channels:[{ch:1,state:2,phone:'13800138000',timelen:3,peer:2,serial:1}]}`
    expect(await post({ cmd: "channelstatus", satellite: MAC, status: ringing })).toMatchObject({ status: 0 })
    const changes = await sent("box.channel", 2)
    await new Promise((r) => setTimeout(r, 200))
    expect(events("box.channel")).toHaveLength(2)
    expect(changes[1]!.data).toMatchObject({ mac: MAC, ch: 1, extension: "100008800", state: 2, previousState: 1, phone: "13800138000", peer: 2 })
  })

  it("a malformed status is -14 in the box's shape, and nothing is stored", async () => {
    const before = events("box.channel").length
    for (const status of ["{not json", JSON.stringify({ channels: [{ ch: 1, state: 9 }] }), "[]", ""]) {
      const a = await post({ cmd: "channelstatus", satellite: MAC, status })
      expect(a.status, status).toBe(-14)
      expect(a.message).toMatch(/status/)
      expect(typeof a.time).toBe("string")
    }
    await alive()
    await new Promise((r) => setTimeout(r, 150))
    expect(events("box.channel")).toHaveLength(before)
  })

  it("a disk not working or too full raises box.alert once", async () => {
    const ch = [{ ch: 1, state: 2 }]
    await post({ cmd: "channelstatus", satellite: MAC, status: statusJson(ch, { diskStatus: -3 }) })
    await post({ cmd: "channelstatus", satellite: MAC, status: statusJson(ch, { diskStatus: -3 }) })
    await sent("box.alert")
    await post({ cmd: "channelstatus", satellite: MAC, status: statusJson(ch, { diskStatus: 0, diskUsagePercent: 95 }) })
    const alerts = await sent("box.alert", 2)
    await new Promise((r) => setTimeout(r, 150))
    expect(events("box.alert").map((e) => e.data.alert)).toEqual(["disk:-3", "usage"])
    expect(alerts[0]!.data).toMatchObject({ mac: MAC, diskStatus: -3 })
  })
})

describe("cmd=upload", () => {
  const callid = "7687658987667780097" // above 2^53
  const wav = Buffer.concat([Buffer.from("RIFF"), crypto.randomBytes(2000)])
  const fields = {
    cmd: "upload",
    satellite: "001A2B3C4D5E",
    channel: "1",
    start_time_secs: "1563957000",
    start_time_hangup: "1563957071",
    direction: "out",
    callid_dialed: "013800138000",
    duration_secs: "61",
    id: "42",
    recorded: "1",
    callid
  }

  it("stores one call record and one recording, once, however often it is sent; the events reach the target", async () => {
    const first = await post(fields, { name: "../../x.wav", bytes: wav })
    expect(first).toMatchObject({ status: 0, callid })
    const again = await post(fields, { name: "../../x.wav", bytes: wav })
    expect(again).toMatchObject({ status: 0, callid })

    const found = await asAdmin(server, "findDialrecord", { scdrId: callid })
    const rows = (found as unknown as { rows?: Array<Record<string, unknown>>; data?: Array<Record<string, unknown>> })
    const list = (rows.rows ?? rows.data ?? []) as Array<Record<string, unknown>>
    expect(list).toHaveLength(1)
    const row = list[0]!
    expect(String(row.cdrId)).toBe(callid)
    expect(row).toMatchObject({ cdrExtension: "100008800", cdrTalktime: 61, cdrPeer: 1, cdrPhoneNum: "013800138000", cdrStartTime: "2019-07-24 16:30:00", cdrHangupTime: "2019-07-24 16:31:11" })
    // in the boxes' own directory, named by callid and the recording's id (no app upload can hold that name)
    expect(row.cdrRecordFile).toMatch(new RegExp(`^100008/box/201907/24/box-${callid}-\\d+\\.wav$`))

    // traversal-safe: the file is inside the record directory, under our name, with the bytes sent
    const stored = path.join(server.dataDir, "record", String(row.cdrRecordFile))
    expect(fs.readFileSync(stored).equals(wav)).toBe(true)
    expect(fs.existsSync(path.join(server.dataDir, "x.wav"))).toBe(false)
    expect(fs.existsSync(path.join(server.dataDir, "..", "x.wav"))).toBe(false)
    expect(fs.readdirSync(path.dirname(stored))).toEqual([path.basename(stored)])
    expect(fs.readdirSync(path.join(server.dataDir, "tmp-box"))).toEqual([])

    // downloadable like any other, by path and by call record id
    const q = new URLSearchParams(creds())
    const byPath = await fetch(`${server.url}/voip/record/${row.cdrRecordFile}?${q}`)
    expect(Buffer.from(await byPath.arrayBuffer()).equals(wav)).toBe(true)
    const byId = await fetch(`${server.url}/voip/api/client/download/record.json?id=${callid}&${q}`)
    expect(byId.status).toBe(200)
    expect(crypto.createHash("md5").update(Buffer.from(await byId.arrayBuffer())).digest("hex")).toBe(crypto.createHash("md5").update(wav).digest("hex"))

    const [recording] = await sent("box.recording")
    expect(recording!.data).toMatchObject({ mac: MAC, callid, md5: crypto.createHash("md5").update(wav).digest("hex"), size: wav.length })
    const [hangup] = await sent("call.hangup")
    expect(hangup!.data).toMatchObject({ type: 3, peer: 1, phone: "013800138000", cdrId: callid, memo: { cdrId: callid, cdrExtension: "100008800", cdrTalktime: 61 } })
    await sent("call.recording")
    await new Promise((r) => setTimeout(r, 200))
    expect([events("box.recording").length, events("call.hangup").length, events("call.recording").length]).toEqual([1, 1, 1])
  })

  it("a missed call without a recording is a call record alone", async () => {
    const a = await post({ ...fields, callid: "900000000000000001", direction: "unkown", recorded: "0", duration_secs: "0" }, undefined, "multipart")
    expect(a).toMatchObject({ status: 0, callid: "900000000000000001" })
    const found = (await asAdmin(server, "findDialrecord", { scdrId: "900000000000000001" })) as unknown as { rows?: Array<Record<string, unknown>> }
    expect(found.rows?.[0]).toMatchObject({ cdrPeer: 0, cdrRecordFile: "", cdrTalktime: 0 })
  })

  it("refuses malformed fields with -14 and an unknown box with 3001, storing nothing", async () => {
    const bad = await post({ ...fields, callid: "12345", direction: "sideways" }, { name: "a.wav", bytes: wav })
    expect(bad).toMatchObject({ status: -14 })
    const noFile = await post({ ...fields, callid: "12346" }, undefined, "multipart")
    expect(noFile).toMatchObject({ status: -14 })
    const unknown = await post({ ...fields, satellite: "11:22:33:44:55:66", callid: "12347" }, { name: "a.wav", bytes: wav })
    expect(unknown).toMatchObject({ status: 3001 })
    for (const id of ["12345", "12346", "12347"]) {
      const found = (await asAdmin(server, "findDialrecord", { scdrId: id })) as unknown as { rows?: Array<unknown> }
      expect(found.rows ?? []).toHaveLength(0)
    }
    expect(fs.readdirSync(path.join(server.dataDir, "tmp-box"))).toEqual([])
    await alive()
  })

  it("exact request bytes: a urlencoded upload without a file", async () => {
    const body = Buffer.from(`cmd=upload&satellite=${encodeURIComponent(MAC)}&channel=1&start_time_secs=1563957000&direction=in&callid=18446744073709551615&recorded=0`)
    const res = await rawRequest(server.url, "POST", "/upload_record", { "Content-Type": "application/x-www-form-urlencoded" }, body)
    expect(res.status).toBe(200)
    expect(JSON.parse(res.body.toString())).toMatchObject({ status: 0, callid: "18446744073709551615" })
  })
})

/** Another enterprise with an extension, written straight into a bridge's database (the API makes only the first). */
const addForeignEnterprise = (dataDir: string) => {
  const db = new Database(path.join(dataDir, "bridge.db"))
  try {
    db.prepare(`INSERT OR IGNORE INTO enterprises (comp_number, comp_name, created_at) VALUES ('200008', 'other', 0)`).run()
    db.prepare(`INSERT OR IGNORE INTO extensions (exte_id, comp_number, suffix, extension, password_hash, created_at, updated_at) VALUES (9200008800, '200008', 800, '200008800', 'x', 0, 0)`).run()
  } finally {
    db.close()
  }
}

describe("the box endpoint, hostile input", () => {
  it("a cmd naming an Object.prototype member is an unknown cmd: {time, status: 0}", async () => {
    for (const cmd of ["constructor", "toString", "__proto__", "hasOwnProperty", "valueOf"]) {
      const a = await post({ cmd, satellite: MAC })
      expect(a, cmd).toMatchObject({ status: 0, httpStatus: 200 })
      expect(typeof a.time).toBe("string")
    }
    await alive()
  })

  it("ch must be an integer 1–64, once per report (-14, nothing stored, nothing raised)", async () => {
    const channelEvents = events("box.channel").length
    for (const channels of [[{ ch: "NaN", state: 1 }], [{ ch: "Infinity", state: 1 }], [{ ch: 1.5, state: 1 }], [{ ch: -3, state: 1 }], [{ ch: 0, state: 1 }], [{ ch: 65, state: 1 }], [{ ch: 9, state: 1 }, { ch: "9", state: 4 }]]) {
      const a = await post({ cmd: "channelstatus", satellite: MAC, status: statusJson(channels) })
      expect(a.status, JSON.stringify(channels)).toBe(-14)
      expect(a.message).toMatch(/ch/)
      expect(typeof a.time).toBe("string")
    }
    await alive()
    const live = (await admin("GET", `/devices/${MAC}`)).body as { live: Array<{ ch: number }> }
    expect(live.live.map((c) => c.ch).filter((ch) => ch !== 1)).toEqual([])
    await new Promise((r) => setTimeout(r, 150))
    expect(events("box.channel")).toHaveLength(channelEvents)
  })

  it("a storage failure answers in the box's shape: {time, status: -6, message}", async () => {
    const s = await startTestServer({ devices: [{ mac: MAC, enterprise: "100008", channels: { "1": "100008800" } }] })
    try {
      const db = new Database(path.join(s.dataDir, "bridge.db"))
      db.prepare("ALTER TABLE box_channels RENAME TO box_channels_gone").run()
      const res = await fetch(`${s.url}/voip/upload_record`, { method: "POST", body: new URLSearchParams({ cmd: "channelstatus", satellite: MAC, status: statusJson([{ ch: 1, state: 1 }]) }) })
      expect(res.status).toBe(200)
      const a = (await res.json()) as Answer
      expect(a).toMatchObject({ status: -6 })
      expect(typeof a.time).toBe("string")
      expect(typeof a.message).toBe("string")
      expect(a).not.toHaveProperty("code")
      db.prepare("ALTER TABLE box_channels_gone RENAME TO box_channels").run()
      db.close()
      expect((await fetch(`${s.url}/healthz`)).status).toBe(200)
      const again = await fetch(`${s.url}/voip/upload_record`, { method: "POST", body: new URLSearchParams({ cmd: "channelstatus", satellite: MAC, status: statusJson([{ ch: 1, state: 1 }]) }) })
      expect(((await again.json()) as Answer).status).toBe(0)
    } finally {
      await s.close()
    }
  })

  it("unknown boxes are remembered as pending up to 1000, the longest unseen forgotten first", { timeout: 60_000 }, async () => {
    const s = await startTestServer()
    try {
      const macOf = (i: number) => `02:00:00:00:${((i >> 8) & 0xff).toString(16).padStart(2, "0")}:${(i & 0xff).toString(16).padStart(2, "0")}`.toUpperCase()
      for (let i = 0; i < 1010; i += 10)
        await Promise.all(
          Array.from({ length: 10 }, async (_, k) => {
            const res = await fetch(`${s.url}/voip/upload_record`, { method: "POST", body: new URLSearchParams({ cmd: "x", satellite: macOf(i + k) }) })
            expect(((await res.json()) as Answer).status).toBe(3001)
          })
        )
      const db = new Database(path.join(s.dataDir, "bridge.db"), { readonly: true })
      try {
        expect(db.prepare("SELECT count(*) AS n FROM box_devices WHERE enterprise IS NULL").get()).toEqual({ n: 1000 })
        // the newest is kept
        expect(db.prepare("SELECT count(*) AS n FROM box_devices WHERE mac = ?").get(macOf(1009))).toEqual({ n: 1 })
      } finally {
        db.close()
      }
      expect((await fetch(`${s.url}/healthz`)).status).toBe(200)
    } finally {
      await s.close()
    }
  })
})

describe("assigning boxes: the enterprise and the channels' extensions must exist", () => {
  it("the admin API refuses an unknown enterprise and another enterprise's extension with 400/-14 naming the field, changing nothing", async () => {
    addForeignEnterprise(server.dataDir)
    const mac = "02:AA:00:00:00:01"
    const unknownEnterprise = await admin("POST", "/devices", { mac, enterprise: "999999", channels: {} })
    expect(unknownEnterprise).toMatchObject({ status: 400, body: { code: -14 } })
    expect(unknownEnterprise.body.message).toMatch(/^enterprise/)
    const foreign = await admin("POST", "/devices", { mac, enterprise: "100008", channels: { "3": "200008800" } })
    expect(foreign).toMatchObject({ status: 400, body: { code: -14 } })
    expect(foreign.body.message).toMatch(/^channels\.3/)
    expect(await admin("GET", `/devices/${mac}`)).toMatchObject({ status: 404 })

    expect(await admin("POST", "/devices", { mac, enterprise: "100008", channels: { "1": "100008801" } })).toMatchObject({ status: 201 })
    const patchForeign = await admin("PATCH", `/devices/${mac}`, { channels: { "1": "200008800" } })
    expect(patchForeign).toMatchObject({ status: 400, body: { code: -14 } })
    expect(patchForeign.body.message).toMatch(/^channels\.1/)
    // moving the box to the other enterprise alone leaves its channels naming this one's extensions
    const patchEnterprise = await admin("PATCH", `/devices/${mac}`, { enterprise: "200008" })
    expect(patchEnterprise).toMatchObject({ status: 400, body: { code: -14 } })
    expect(await admin("PATCH", `/devices/${mac}`, { enterprise: "999999", channels: {} })).toMatchObject({ status: 400, body: { code: -14 } })
    expect(await admin("GET", `/devices/${mac}`)).toMatchObject({ status: 200, body: { enterprise: "100008", channels: { "1": "100008801" } } })
    expect(await admin("PATCH", `/devices/${mac}`, { enterprise: "200008", channels: { "1": "200008800" } })).toMatchObject({ status: 200, body: { device: { enterprise: "200008" } } })
    expect(await admin("DELETE", `/devices/${mac}`)).toMatchObject({ status: 200 })
    await alive()
  })

  it("at start, a configured box with an unknown enterprise or extension is left out (the bridge serves); one the config dropped is forgotten", { timeout: 30_000 }, async () => {
    const dataDir = tempDir()
    const boot = async (devices: ReadonlyArray<unknown>) =>
      startServer(await Effect.runPromise(loadConfig({ env: {}, overrides: { port: 0, host: "127.0.0.1", dataDir, logLevel: "info", devices } })))
    // the bridge logs JSON lines through the console: what it said at start is read from there
    const logged: Array<string> = []
    const spy = vi.spyOn(console, "log").mockImplementation((...args: Array<unknown>) => void logged.push(args.map(String).join(" ")))
    onTestFinished(() => spy.mockRestore())
    const said = (level: string, mac: string) => logged.some((l) => l.includes(`"level":"${level.toLowerCase()}"`) && l.includes(mac))
    const good = { mac: "02:BB:00:00:00:01", enterprise: "100008", channels: { "1": "100008800" } }
    const noEnterprise = { mac: "02:BB:00:00:00:02", enterprise: "999999", channels: {} }
    const foreign = { mac: "02:BB:00:00:00:03", enterprise: "100008", channels: { "1": "200008800" } }
    const first = await boot([])
    await first.close()
    addForeignEnterprise(dataDir)

    const second = await boot([good, noEnterprise, foreign])
    const statusOf = async (url: string, satellite: string) =>
      ((await (await fetch(`${url}/voip/upload_record`, { method: "POST", body: new URLSearchParams({ cmd: "x", satellite }) })).json()) as Answer).status
    try {
      expect((await fetch(`${second.url}/healthz`)).status).toBe(200)
      expect(await statusOf(second.url, good.mac)).toBe(0)
      expect(await statusOf(second.url, noEnterprise.mac)).toBe(3001)
      expect(await statusOf(second.url, foreign.mac)).toBe(3001)
      expect([said("ERROR", noEnterprise.mac), said("ERROR", foreign.mac), said("ERROR", good.mac)]).toEqual([true, true, false])
    } finally {
      await second.close()
    }

    const third = await boot([])
    try {
      expect(await statusOf(third.url, good.mac)).toBe(3001)
      expect(said("INFO", good.mac)).toBe(true)
      const db = new Database(path.join(dataDir, "bridge.db"), { readonly: true })
      try {
        expect(db.prepare("SELECT count(*) AS n FROM box_devices WHERE origin = 'config'").get()).toEqual({ n: 0 })
      } finally {
        db.close()
      }
    } finally {
      await third.close()
    }
  })
})

describe("a report naming a channel twice", () => {
  it("is refused, so repeating it cannot raise box.channel on every heartbeat", async () => {
    const before = events("box.channel").length
    for (let i = 0; i < 3; i++) expect((await post({ cmd: "channelstatus", satellite: MAC, status: statusJson([{ ch: 1, state: 1 }, { ch: 1, state: 4 }]) })).status).toBe(-14)
    await new Promise((r) => setTimeout(r, 150))
    expect(events("box.channel")).toHaveLength(before)
  })
})
