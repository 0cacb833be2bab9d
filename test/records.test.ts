/** Call and SMS records (§2.1.6, §2.1.7) and findDialrecord (§2.4.1 / §2.7.1): every filter, paging, bad values, isolation. */
import * as path from "node:path"
import Database from "better-sqlite3"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Passwords } from "../src/auth/Passwords.js"
import { ExtensionsRepo } from "../src/extensions/ExtensionsRepo.js"
import { asAdmin, callApi, creds, startTestServer, type TestServer } from "./support/TestServer.js"

let server: TestServer
const agent = creds("100008401", "agent-pw")
const other = creds("100008402", "other-pw")

interface Row {
  cdrId: number | string
  cdrExtension: string
  cdrPhoneNum: string
  cdrStartTime: string
  cdrHangupTime: string
  cdrTalktime: number
  cdrPeer: number
  exteName: string
  cdrRecordFile: string
  cdrHangupReasonCode: string
  cdrExtensionIp: string
  cdrLastPhoneNum: string
  cdrChargingTimes: number
}

const addCdr = (who: Record<string, string>, fields: Record<string, string>) => callApi(server, { ...who, method: "addCdrRecord", ...fields }, "form")
const find = async (params: Record<string, string> = {}, who = creds()) => {
  const body = await callApi(server, { ...who, method: "findDialrecord", ...params })
  return body as typeof body & { rows: Array<Row>; total: number; recordTotal: number; success: boolean }
}
const phones = (rows: ReadonlyArray<Row>) => rows.map((r) => r.cdrPhoneNum)

beforeAll(async () => {
  server = await startTestServer()
  await asAdmin(server, "addExtension", { exteExtension: "401", extePassword: "agent-pw", exteName: "坐席401" })
  await asAdmin(server, "addExtension", { exteExtension: "402", extePassword: "other-pw", exteName: "坐席402" })
  // 10 calls of the admin, 5 of agent 401, 3 of agent 402, at distinct times
  const day = (i: number) => `2026-11-${String(1 + i).padStart(2, "0")} 10:00:00`
  for (let i = 0; i < 10; i++)
    await addCdr(creds(), { dialId: `${1000 + i}`, dialPhoneNum: `1380000000${i}`, dialStartTime: day(i), dialTalktime: String(i * 10), dialPeer: i % 2 === 0 ? "1" : "2" })
  for (let i = 0; i < 5; i++)
    await addCdr(agent, { dialId: `${2000 + i}`, dialPhoneNum: i === 0 ? "023-63846384" : `1390000000${i}`, dialStartTime: day(20 + i), dialTalktime: "30", dialPeer: "1" })
  for (let i = 0; i < 3; i++) await addCdr(other, { dialId: `${3000 + i}`, dialPhoneNum: `1370000000${i}`, dialStartTime: day(25 + i), dialPeer: "2" })
})
afterAll(() => server.close())

