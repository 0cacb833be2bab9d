/**
 * The box driver's calls end (issue 13, box driver): a callback / verification / task call
 * dialled by a box ends when the box uploads the record of that call (same box and channel, an
 * outgoing call to the same number, within the report window after the hand-out, the earliest
 * such dial first), or as not answered when the box never took it or never reported it — also
 * across a restart. Real server, raw box requests over real HTTP, real SQLite.
 */
import * as path from "node:path"
import Database from "better-sqlite3"
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { loadConfig } from "../src/config/AppConfig.js"
import { startServer } from "../src/http/Server.js"
import { adminApi } from "./support/AdminApi.js"
import { addEnterpriseAdmin } from "./support/Enterprises.js"
import { eventually, startReceiver } from "./support/Receiver.js"
import { ADMIN, asAdmin, startTestServer, tempDir } from "./support/TestServer.js"

const MAC = "00:1A:2B:3C:4D:8C"
const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64")
const fields = (body: string) => Object.fromEntries(new URLSearchParams(body))
const query = <A>(s: { readonly dataDir: string }, sql: string, ...params: ReadonlyArray<unknown>): Array<A> => {
  const db = new Database(path.join(s.dataDir, "bridge.db"), { readonly: true })
  try {
    return db.prepare(sql).all(...params) as Array<A>
  } finally {
    db.close()
  }
}
const box = (s: { readonly url: string }, params: Record<string, string>) =>
  fetch(`${s.url}/voip/upload_record`, { method: "POST", body: new URLSearchParams({ satellite: MAC, ...params }) }).then(
    async (r) => ({ status: r.status, body: (await r.json()) as { status: number; data?: Array<Record<string, string>>; callid?: string } })
  )
const getCallList = (s: { readonly url: string }) => box(s, { cmd: "getCallList" })
/** what a box uploads once a call is over, without a recording */
const upload = (s: { readonly url: string }, call: { channel: number; phone: string; callid: string; talk: number; direction?: string; startMs?: number }) => {
  const start = Math.floor((call.startMs ?? Date.now()) / 1000)
  return box(s, {
    cmd: "upload",
    channel: String(call.channel),
    direction: call.direction ?? "out",
    callid_dialed: call.phone,
    start_time_secs: String(start),
    start_time_hangup: String(start + call.talk + 5),
    duration_secs: String(call.talk),
    recorded: "0",
    callid: call.callid
  })
}
const boxConfig = (dialTtlMs: number, reportWithinMs: number) => ({
  devices: [{ mac: MAC, enterprise: "100008", channels: { "2": ADMIN.user } }],
  box: { diskAlertPercent: 90, dialTtlMs, messageWaitMs: 0, offlineAfterMs: 90_000 },
  forwarding: { pollIntervalMs: 50, circuitThreshold: 50, circuitCooldownMs: 300, retentionDays: 30 },
  telephony: { driver: "box", box: { reportWithinMs }, callbackDelivery: { scheduleMs: [0, 50] } }
})

