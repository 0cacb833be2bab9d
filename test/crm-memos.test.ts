/** addMemo / getMemos (§2.9) and their reminders: fired once by the sweep, also after a restart, as a memo.reminder event and a recvMsg message. */
import * as path from "node:path"
import Database from "better-sqlite3"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { loadConfig } from "../src/config/AppConfig.js"
import { sweepReminders } from "../src/crm/Memos.js"
import { startServer } from "../src/http/Server.js"
import { formatLocal } from "../src/shared/Time.js"
import { addEnterpriseAdmin } from "./support/Enterprises.js"
import { eventually, startReceiver } from "./support/Receiver.js"
import { asAdmin, callApi, creds, startTestServer, tempDir, type TestServer } from "./support/TestServer.js"

type Rx = Awaited<ReturnType<typeof startReceiver>>
const TZ = "Asia/Shanghai"
const agent = creds("100008401", "agent-pw")
const other = creds("200008800", "other-pw")
const targets = (rx: Rx) => [{ name: "crm", url: rx.url, events: ["memo.*"], retry: { scheduleMs: [0, 100, 100] } }]
const forwarding = { pollIntervalMs: 50, circuitThreshold: 100, circuitCooldownMs: 100, retentionDays: 30 }

let server: TestServer
let rx: Rx

beforeAll(async () => {
  rx = await startReceiver()
  server = await startTestServer({ targets: targets(rx), forwarding })
  await asAdmin(server, "addExtension", { exteExtension: "401", extePassword: "agent-pw", exteName: "小王" })
  await addEnterpriseAdmin(server, "200008800", "other-pw")
})
afterAll(async () => {
  await server.close()
  await rx.close()
})

interface MemoRow { cmmId: number; cmmExtension: string; exteName: string; cmmPhone: string; cmmPhoneName: string; cmmTime: string; cmmMemo: string }
const add = async (fields: Record<string, string>, who = agent, s: { url: string } = server) => callApi(s, { ...who, method: "addMemo", ...fields }, "form")
const memos = async (fields: Record<string, string>, who = agent, s: { url: string } = server) => {
  const body = await callApi(s, { ...who, method: "getMemos", ...fields })
  return body as typeof body & { total: number; rows: Array<MemoRow> }
}
const events = (r: Rx, type: string) => r.received.map((x) => JSON.parse(x.body) as { type: string; data: Record<string, unknown> }).filter((e) => e.type === type)
const local = (ms: number) => formatLocal(ms, TZ)
const reminders = async (s: { url: string }, who: Record<string, string>, client: string) =>
  ((await callApi(s, { ...who, method: "recvMsg", client })).msgs as Array<{ kind: string; phone: string; content: string; client: number }>).filter((m) => m.kind === "8")