describe("addCdrRecord (§2.1.6)", () => {
  it("stores every field and maps it onto the cdr* row", async () => {
    const body = await addCdr(agent, {
      dialId: "5001",
      dialStatus: "1",
      dialOpenIp: "192.168.1.9",
      dialPeer: "2",
      dialPhoneNum: "+86 138-1111-2222",
      dialType: "1",
      dialStartTime: "2026-11-24 09:00:00",
      dialSucessTime: "2026-11-24 09:00:05",
      dialHangupTime: "2026-11-24 09:01:35",
      dialAnswer: "1",
      dialHangupReason: "16",
      dialTalktime: "90",
      dialRecordFile: "recs/full-1.wav",
      dialCtdId: "77",
      dialTransferSuccessTime: "2026-11-24 09:00:30",
      dialTransferTimes: "20",
      dialSmsSendStatus: "1"
    })
    expect(body).toMatchObject({ code: 0, cdrId: expect.any(Number) })
    const { rows } = await find({ scdrId: String(body.cdrId) })
    expect(rows).toHaveLength(1)
    expect(rows[0]).toMatchObject({
      cdrId: body.cdrId,
      cdrExtension: "100008401",
      exteName: "坐席401",
      cdrPhoneNum: "+86 138-1111-2222",
      cdrLastPhoneNum: "13811112222",
      cdrStartTime: "2026-11-24 09:00:00",
      cdrHangupTime: "2026-11-24 09:01:35",
      cdrTalktime: 90,
      cdrChargingTimes: 2,
      cdrPeer: 2,
      cdrHangupReasonCode: "16",
      cdrExtensionIp: "192.168.1.9",
      cdrRecordFile: ""
    })
  })

  it("updates on a repeat of the same dialId by the same extension, never duplicates", async () => {
    const first = await addCdr(agent, { dialId: "5002", dialPhoneNum: "13500000001", dialStartTime: "2026-10-01 08:00:00", dialTalktime: "5" })
    const second = await addCdr(agent, { dialId: "5002", dialTalktime: "65", dialHangupTime: "2026-10-01 08:01:10" })
    expect(second.cdrId).toBe(first.cdrId)
    const { rows } = await find({ phoneNum: "13500000001" })
    expect(rows).toHaveLength(1)
    expect(rows[0]).toMatchObject({ cdrTalktime: 65, cdrHangupTime: "2026-10-01 08:01:10", cdrStartTime: "2026-10-01 08:00:00" })
    // the same dialId from another extension is another call
    const third = await addCdr(other, { dialId: "5002", dialPhoneNum: "13500000001", dialStartTime: "2026-10-01 08:00:00" })
    expect(third.cdrId).not.toBe(first.cdrId)
  })

  it("raises cdr.added, then cdr.updated, in the events table", async () => {
    const { cdrId } = await addCdr(agent, { dialId: "5003", dialPhoneNum: "13500000002", dialStartTime: "2026-10-02 08:00:00" })
    await addCdr(agent, { dialId: "5003", dialTalktime: "3" })
    const db = new Database(path.join(server.dataDir, "bridge.db"), { readonly: true })
    const events = db.prepare("SELECT type, data FROM events WHERE type LIKE 'cdr.%' AND data LIKE ?").all(`%"cdrId":${cdrId}%`) as Array<{ type: string; data: string }>
    db.close()
    expect(events.map((e) => e.type)).toEqual(["cdr.added", "cdr.updated"])
    expect(JSON.parse(events[0]!.data)).toMatchObject({ cdrId, cdrPhoneNum: "13500000002", cdrExtension: "100008401" })
  })

  it.each([
    [{}, "parameter dialId: is missing"],
    [{ dialId: "1", dialStartTime: "yesterday" }, /^parameter dialStartTime: expected a time/],
    [{ dialId: "1", dialTalktime: "-5" }, /^parameter dialTalktime/],
    [{ dialId: "1", dialPeer: "7" }, /^parameter dialPeer/],
    [{ dialId: "not a number" }, /^parameter dialId: expected a numeric id/]
  ])("refuses %o with -14, storing nothing", async (fields, message) => {
    const before = (await find({}, agent)).total
    const body = await addCdr(agent, fields as Record<string, string>)
    expect(body.code).toBe(-14)
    expect(body.message).toMatch(message)
    expect((await find({}, agent)).total).toBe(before)
  })
})

