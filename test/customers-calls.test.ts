/**
 * Calls link to customers (issue 12 item 9): a pushed or box-uploaded call whose number is one of
 * a customer's phones (however either is written) sets that customer's last call time, which
 * getCustomersPage dateOpt=1 filters on, and its events carry the customer's id.
 */
import * as path from "node:path"
import Database from "better-sqlite3"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { asAdmin, callApi, creds, startTestServer, type TestServer } from "./support/TestServer.js"

let server: TestServer
const MAC = "00:1A:2B:3C:4D:7A"

beforeAll(async () => {
  server = await startTestServer({ devices: [{ mac: MAC, enterprise: "100008", channels: { "1": "100008800" } }] })
})
afterAll(() => server.close())

const eventsOf = (type: string) => {
  const d = new Database(path.join(server.dataDir, "bridge.db"), { readonly: true })
  try {
    return (d.prepare("SELECT data FROM events WHERE type = ? ORDER BY id").all(type) as Array<{ data: string }>).map((e) => JSON.parse(e.data) as Record<string, unknown>)
  } finally {
    d.close()
  }
}
const push = async (fields: Record<string, string>) =>
  (await (await fetch(`${server.url}/api/voip.json`, { method: "POST", body: new URLSearchParams(fields) })).json()) as { code: number }
const customerOf = async (phoneNum: string) =>
  ((await asAdmin(server, "getcustomer", { phoneNum })) as unknown as { customer: { custId: number; custLastCallTime: string | null } | null }).customer
const lastCallPage = async (startTime: string, endTime: string) =>
  ((await asAdmin(server, "getCustomersPage", { dateOpt: "1", startTime, endTime })) as unknown as { recordTotal: number; rows_customer: Array<{ custId: number }> })

describe("a call with a customer's number", () => {
  it("pushed by the platform: sets the customer's last call time (never back) and the call's events carry its id", async () => {
    const saved = await callApi(server, { ...creds(), method: "saveCustomer", custName: "来电客户", cpPhone: ["023-6384 6384", "+86 139 1234 5678"] }, "form")
    const custId = saved.custId as number
    expect(saved.code).toBe(0)
    expect((await customerOf("13912345678"))?.custLastCallTime).toBeNull()
    const memo = (cdrId: number, start: string) => JSON.stringify({ cdrId, cdrExtension: "100008800", cdrPhoneNum: "0086-13912345678", cdrStartTime: `${start}.0`, cdrTalktime: 30 })
    expect(await push({ type: "3", peer: "2", phone: "13912345678", memo: memo(930001, "2026-11-20 10:00:00") })).toEqual({ code: 0, message: "OK" })
    expect((await customerOf("13912345678"))?.custLastCallTime).toBe("2026-11-20 10:00:00")
    const hangup = eventsOf("call.hangup").find((e) => e.cdrId === 930001)
    expect(hangup).toMatchObject({ custId })
    // an earlier call pushed later does not move it back; a later one moves it on
    expect((await push({ type: "3", peer: "2", phone: "13912345678", memo: memo(930002, "2026-11-19 10:00:00") })).code).toBe(0)
    expect((await customerOf("13912345678"))?.custLastCallTime).toBe("2026-11-20 10:00:00")
    expect((await push({ type: "1", peer: "1", phone: "02363846384", memo: JSON.stringify({ cdrId: 930003, cdrExtension: "100008800", cdrStartTime: "2026-11-21 09:30:00" }) })).code).toBe(0)
    expect((await customerOf("13912345678"))?.custLastCallTime).toBe("2026-11-21 09:30:00")
    expect(eventsOf("call.dialing").find((e) => e.cdrId === 930003)).toMatchObject({ custId })
    // dateOpt=1: by last call time
    expect((await lastCallPage("2026-11-21 00:00:00", "2026-11-21 23:59:59")).rows_customer.map((c) => c.custId)).toEqual([custId])
    expect((await lastCallPage("2026-11-20 00:00:00", "2026-11-20 23:59:59")).recordTotal).toBe(0)
    // a call with nobody's number links to nobody
    expect((await push({ type: "3", peer: "1", phone: "13000000000", memo: JSON.stringify({ cdrId: 930004, cdrExtension: "100008800" }) })).code).toBe(0)
    expect(eventsOf("call.hangup").find((e) => e.cdrId === 930004)).not.toHaveProperty("custId")
    // nor to another enterprise's customer with that number
    expect((await push({ type: "3", peer: "1", phone: "13912345678", memo: JSON.stringify({ cdrId: 930005, cdrExtension: "200001800" }) })).code).toBe(0)
    expect(eventsOf("call.hangup").find((e) => e.cdrId === 930005)).not.toHaveProperty("custId")
  })

  it("the call record and the customer's last call read a pushed start time alike: a date alone is no time for either", async () => {
    const saved = await callApi(server, { ...creds(), method: "saveCustomer", custName: "日期客户", cpPhone: "139 0000 7788" }, "form")
    expect(saved.code).toBe(0)
    const pushedAt = Date.now()
    const memo = JSON.stringify({ cdrId: 930010, cdrExtension: "100008800", cdrPhoneNum: "13900007788", cdrStartTime: "2026-11-23" })
    expect(await push({ type: "3", peer: "2", phone: "13900007788", memo })).toEqual({ code: 0, message: "OK" })
    const d = new Database(path.join(server.dataDir, "bridge.db"), { readonly: true })
    try {
      const call = d.prepare("SELECT start_ms FROM cdrs WHERE platform_cdr_id = '930010'").get() as { start_ms: number }
      const customer = d.prepare("SELECT last_call_ms FROM customers WHERE cust_id = ?").get(saved.custId) as { last_call_ms: number }
      // not midnight of 2026-11-23 (the customer link once read it so): both are the push's own time
      expect(call.start_ms).toBeGreaterThanOrEqual(pushedAt)
      expect(customer.last_call_ms).toBeGreaterThanOrEqual(pushedAt)
      expect(Math.abs(customer.last_call_ms - call.start_ms)).toBeLessThan(5_000)
    } finally {
      d.close()
    }
  })

  it("uploaded by the recording box: the same, as of the call's start", async () => {
    const saved = await callApi(server, { ...creds(), method: "saveCustomer", custName: "盒子客户", cpPhone: "138 0013 8111" }, "form")
    const startSecs = Math.floor(Date.UTC(2026, 10, 22, 2, 0, 0) / 1000) // 2026-11-22 10:00:00 in Asia/Shanghai
    const fd = new FormData()
    for (const [k, v] of Object.entries({
      cmd: "upload",
      satellite: MAC,
      channel: "1",
      start_time_secs: String(startSecs),
      start_time_hangup: String(startSecs + 5),
      direction: "in",
      callid_dialed: "013800138111",
      duration_secs: "5",
      id: "1",
      recorded: "1",
      callid: "77001"
    }))
      fd.append(k, v)
    fd.append("file", new Blob([Buffer.from("box call")]), "rec.wav")
    const res = (await (await fetch(`${server.url}/voip/upload_record`, { method: "POST", body: fd })).json()) as { status: number }
    expect(res.status).toBe(0)
    expect((await customerOf("13800138111"))?.custLastCallTime).toBe("2026-11-22 10:00:00")
    expect(eventsOf("call.hangup").find((e) => e.cdrId === "77001")).toMatchObject({ custId: saved.custId })
    expect(eventsOf("call.recording").find((e) => e.cdrId === "77001")).toMatchObject({ custId: saved.custId })
    expect(eventsOf("box.recording").find((e) => e.callid === "77001")).toMatchObject({ custId: saved.custId })
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
  })
})