describe("addMemo and getMemos", () => {
  it("stores a memo (Chinese round-trips) and lists it by the number however it is written, newest first, with the agent's name", async () => {
    const a = await add({ cdrMemo: "客户说下周再联系，带报价单「A 型」", cdrPhone: "138-0013-8000" })
    expect(a).toMatchObject({ code: 0, success: true, cmmId: expect.any(Number) })
    const b = await add({ cdrMemo: "已发报价", cdrPhone: "+86 13800138000" })
    for (const phoneNum of ["13800138000", "+8613800138000", "0086 138 0013 8000", "138-0013-8000"]) {
      const page = await memos({ phoneNum })
      expect(page, phoneNum).toMatchObject({ code: 0, success: true, total: 2 })
      expect(page.rows.map((r) => r.cmmId)).toEqual([b.cmmId, a.cmmId])
    }
    const [row] = (await memos({ phoneNum: "13800138000", limit: "1", start: "1" })).rows
    expect(row).toEqual({
      cmmId: a.cmmId,
      cmmExtension: "100008401",
      exteName: "小王",
      cmmPhone: "138-0013-8000",
      cmmPhoneName: "",
      cmmTime: expect.stringMatching(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/),
      cmmMemo: "客户说下周再联系，带报价单「A 型」"
    })
    const added = await eventually(() => events(rx, "memo.added").find((e) => e.data.cmmId === a.cmmId))
    expect(added.data).toMatchObject({ extension: "100008401", phone: "138-0013-8000", memo: "客户说下周再联系，带报价单「A 型」", remind: false })
  })

  it("pages with start/limit as findDialrecord does (limit over limits.pageMax: -12)", async () => {
    const ids: Array<number> = []
    for (let i = 0; i < 5; i++) ids.push((await add({ cdrMemo: `第${i}条`, cdrPhone: "02368880000" })).cmmId as number)
    const all = await memos({ phoneNum: "023-6888-0000" })
    expect(all.total).toBe(5)
    expect(all.rows.map((r) => r.cmmId)).toEqual([...ids].reverse())
    expect((await memos({ phoneNum: "02368880000", start: "3", limit: "10" })).rows.map((r) => r.cmmMemo)).toEqual(["第1条", "第0条"])
    expect(await memos({ phoneNum: "02368880000", start: "9" })).toMatchObject({ total: 5, rows: [] })
    expect(await memos({ phoneNum: "02368880000", limit: "0" })).toMatchObject({ total: 5, rows: [] })
    expect((await memos({ phoneNum: "02368880000", limit: "1001" })).code).toBe(-12)
    expect((await memos({ phoneNum: "02368880000", start: "-1" })).code).toBe(-14)
    // no number: the enterprise's memos
    expect((await memos({})).total).toBeGreaterThanOrEqual(7)
  })

  it("names the number by its customer (cmmPhoneName), however either was written; no customer, no name", async () => {
    const saved = await asAdmin(server, "saveCustomer", { custName: "陈女士", custCorpName: "山城商贸", cpPhone: "+86 139-2222-3333" }, "form")
    expect(saved.code).toBe(0)
    await add({ cdrMemo: "约了周五", cdrPhone: "13922223333" })
    await add({ cdrMemo: "没人认领的号码", cdrPhone: "13922224444" })
    expect((await memos({ phoneNum: "0086 13922223333" })).rows.map((r) => [r.cmmPhoneName, r.cmmMemo])).toEqual([["陈女士", "约了周五"]])
    expect((await memos({ phoneNum: "13922224444" })).rows.map((r) => r.cmmPhoneName)).toEqual([""])
    // another enterprise's customer of the same number names nothing here
    expect((await asAdmin(server, "delcustomer", { custId: String(saved.custId) })).code).toBe(0)
    expect((await callApi(server, { ...other, method: "saveCustomer", custName: "别家客户", cpPhone: "13922223333" }, "form")).code).toBe(0)
    expect((await memos({ phoneNum: "13922223333" })).rows.map((r) => r.cmmPhoneName)).toEqual([""])
  })

  it("takes injection and wildcard strings as plain text: they match only themselves", async () => {
    const hostile = ["%", "_", "' OR '1'='1", "1%'; DROP TABLE crm_memos;--", "\\%"]
    for (const h of hostile) expect((await add({ cdrMemo: h, cdrPhone: h })).code, h).toBe(0)
    for (const h of hostile) {
      const page = await memos({ phoneNum: h })
      expect(page.total, h).toBe(1)
      expect(page.rows[0]).toMatchObject({ cmmPhone: h, cmmMemo: h })
    }
    expect((await memos({ phoneNum: "13800138%" })).total).toBe(0)
    expect((await memos({ phoneNum: "1380013800_" })).total).toBe(0)
    expect((await memos({ phoneNum: " - " })).total).toBe(0)
  })

  it("keeps enterprises apart: another enterprise sees none of these memos, and its own are not seen here", async () => {
    expect(await memos({ phoneNum: "13800138000" }, other)).toMatchObject({ code: 0, total: 0, rows: [] })
    const before = (await memos({})).total
    const theirs = await add({ cdrMemo: "别家的记录", cdrPhone: "13800138000" }, other)
    expect(theirs.code).toBe(0)
    expect((await memos({ phoneNum: "13800138000" }, other)).rows.map((r) => r.cmmId)).toEqual([theirs.cmmId])
    expect((await memos({ phoneNum: "13800138000" })).rows.map((r) => r.cmmMemo)).not.toContain("别家的记录")
    expect((await memos({})).total).toBe(before)
    expect((await memos({}, other)).total).toBe(1)
  })

  it("refuses what it cannot store (-14) and stores nothing of it: a reminder without its time, an empty number or memo, a bad time", async () => {
    const before = (await memos({})).total
    const bads: ReadonlyArray<Record<string, string>> = [
      { cdrMemo: "x", cdrPhone: "13800000000", nhtIsHint: "1" },
      { cdrMemo: "x", cdrPhone: "13800000000", nhtIsHint: "1", nhtTime: "2026-02-30 10:00:00" },
      { cdrMemo: "x", cdrPhone: "13800000000", nhtIsHint: "2", nhtTime: "2026-01-01 10:00:00" },
      { cdrMemo: "x", cdrPhone: " - " },
      { cdrMemo: "  ", cdrPhone: "13800000000" },
      { cdrPhone: "13800000000" },
      { cdrMemo: "x" }
    ]
    for (const bad of bads) expect((await add(bad)).code, JSON.stringify(bad)).toBe(-14)
    expect((await memos({})).total).toBe(before)
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
  })
})