describe("addSmsRecord (§2.1.7)", () => {
  it("stores and updates by its id, raising sms.added once", async () => {
    const a = await callApi(server, { ...agent, method: "addSmsRecord", id: "9001", kind: "3", phone: "13800000000", content: "你好", time: "1763950000000" })
    const b = await callApi(server, { ...agent, method: "addSmsRecord", id: "9001", kind: "3", phone: "13800000000", content: "你好！", time: "1763950000000" })
    expect(a).toMatchObject({ code: 0, smsId: expect.any(Number) })
    expect(b.smsId).toBe(a.smsId)
    const db = new Database(path.join(server.dataDir, "bridge.db"), { readonly: true })
    const rows = db.prepare("SELECT content FROM sms_records WHERE local_id = '9001'").all() as Array<{ content: string }>
    const added = db.prepare("SELECT count(*) AS n FROM events WHERE type = 'sms.added' AND data LIKE '%9001%'").get() as { n: number }
    db.close()
    expect(rows).toEqual([{ content: "你好！" }])
    expect(added.n).toBe(1)
  })

  it("refuses a missing phone or a bad time (-14)", async () => {
    expect(await callApi(server, { ...agent, method: "addSmsRecord", time: "1" })).toMatchObject({ code: -14, message: "parameter phone: is missing" })
    expect(await callApi(server, { ...agent, method: "addSmsRecord", phone: "1", time: "now" })).toMatchObject({ code: -14, message: expect.stringMatching(/^parameter time/) })
  })
})

describe("findDialrecord (§2.4.1 / §2.7.1)", () => {
  it("answers success, total = recordTotal, 20 rows by default, newest first", async () => {
    const body = await find()
    expect(body).toMatchObject({ code: 0, success: true })
    expect(body.total).toBe(body.recordTotal)
    expect(body.total).toBeGreaterThanOrEqual(18)
    expect(body.rows).toHaveLength(20)
    const starts = body.rows.map((r) => r.cdrStartTime)
    expect([...starts].sort().reverse()).toEqual(starts)
  })

  it("filters by extension (comma list)", async () => {
    const { rows } = await find({ extension: "100008402" })
    expect(rows.every((r) => r.cdrExtension === "100008402")).toBe(true)
    const both = await find({ extension: "100008401, 100008402", limit: "100" })
    expect(new Set(both.rows.map((r) => r.cdrExtension))).toEqual(new Set(["100008401", "100008402"]))
  })

  it("filters by phone number, ignoring formatting and leading zeros", async () => {
    expect(phones((await find({ phoneNum: "13800000003" })).rows)).toEqual(["13800000003"])
    expect(phones((await find({ phoneNum: "02363846384" })).rows)).toEqual(["023-63846384"])
    expect((await find({ phoneNum: "19999999999" })).total).toBe(0)
  })

  it("filters by talk time: talktimeSql 0 greater, 1 less", async () => {
    const longer = await find({ extension: "100008800", talktimeSql: "0", talktime: "60" })
    expect(longer.rows.map((r) => r.cdrTalktime).sort()).toEqual([70, 80, 90])
    const shorter = await find({ extension: "100008800", talktimeSql: "1", talktime: "20" })
    expect(shorter.rows.map((r) => r.cdrTalktime).sort()).toEqual([0, 10])
  })

  it("filters by time range, with startTime or the misspelt statrTime", async () => {
    const a = await find({ extension: "100008800", startTime: "2026-11-03 00:00:00", endTime: "2026-11-05 23:59:59" })
    expect(a.rows.map((r) => r.cdrStartTime)).toEqual(["2026-11-05 10:00:00", "2026-11-04 10:00:00", "2026-11-03 10:00:00"])
    const b = await find({ extension: "100008800", statrTime: "2026-11-03", endTime: "2026-11-05 23:59" })
    expect(b.rows).toEqual(a.rows)
  })

  it("filters by direction (cdrPeer) and by id (scdrId)", async () => {
    const out = await find({ extension: "100008800", cdrPeer: "1" })
    expect(out.total).toBe(5)
    expect(out.rows.every((r) => r.cdrPeer === 1)).toBe(true)
    const one = out.rows[0]!
    expect((await find({ scdrId: String(one.cdrId) })).rows).toEqual([one])
  })

  it("combines filters", async () => {
    const body = await find({ extension: "100008800", cdrPeer: "2", talktimeSql: "0", talktime: "40", startTime: "2026-11-01 00:00:00", endTime: "2026-11-09 00:00:00" })
    expect(body.rows.map((r) => r.cdrTalktime)).toEqual([70, 50])
  })

  it("pages with start and limit, at every boundary", async () => {
    const all = await find({ limit: "1000" })
    const n = all.total
    expect(all.rows).toHaveLength(n)
    const page2 = await find({ start: "5", limit: "5" })
    expect(page2.rows).toEqual(all.rows.slice(5, 10))
    expect((await find({ start: String(n - 1), limit: "5" })).rows).toEqual(all.rows.slice(n - 1))
    expect((await find({ start: String(n), limit: "5" })).rows).toEqual([])
    expect((await find({ start: String(n + 100) })).total).toBe(n)
    expect((await find({ limit: "0" })).rows).toEqual([])
    expect(await find({ limit: "1001" })).toMatchObject({ code: -12, message: "parameter limit: at most 1000, got 1001" })
  })

  it.each([
    [{ startTime: "2026-13-01 00:00:00" }, "startTime"],
    [{ statrTime: "garbage" }, "statrTime"],
    [{ cdrPeer: "9" }, "cdrPeer"],
    [{ talktime: "abc" }, "talktime"],
    [{ talktimeSql: "2", talktime: "5" }, "talktimeSql"],
    [{ talktimeSql: "0" }, "talktime"],
    [{ start: "-1" }, "start"],
    [{ limit: "ten" }, "limit"],
    [{ extension: "abc" }, "extension.0"],
    [{ startTime: "2026-11-05 00:00:00", endTime: "2026-11-01 00:00:00" }, "endTime"]
  ])("refuses %o with -14 naming %s", async (params, param) => {
    const body = await find(params)
    expect(body.code).toBe(-14)
    expect(body.message).toMatch(new RegExp(`^parameter ${param.replace(".", "\\.")}[: ]`))
  })

  it("is also served as findDialrecord.html", async () => {
    const body = await callApi(server, { ...creds(), method: "findDialrecord.html", extension: "100008402" })
    expect(body).toMatchObject({ code: 0, success: true, total: (await find({ extension: "100008402" })).total })
  })

  it("shows an agent only its own calls", async () => {
    const mine = await find({ limit: "100" }, other)
    expect(mine.rows.every((r) => r.cdrExtension === "100008402")).toBe(true)
    expect((await find({ extension: "100008800" }, other)).total).toBe(0)
  })

  it("never shows another enterprise's calls", async () => {
    await server.runtime.runPromise(
      Effect.gen(function* () {
        const repo = yield* ExtensionsRepo
        const passwords = yield* Passwords
        yield* repo.ensureEnterprise("200002", "别家")
        yield* repo.insert("200002", 800, { password_hash: yield* passwords.hashPlain("x-pw"), status: 2 })
      })
    )
    const outsider = creds("200002800", "x-pw")
    await addCdr(outsider, { dialId: "6001", dialPhoneNum: "13800000003", dialStartTime: "2026-11-01 00:00:00" })
    expect((await find({ limit: "1000" }, outsider)).total).toBe(1)
    expect((await find({ phoneNum: "13800000003" })).rows.every((r) => r.cdrExtension.startsWith("100008"))).toBe(true)
    expect(await find({ extension: "200002800" })).toMatchObject({ code: -11 })
  })
})