describe("box driver: an upload ends the call it dialled", () => {
  it("the box's record ends the earliest matching dial (answered, talk time, cdrId); other calls on the channel end nothing", async () => {
    const hooks = await startReceiver()
    const server = await startTestServer(boxConfig(60_000, 60_000))
    try {
      const first = await asAdmin(server, "callbackPhone", { sourcePhone: "02367073578", descPhone: "13800138000", callbackUrl: b64(`${hooks.url}?cbkId={cbkId}`) })
      const second = await asAdmin(server, "callbackPhone", { sourcePhone: "02367073578", descPhone: "13800138000", callbackUrl: b64(`${hooks.url}?cbkId={cbkId}`) })
      expect([first.code, second.code]).toEqual([0, 0])
      const polled = await getCallList(server)
      expect(polled.body.data?.map((d) => [d.mdcWan, d.phone])).toEqual([["2", "13800138000"], ["2", "13800138000"]])
      const pushesOf = (id: unknown) => hooks.received.filter((r) => r.url.includes(`cbkId=${String(id)}`)).map((r) => fields(r.body))
      await eventually(() => pushesOf(first.id).length >= 2 && pushesOf(second.id).length >= 2)

      // not the dial's call: an incoming call, another number, another channel — each stored, none ends a callback
      expect((await upload(server, { channel: 2, phone: "13800138000", callid: "9001", talk: 10, direction: "in" })).body.status).toBe(0)
      expect((await upload(server, { channel: 2, phone: "13900139000", callid: "9002", talk: 10 })).body.status).toBe(0)
      expect((await upload(server, { channel: 1, phone: "13800138000", callid: "9003", talk: 10 })).body.status).toBe(0)
      // nor one that started well before the dial was handed out
      expect((await upload(server, { channel: 2, phone: "13800138000", callid: "9004", talk: 10, startMs: Date.now() - 3_600_000 })).body.status).toBe(0)
      // the dial's own call, its number written another way: the first callback ends with it
      expect((await upload(server, { channel: 2, phone: "+86 138-0013-8000", callid: "9005", talk: 42 })).body).toMatchObject({ status: 0, callid: "9005" })
      const ended = await eventually(() => pushesOf(first.id).find((p) => p.cbkEndTime !== undefined), 5_000, () => pushesOf(first.id))
      expect(ended).toMatchObject({ cbkStatus: "4", cbkTimes: "42", cbkResultCode: "NORMAL_CLEARING", cbkExtension: ADMIN.user })
      expect(pushesOf(first.id).map((p) => p.cbkStatus)).toEqual(["0", "1", "4"])
      expect(query<{ cdr_id: string }>(server, "SELECT cdr_id FROM callbacks WHERE cbk_id = ?", first.id)).toEqual([{ cdr_id: "9005" }])
      // the second is still calling; a second upload of the same call (a lost answer) does not end it
      expect((await upload(server, { channel: 2, phone: "13800138000", callid: "9005", talk: 42 })).body.status).toBe(0)
      expect((await getCallList(server)).body.status).toBe(3003)
      expect(query<{ status: number; end_ms: number | null }>(server, "SELECT status, end_ms FROM callbacks WHERE cbk_id = ?", second.id)).toEqual([{ status: 1, end_ms: null }])
      // its own call, not answered: it ends not answered
      expect((await upload(server, { channel: 2, phone: "13800138000", callid: "9006", talk: 0 })).body.status).toBe(0)
      const last = await eventually(() => pushesOf(second.id).find((p) => p.cbkEndTime !== undefined))
      expect(last).toMatchObject({ cbkStatus: "3", cbkTimes: "0", cbkResultCode: "NO_ANSWER" })
      // the same events as on the simulator: one status event per change; the dials delivered are forgotten
      expect(query<{ n: number }>(server, "SELECT count(*) AS n FROM events WHERE type = 'callback.status'")[0]!.n).toBe(6)
      expect(query<{ n: number }>(server, "SELECT count(*) AS n FROM box_dial_calls")[0]!.n).toBe(0)
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
    } finally {
      await server.close()
      await hooks.close()
    }
  }, 20_000)

  it("a dial never handed out, or handed out and never reported, ends as not answered saying why", async () => {
    const hooks = await startReceiver()
    const server = await startTestServer(boxConfig(400, 1_000))
    try {
      const untaken = await asAdmin(server, "callbackPhone", { sourcePhone: "02367073578", descPhone: "13800138001", callbackUrl: b64(`${hooks.url}?cbkId={cbkId}`) })
      expect(untaken.code).toBe(0)
      const pushesOf = (id: unknown) => hooks.received.filter((r) => r.url.includes(`cbkId=${String(id)}`)).map((r) => fields(r.body))
      const end = await eventually(() => pushesOf(untaken.id).find((p) => p.cbkEndTime !== undefined), 5_000)
      expect(end).toMatchObject({ cbkStatus: "3", cbkResultCode: "NOT_TAKEN_BY_BOX" })
      // too late for the box: the expired dial is not handed out
      expect((await getCallList(server)).body.status).toBe(3003)

      const unreported = await asAdmin(server, "callbackPhone", { sourcePhone: "02367073578", descPhone: "13800138002", callbackUrl: b64(`${hooks.url}?cbkId={cbkId}`) })
      const audit = await asAdmin(server, "phoneAudit", { yzm: "1234", type: "1", phone: "13800138003" })
      expect([unreported.code, audit.code]).toEqual([0, 0])
      expect((await getCallList(server)).body.data).toHaveLength(2)
      const late = await eventually(() => pushesOf(unreported.id).find((p) => p.cbkEndTime !== undefined), 5_000)
      expect(late).toMatchObject({ cbkStatus: "3", cbkResultCode: "NOT_REPORTED_BY_BOX" })
      const row = await eventually(() => query<{ status: number; end_ms: number | null }>(server, "SELECT status, end_ms FROM phone_audits WHERE ws_id = ?", audit.id).find((r) => r.end_ms !== null))
      expect(row.status).toBe(3)
      // an upload after the window ends nothing more (its record is stored all the same)
      expect((await upload(server, { channel: 2, phone: "13800138002", callid: "9101", talk: 30 })).body.status).toBe(0)
      expect(query<{ status: number; result_code: string }>(server, "SELECT status, result_code FROM callbacks WHERE cbk_id = ?", unreported.id)).toEqual([{ status: 3, result_code: "NOT_REPORTED_BY_BOX" }])
      expect(query<{ n: number }>(server, "SELECT count(*) AS n FROM cdrs WHERE platform_cdr_id = '9101'")[0]!.n).toBe(1)
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
    } finally {
      await server.close()
      await hooks.close()
    }
  }, 20_000)

  it("an automatic task on the box: each number ends by its upload or its window; the task finishes with the counts", async () => {
    const server = await startTestServer(boxConfig(60_000, 1_500))
    try {
      const task = await asAdmin(server, "addTask", { data: JSON.stringify([{ phone: "13800138010" }, { phone: "13800138011" }]), addType: "1", name: "盒子任务", cflName: "示例流程" })
      expect(task.code).toBe(0)
      const dials = await eventually(async () => {
        const r = await getCallList(server)
        return r.body.data !== undefined && r.body.data
      })
      expect(dials.map((d) => d.phone)).toEqual(["13800138010", "13800138011"])
      expect((await upload(server, { channel: 2, phone: "13800138010", callid: "9201", talk: 15 })).body.status).toBe(0)
      const finished = await eventually(() => query<{ finished_ms: number | null }>(server, "SELECT finished_ms FROM call_tasks WHERE ctk_id = ?", task.id).find((t) => t.finished_ms !== null), 8_000)
      expect(finished.finished_ms).not.toBeNull()
      const mx = await asAdmin(server, "findTaskMx", { ctkId: String(task.id) })
      expect(mx.groupData).toEqual([{ ctkId: task.id, ctdStatus: 3, num: 1 }, { ctkId: task.id, ctdStatus: 4, num: 1 }])
      const rows = mx.data as Array<Record<string, unknown>>
      expect(rows.find((r) => r.ctdPhone === "13800138010")).toMatchObject({ ctdStatus: 4, ctdTimes: "15", ctdResultCode: 200 })
      expect(rows.find((r) => r.ctdPhone === "13800138011")).toMatchObject({ ctdStatus: 3, cnrReasonType: "NOT_REPORTED_BY_BOX" })
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
    } finally {
      await server.close()
    }
  }, 20_000)

  it("a task with more numbers than a box channel queues waits for room: none ends for want of it", async () => {
    const server = await startTestServer(boxConfig(60_000, 1_000))
    try {
      const phones = Array.from({ length: 20 }, (_, i) => `139${String(i).padStart(8, "0")}`)
      const task = await asAdmin(server, "addTask", { data: JSON.stringify(phones.map((phone) => ({ phone }))), addType: "1", name: "排队", cflName: "示例流程" })
      expect(task.code).toBe(0)
      // before the box polls: 16 wait on the channel (its most), the other 4 wait their turn, none ended
      await eventually(() => query<{ n: number }>(server, "SELECT count(*) AS n FROM box_messages WHERE taken_at IS NULL")[0]!.n === 16)
      // (the dialler tries them again only after LINE_FULL_BACKOFF_MS)
      await new Promise((r) => setTimeout(r, 100))
      expect(query(server, "SELECT status, count(*) AS n FROM call_task_numbers GROUP BY status")).toEqual([{ status: 0, n: 4 }, { status: 1, n: 16 }])
      // the box polls: the rest come once there is room
      const handed: Array<string> = []
      await eventually(async () => {
        const r = await getCallList(server)
        for (const d of r.body.data ?? []) handed.push(d.phone!)
        return handed.length >= phones.length
      }, 15_000)
      expect([...handed].sort()).toEqual(phones)
      await eventually(() => query<{ finished_ms: number | null }>(server, "SELECT finished_ms FROM call_tasks WHERE ctk_id = ?", task.id).find((t) => t.finished_ms !== null), 8_000)
      // each reported by nobody: ended unreported, none for a full line
      expect(query(server, "SELECT result_code, count(*) AS n FROM call_task_numbers GROUP BY result_code")).toEqual([{ result_code: "NOT_REPORTED_BY_BOX", n: 20 }])
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
    } finally {
      await server.close()
    }
  }, 30_000)

  it("a call handed out before a restart ends by the upload that reaches the next process", async () => {
    const hooks = await startReceiver()
    const dataDir = tempDir()
    const config = await Effect.runPromise(loadConfig({ env: {}, overrides: { port: 0, host: "127.0.0.1", dataDir, logLevel: "none", ...boxConfig(60_000, 60_000) } }))
    const first = await startServer(config)
    let id: unknown
    try {
      const cb = await asAdmin(first, "callbackPhone", { sourcePhone: "02367073578", descPhone: "13800138020", callbackUrl: b64(`${hooks.url}?cbkId={cbkId}`) })
      expect(cb.code).toBe(0)
      id = cb.id
      expect((await getCallList(first)).body.data).toHaveLength(1)
      await eventually(() => hooks.received.length >= 2)
    } finally {
      await first.close()
    }
    const second = await startServer(config)
    try {
      expect((await upload(second, { channel: 2, phone: "13800138020", callid: "9301", talk: 7 })).body.status).toBe(0)
      const end = await eventually(() => hooks.received.map((r) => fields(r.body)).find((p) => p.cbkEndTime !== undefined), 5_000)
      expect(end).toMatchObject({ cbkId: String(id), cbkStatus: "4", cbkTimes: "7" })
    } finally {
      await second.close()
      await hooks.close()
    }
  }, 20_000)

  it("a box given to another enterprise ends the former owner's call at once (BOX_REASSIGNED); its new owner's call ends nothing of theirs", async () => {
    const OTHER_MAC = "00:1A:2B:3C:4D:9E"
    const hooks = await startReceiver()
    // the agent's only line is on the box that changes hands
    const server = await startTestServer({ ...boxConfig(60_000, 60_000), devices: [] })
    try {
      await addEnterpriseAdmin(server, "200002800", "other-pw")
      expect((await adminApi(server, "POST", "/devices", { mac: OTHER_MAC, enterprise: "100008", channels: { "3": "100008800" } })).status).toBe(201)
      const onOther = (params: Record<string, string>) =>
        fetch(`${server.url}/voip/upload_record`, { method: "POST", body: new URLSearchParams({ satellite: OTHER_MAC, ...params }) }).then((r) => r.json() as Promise<{ status: number; data?: unknown[] }>)
      const cb = await asAdmin(server, "callbackPhone", { sourcePhone: "02367073578", descPhone: "13800138000", callbackUrl: b64(`${hooks.url}?cbkId={cbkId}`) })
      expect(cb.code).toBe(0)
      expect((await onOther({ cmd: "getCallList" })).data).toHaveLength(1)
      await eventually(() => query<{ status: number }>(server, "SELECT status FROM callbacks WHERE cbk_id = ?", cb.id)[0]?.status === 1 || undefined)
      // the box changes hands
      expect((await adminApi(server, "PATCH", `/devices/${OTHER_MAC}`, { enterprise: "200002", channels: { "3": "200002800" } })).status).toBe(200)
      const ended = await eventually(() => query<{ status: number; result_code: string; cdr_id: string | null }>(server, "SELECT status, result_code, cdr_id FROM callbacks WHERE cbk_id = ?", cb.id).find((r) => r.status === 3), 5_000)
      expect(ended).toEqual({ status: 3, result_code: "BOX_REASSIGNED", cdr_id: null })
      await eventually(() => (hooks.received.some((r) => fields(r.body).cbkStatus === "3") ? true : undefined), 5_000)
      expect(query(server, "SELECT msg_id FROM box_dial_calls")).toEqual([])
      // the new owner's agent calls the same customer on that channel
      const start = Math.floor(Date.now() / 1000)
      const up = await onOther({ cmd: "upload", channel: "3", direction: "out", callid_dialed: "13800138000", start_time_secs: String(start), start_time_hangup: String(start + 25),
        duration_secs: "20", recorded: "0", callid: "9301" })
      expect(up.status).toBe(0)
      expect(query<{ comp_number: string }>(server, "SELECT comp_number FROM cdrs WHERE platform_cdr_id = '9301'").map((r) => r.comp_number)).toEqual(["200002"])
      await new Promise((r) => setTimeout(r, 500))
      const [row] = query<{ cdr_id: string | null; times: number; status: number }>(server, "SELECT cdr_id, times, status FROM callbacks WHERE cbk_id = ?", cb.id)
      expect(row!.cdr_id).not.toBe("9301")
      expect(row).toMatchObject({ status: 3, times: 0 })
      expect(hooks.received.map((r) => fields(r.body).cbkStatus)).toEqual(["0", "1", "3"])
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
    } finally {
      await server.close()
      await hooks.close()
    }
  }, 20_000)

  it("a removed box ends the calls it was dialling (BOX_REASSIGNED)", async () => {
    const server = await startTestServer(boxConfig(60_000, 60_000))
    try {
      const cb = await asAdmin(server, "callbackPhone", { sourcePhone: "02367073578", descPhone: "13800138001" })
      expect(cb.code).toBe(0)
      expect((await getCallList(server)).body.data).toHaveLength(1)
      expect((await adminApi(server, "DELETE", `/devices/${MAC}`)).status).toBe(200)
      const ended = await eventually(() => query<{ status: number; result_code: string }>(server, "SELECT status, result_code FROM callbacks WHERE cbk_id = ?", cb.id).find((r) => r.status === 3), 5_000)
      expect(ended).toEqual({ status: 3, result_code: "BOX_REASSIGNED" })
      expect(query(server, "SELECT msg_id FROM box_dial_calls")).toEqual([])
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
    } finally {
      await server.close()
    }
  }, 20_000)

  it("an end that cannot be stored is kept and delivered in a later round, once", async () => {
    const hooks = await startReceiver()
    const server = await startTestServer(boxConfig(60_000, 60_000))
    const db = new Database(path.join(server.dataDir, "bridge.db"))
    try {
      const cb = await asAdmin(server, "callbackPhone", { sourcePhone: "02367073578", descPhone: "13800138005", callbackUrl: b64(`${hooks.url}?cbkId={cbkId}`) })
      expect(cb.code).toBe(0)
      expect((await getCallList(server)).body.data).toHaveLength(1)
      await eventually(() => query<{ status: number }>(server, "SELECT status FROM callbacks WHERE cbk_id = ?", cb.id)[0]?.status === 1 || undefined)
      // the callback's row cannot take its end (as a full disk would refuse it)
      db.exec(`CREATE TRIGGER refuse_end BEFORE UPDATE ON callbacks WHEN NEW.end_ms IS NOT NULL BEGIN SELECT RAISE(ABORT, 'disk on fire'); END`)
      expect((await upload(server, { channel: 2, phone: "13800138005", callid: "9401", talk: 12 })).body.status).toBe(0)
      // the upload woke the deliverer; a retry round (1 s) has passed as well
      await new Promise((r) => setTimeout(r, 1_500))
      expect(query<{ status: number }>(server, "SELECT status FROM callbacks WHERE cbk_id = ?", cb.id)).toEqual([{ status: 1 }])
      expect(query<{ callid: string; ended: string | null }>(server, "SELECT callid, ended FROM box_dial_calls").map((r) => [r.callid, r.ended !== null])).toEqual([["9401", true]])
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
      db.exec("DROP TRIGGER refuse_end")
      const ended = await eventually(() => query<{ status: number; times: number; cdr_id: string }>(server, "SELECT status, times, cdr_id FROM callbacks WHERE cbk_id = ?", cb.id).find((r) => r.status === 4), 5_000)
      expect(ended).toEqual({ status: 4, times: 12, cdr_id: "9401" })
      await eventually(() => (query(server, "SELECT msg_id FROM box_dial_calls").length === 0 ? true : undefined), 5_000)
      await eventually(() => (hooks.received.some((r) => fields(r.body).cbkStatus === "4") ? true : undefined), 5_000)
      await new Promise((r) => setTimeout(r, 300))
      expect(hooks.received.map((r) => fields(r.body).cbkStatus)).toEqual(["0", "1", "4"])
    } finally {
      db.close()
      await server.close()
      await hooks.close()
    }
  }, 20_000)

  it("dials handed out in one poll are dialled one after another: each one's report window runs from the report of the one before it", async () => {
    const hooks = await startReceiver()
    const server = await startTestServer(boxConfig(60_000, 3_000))
    try {
      const first = await asAdmin(server, "callbackPhone", { sourcePhone: "02367073578", descPhone: "13800138020", callbackUrl: b64(`${hooks.url}?cbkId={cbkId}`) })
      const second = await asAdmin(server, "callbackPhone", { sourcePhone: "02367073578", descPhone: "13800138021", callbackUrl: b64(`${hooks.url}?cbkId={cbkId}`) })
      expect([first.code, second.code]).toEqual([0, 0])
      const handedAt = Date.now()
      expect((await getCallList(server)).body.data).toHaveLength(2)
      // the line talks to the first customer for 2 s, then dials the second
      await new Promise((r) => setTimeout(r, 2_000))
      expect((await upload(server, { channel: 2, phone: "13800138020", callid: "9501", talk: 2, startMs: handedAt })).body.status).toBe(0)
      // past the window counted from the hand-out, within the one counted from the first call's report
      await new Promise((r) => setTimeout(r, Math.max(0, handedAt + 3_500 - Date.now())))
      const secondStart = Date.now() - 1_000
      expect((await upload(server, { channel: 2, phone: "13800138021", callid: "9502", talk: 1, startMs: secondStart })).body.status).toBe(0)
      const ends = await eventually(() => {
        const rows = query<{ cbk_id: number; status: number; result_code: string; cdr_id: string | null }>(server, "SELECT cbk_id, status, result_code, cdr_id FROM callbacks ORDER BY cbk_id")
        return rows.every((r) => r.status >= 3) ? rows : undefined
      }, 5_000)
      expect(ends.map((r) => [r.cbk_id, r.status, r.result_code, r.cdr_id])).toEqual([
        [first.id, 4, "NORMAL_CLEARING", "9501"],
        [second.id, 4, "NORMAL_CLEARING", "9502"]
      ])
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
    } finally {
      await server.close()
      await hooks.close()
    }
  }, 20_000)
})