describe("reminders", () => {
  it("a due reminder fires exactly once however many sweeps race for it: one memo.reminder at the target, one message to each client of the extension", async () => {
    const memo = await add({ cdrMemo: "回访：确认合同细节", cdrPhone: "13911112222", nhtIsHint: "1", nhtTime: local(Date.now() - 60_000), nhtPhone: "139-1111-2222" })
    expect(memo.code).toBe(0)
    const notYet = await add({ cdrMemo: "明年再说", cdrPhone: "13911113333", nhtIsHint: "1", nhtTime: local(Date.now() + 365 * 86_400_000) })
    // the scheduled sweep may be among the racers: whoever claims it, it fires once
    const fired = await Promise.all(Array.from({ length: 4 }, () => server.runtime.runPromise(sweepReminders)))
    expect(fired.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(1)
    expect(await server.runtime.runPromise(sweepReminders)).toBe(0)
    const ev = await eventually(() => events(rx, "memo.reminder").find((e) => e.data.cmmId === memo.cmmId))
    expect(ev.data).toMatchObject({ extension: "100008401", phone: "13911112222", hintPhone: "13911112222", memo: "回访：确认合同细节" })
    for (const client of ["1", "2"]) {
      const msgs = await reminders(server, agent, client)
      expect(msgs.filter((m) => m.content === "回访：确认合同细节"), client).toEqual([{ kind: "8", phone: "13911112222", content: "回访：确认合同细节", time: expect.any(Number), waterLine: expect.any(Number), client: 0 }])
      expect(msgs.some((m) => m.content === "明年再说")).toBe(false)
    }
    // the admin's own clients and the other enterprise get nothing
    expect((await reminders(server, creds(), "1")).length).toBe(0)
    expect((await reminders(server, other, "1")).length).toBe(0)
    await new Promise((r) => setTimeout(r, 300))
    expect(events(rx, "memo.reminder").filter((e) => e.data.cmmId === memo.cmmId)).toHaveLength(1)
    expect(events(rx, "memo.reminder").some((e) => e.data.cmmId === notYet.cmmId)).toBe(false)
    const added = events(rx, "memo.added").find((e) => e.data.cmmId === memo.cmmId)
    expect(added?.data).toMatchObject({ remind: true, hintPhone: "13911112222" })
  })

  it("a backlog of due reminders raced by several sweeps: each fires once (one event, one message per client), none is lost", async () => {
    const due = local(Date.now() - 1000)
    const ids: Array<number> = []
    for (let i = 0; i < 150; i++) ids.push((await add({ cdrMemo: `批量提醒${i}`, cdrPhone: "13700001111", nhtIsHint: "1", nhtTime: due })).cmmId as number)
    await Promise.all(Array.from({ length: 4 }, () => server.runtime.runPromise(sweepReminders)))
    const db = new Database(path.join(server.dataDir, "bridge.db"), { readonly: true })
    try {
      const unfired = db.prepare(`SELECT COUNT(*) AS n FROM crm_memos WHERE phone = '13700001111' AND fired_at IS NULL`).get()
      expect(unfired).toEqual({ n: 0 })
      const perMemo = db.prepare(`SELECT json_extract(data, '$.cmmId') AS id, COUNT(*) AS n FROM events WHERE type = 'memo.reminder' AND json_extract(data, '$.phone') = '13700001111' GROUP BY id`).all() as Array<{ id: number; n: number }>
      expect(perMemo.map((r) => r.id).sort()).toEqual([...ids].sort())
      expect(perMemo.every((r) => r.n === 1)).toBe(true)
      const messages = db.prepare(`SELECT to_client, COUNT(*) AS n FROM messages WHERE kind = 8 AND phone = '13700001111' GROUP BY to_client ORDER BY to_client`).all()
      expect(messages).toEqual([{ to_client: 1, n: 150 }, { to_client: 2, n: 150 }])
    } finally {
      db.close()
    }
  })

  it("a reminder pending when the bridge stops fires after it starts again, by the scheduled sweep, once", async () => {
    const restartRx = await startReceiver()
    const dataDir = tempDir()
    const config = await Effect.runPromise(loadConfig({ env: {}, overrides: { port: 0, host: "127.0.0.1", dataDir, logLevel: "error", targets: targets(restartRx), forwarding } }))
    const first = await startServer(config)
    let second: Awaited<ReturnType<typeof startServer>> | undefined
    try {
      expect((await callApi(first, { ...creds(), method: "addExtension", exteExtension: "401", extePassword: "agent-pw" })).code).toBe(0)
      const memo = await callApi(first, { ...agent, method: "addMemo", cdrMemo: "重启后提醒", cdrPhone: "13655556666", nhtIsHint: "1", nhtTime: local(Date.now() + 1500) })
      expect(memo.code).toBe(0)
      await first.close()
      // while the bridge is down the reminder falls due
      await new Promise((r) => setTimeout(r, 1600))
      const pending = new Database(path.join(dataDir, "bridge.db"), { readonly: true })
      expect(pending.prepare("SELECT fired_at FROM crm_memos WHERE cmm_id = ?").get(memo.cmmId)).toEqual({ fired_at: null })
      pending.close()
      second = await startServer(config)
      const s = second
      // the job's schedule (every 5 s), not the test, fires it
      const ev = await eventually(() => events(restartRx, "memo.reminder").find((e) => e.data.cmmId === memo.cmmId), 15_000)
      expect(ev.data).toMatchObject({ memo: "重启后提醒", phone: "13655556666" })
      expect((await reminders(s, agent, "1")).map((m) => m.content)).toEqual(["重启后提醒"])
      expect(await s.runtime.runPromise(sweepReminders)).toBe(0)
      await new Promise((r) => setTimeout(r, 300))
      expect(events(restartRx, "memo.reminder")).toHaveLength(1)
      expect((await reminders(s, agent, "2")).map((m) => m.content)).toEqual(["重启后提醒"])
    } finally {
      await (second ?? first).close().catch(() => undefined)
      await restartRx.close()
    }
  }, 30_000)
})