describe("a call record stored before nesting was limited", () => {
  it("with fields nested 5,000 deep does not break findDialrecord: answers 0, lists every call, the bridge still serves", async () => {
    const own = await startTestServer()
    try {
      const add = (dialId: string, phone: string) =>
        callApi(own, { ...creds(), method: "addCdrRecord", dialId, dialPhoneNum: phone, dialStartTime: "2026-11-20 10:00:00", dialMemo: "kept" })
      expect((await add("7001", "13800000071")).code).toBe(0)
      expect((await add("7002", "13800000072")).code).toBe(0)
      // as an older bridge stored it, past every check of today's
      let deep = "1"
      for (let i = 0; i < 5000; i++) deep = `[${deep}]`
      const db = new Database(path.join(own.dataDir, "bridge.db"))
      try {
        const now = Date.now()
        db.prepare("INSERT INTO cdrs (cdr_id, comp_number, extension, phone, last_phone, start_ms, fields, source, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)").run(
          999001, "100008", "100008800", "13800000079", "13800000079", now, `{"cdrCalledName":${deep}}`, "platform", now, now
        )
      } finally {
        db.close()
      }
      for (let round = 0; round < 2; round++) {
        const body = await callApi(own, { ...creds(), method: "findDialrecord", limit: "100" })
        expect(body.code).toBe(0)
        const rows = body.rows as Array<Row & { cdrCalledName: string }>
        expect(body.total).toBe(3)
        expect(phones(rows).sort()).toEqual(["13800000071", "13800000072", "13800000079"])
        // the unreadable row is listed without its fields
        expect(rows.find((r) => r.cdrPhoneNum === "13800000079")!.cdrCalledName).toBe("")
      }
      // the row alone, by its id
      const one = await callApi(own, { ...creds(), method: "findDialrecord", scdrId: "999001" })
      expect(one).toMatchObject({ code: 0, total: 1 })
      expect((await fetch(`${own.url}/healthz`)).status).toBe(200)
    } finally {
      await own.close()
    }
  })

  it("with fields nested 5,000 deep is updated by a push or addCdrRecord of the same call, whose fields replace the unreadable ones", async () => {
    const own = await startTestServer()
    try {
      let deep = "1"
      for (let i = 0; i < 5000; i++) deep = `[${deep}]`
      const db = new Database(path.join(own.dataDir, "bridge.db"))
      try {
        const now = Date.now()
        const insert = db.prepare("INSERT INTO cdrs (cdr_id, comp_number, extension, dial_id, platform_cdr_id, start_ms, fields, source, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)")
        insert.run(999101, "100008", "100008800", null, "555001", now, `{"cdrCalledName":${deep}}`, "platform", now, now)
        insert.run(999102, "100008", "100008800", "8801", null, now, `{"dialMemo":${deep}}`, "client", now, now)
      } finally {
        db.close()
      }
      // neither update names the unreadable field: merged with it, the stored record could not be written
      const memo = JSON.stringify({ cdrId: 555001, cdrExtension: "100008800", cdrTalktime: 10, cdrIVR: "ivr-1" })
      const pushed = await fetch(`${own.url}/api/voip.json`, { method: "POST", body: new URLSearchParams({ type: "3", peer: "1", phone: "13800138000", memo }) })
      expect(await pushed.json()).toMatchObject({ code: 0 })
      expect(await callApi(own, { ...creds(), method: "addCdrRecord", dialId: "8801", dialPhoneNum: "13800000088", dialOpenIp: "10.0.0.8" })).toMatchObject({ code: 0, cdrId: 999102 })
      const rows = (await callApi(own, { ...creds(), method: "findDialrecord", limit: "100" })).rows as Array<Row & { cdrCalledName: string; cdrIVR: string }>
      expect(rows.find((r) => r.cdrId === 555001)).toMatchObject({ cdrIVR: "ivr-1", cdrCalledName: "", cdrTalktime: 10 })
      expect(rows.find((r) => r.cdrId === 999102)).toMatchObject({ cdrPhoneNum: "13800000088", cdrExtensionIp: "10.0.0.8" })
      expect((await fetch(`${own.url}/healthz`)).status).toBe(200)
    } finally {
      await own.close()
    }
  })
})

describe("deep pages", () => {
  // 1,500 calls at only 9 distinct start times (ties on start_ms everywhere), stored in
  // shuffled id order, over three extensions, both directions and talk times 0–599 s
  interface Stored {
    readonly id: number
    readonly extension: string
    readonly phone: string
    readonly start: number
    readonly talk: number
    readonly peer: number
  }
  const N = 1500
  const T = Date.UTC(2026, 10, 1, 2)
  // the high half of a 32-bit LCG: its low bits repeat with short periods
  const lcg = (seed: number) => () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 16
  const next = lcg(17)
  const stored: Array<Stored> = Array.from({ length: N }, (_, i) => ({
    id: 7_000_000 + i,
    extension: ["100008800", "100008401", "100008402"][next() % 3]!,
    phone: `1380000${String(next() % 40).padStart(4, "0")}`,
    start: T + (next() % 9) * 60_000,
    talk: next() % 600,
    peer: (next() % 2) + 1
  }))
  /** what findDialrecord answered before its pages were found by id: newest first, ties by id, descending */
  const expected = (keep: (s: Stored) => boolean) =>
    stored
      .filter(keep)
      .sort((a, b) => b.start - a.start || b.id - a.id)
      .map((s) => s.id)

  let own: TestServer
  beforeAll(async () => {
    own = await startTestServer()
    await asAdmin(own, "addExtension", { exteExtension: "401", extePassword: "agent-pw", exteName: "坐席401" })
    await asAdmin(own, "addExtension", { exteExtension: "402", extePassword: "other-pw", exteName: "坐席402" })
    const db = new Database(path.join(own.dataDir, "bridge.db"))
    try {
      const insert = db.prepare(`INSERT INTO cdrs (cdr_id, comp_number, extension, dial_id, phone, last_phone, start_ms, talk_secs, peer, fields, source, created_at, updated_at)
        VALUES (?, '100008', ?, ?, ?, ?, ?, ?, ?, '{}', 'client', ?, ?)`)
      const shuffled = [...stored].sort((a, b) => (a.id * 7919) % N - (b.id * 7919) % N)
      db.transaction(() => {
        for (const s of shuffled) insert.run(s.id, s.extension, String(s.id), s.phone, s.phone, s.start, s.talk, s.peer, s.start, s.start)
      })()
    } finally {
      db.close()
    }
  })
  afterAll(() => own.close())

  const ids = async (params: Record<string, string>, who = creds()) => {
    const body = await callApi(own, { ...who, method: "findDialrecord", ...params })
    expect(body.code).toBe(0)
    return { total: body.total as number, ids: (body.rows as Array<Row>).map((r) => r.cdrId) }
  }

  it.each([
    ["no filter", {}, () => true],
    ["one extension", { extension: "100008401" }, (s: Stored) => s.extension === "100008401"],
    ["talk > 300, outbound", { talktimeSql: "0", talktime: "300", cdrPeer: "1" }, (s: Stored) => s.talk > 300 && s.peer === 1],
    ["extension, talk < 200, inbound", { extension: "100008800", talktimeSql: "1", talktime: "200", cdrPeer: "2" }, (s: Stored) => s.extension === "100008800" && s.talk < 200 && s.peer === 2],
    ["phone number", { phoneNum: "13800000007" }, (s: Stored) => s.phone === "13800000007"],
    ["two extensions, from the third minute", { extension: "100008401,100008402", startTime: "2026-11-01 10:03:00" }, (s: Stored) => s.extension !== "100008800" && s.start >= T + 180_000]
  ] as const)("%s: every page, at every depth, holds the calls the whole order puts there", async (_, params, keep) => {
    const want = expected(keep)
    expect(want.length).toBeGreaterThan(7)
    const walked: Array<number | string> = []
    for (let start = 0; start < want.length; start += 37) {
      const page = await ids({ ...params, start: String(start), limit: "37" })
      expect(page.total).toBe(want.length)
      walked.push(...page.ids)
    }
    expect(walked).toEqual(want)
    for (const start of [want.length - 1, want.length - 5, Math.floor(want.length / 2)])
      expect((await ids({ ...params, start: String(start), limit: "5" })).ids).toEqual(want.slice(start, start + 5))
    expect((await ids({ ...params, start: String(want.length), limit: "5" })).ids).toEqual([])
  })

  it("an agent's deep pages hold its own calls only, in the same order", async () => {
    const want = expected((s) => s.extension === "100008401")
    const page = await ids({ start: String(want.length - 30), limit: "50" }, agent)
    expect(page).toEqual({ total: want.length, ids: want.slice(-30) })
    expect((await fetch(`${own.url}/healthz`)).status).toBe(200)
  })
})
