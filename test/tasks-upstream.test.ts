/**
 * Outbound tasks under the upstream driver (issue 13, upstream addTask): addTask relayed whole and
 * kept with the platform's id (never dialled here); findTaskMx and getTaskDetailPhone relayed and
 * answered as the platform says, our task ids standing for the platform's; a platform that cannot
 * be reached is -1 with nothing stored, an answer not in the documented shape -3. A fake
 * platform over real HTTP, a real server and its SQLite file.
 */
import * as http from "node:http"
import * as path from "node:path"
import Database from "better-sqlite3"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { asAdmin, startTestServer, type TestServer } from "./support/TestServer.js"

const creds = { sa_user: "100088601", sa_password: "0DCBDF0AA187EA7498D8AB64604096FC" }
const query = <A>(s: TestServer, sql: string, ...params: ReadonlyArray<unknown>): Array<A> => {
  const db = new Database(path.join(s.dataDir, "bridge.db"), { readonly: true })
  try {
    return db.prepare(sql).all(...params) as Array<A>
  } finally {
    db.close()
  }
}
const PLATFORM_TASK = 900001

/** One number as the platform answers findTaskMx: every documented field. */
const detail = (over: Record<string, unknown>) => ({
  ctdId: "5501", ctd_ctkId: String(PLATFORM_TASK), ctkName: "平台任务", ctdPhone: "13800000001", ctdPhoneName: "", ctdStatus: 4, ctdKey: "", ctdText: "", ctdType: "",
  ctdExtension: "", exteName: "", ctdCallTime: "2026-11-27 10:00:00", ctdBeginTime: "2026-11-27 10:00:00", ctdSuccessTime: "2026-11-27 10:00:05", ctdEndTime: "2026-11-27 10:00:35",
  ctdTimes: "30", ctdCallTalktimes: "35", ctdTransferPhone: "", ctdTransferSuccessTime: "", ctdTransferEndTime: "", ctdTransferTimes: "", ctdSmsSendStatus: 0, ctdResultCode: 200,
  ctdResultValue: 0, ctdResultJson: "", ctd_ResultText: "", ctd_word: "", ctd_all_word: "", ctd_wordSum: 0, ctd_timeArea: "", ctdWavFile: "", ctdWavPaths: "", ctdSipRound: "",
  ctdReNum: 0, ctdWheelSum: 1, cnrReasonType: "NORMAL_CLEARING", ...over
})

const fakePlatform = () =>
  new Promise<{ url: string; calls: Array<URLSearchParams>; malformed: { on: boolean }; close: () => Promise<void> }>((resolve) => {
    const calls: Array<URLSearchParams> = []
    const malformed = { on: false }
    const server = http.createServer((req, res) => {
      let body = ""
      req.on("data", (c: Buffer) => (body += c.toString("utf8")))
      req.on("end", () => {
        const p = new URLSearchParams(body)
        calls.push(p)
        const answers: Record<string, unknown> = {
          addTask: { code: 0, message: "OK", id: PLATFORM_TASK },
          findTaskMx: malformed.on
            ? { code: 0, message: "OK", data: "nothing", count: "many" }
            : { code: 0, message: "OK", data: [detail({}), detail({ ctdId: "7701", ctd_ctkId: "123", ctdStatus: 3 })], count: 2, groupData: [{ ctkId: PLATFORM_TASK, ctdStatus: 4, num: 1 }, { ctkId: 123, ctdStatus: 3, num: 1 }] },
          getTaskDetailPhone: { code: 0, message: "OK", success: true, phone: "13800000009", cflId: 7, ctdId: 5509 }
        }
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(answers[p.get("method") ?? ""] ?? { code: -3, message: "unknown" }))
      })
    })
    server.listen(0, "127.0.0.1", () =>
      resolve({
        url: `http://127.0.0.1:${(server.address() as { port: number }).port}/voip/api/jsondata.html`,
        calls,
        malformed,
        close: () => new Promise((done) => { server.closeAllConnections(); server.close(() => done()) })
      })
    )
  })

describe("outbound tasks on the upstream driver", () => {
  let platform: Awaited<ReturnType<typeof fakePlatform>>
  let server: TestServer
  let down: TestServer

  beforeAll(async () => {
    platform = await fakePlatform()
    server = await startTestServer({ telephony: { driver: "upstream", upstream: { url: platform.url, ...creds, timeoutMs: 2000 } } })
    down = await startTestServer({ telephony: { driver: "upstream", upstream: { url: "http://127.0.0.1:9/voip/api/jsondata.html", ...creds, timeoutMs: 1000 } } })
  })
  afterAll(async () => {
    await server.close()
    await down.close()
    await platform.close()
  })

  it("addTask is relayed whole and kept with the platform's id; the bridge never dials it", async () => {
    const data = [{ phone: "13800000001", key: "a" }, { phone: "13800000002", memo: "m" }]
    // the flow is the platform's: no local flow of that name is needed
    const answer = await asAdmin(server, "addTask", { data: JSON.stringify(data), addType: "1", name: "平台任务", cflName: "平台的流程", sendInterval: "5", allotExte: "100008800" }, "form")
    expect(answer.code).toBe(0)
    const sent = Object.fromEntries(platform.calls.at(-1)!)
    expect(sent).toMatchObject({ method: "addTask", ...creds, addType: "1", name: "平台任务", cflName: "平台的流程", sendInterval: "5", allotExte: "100008800" })
    expect(JSON.parse(sent.data!)).toEqual(data)
    expect(query(server, "SELECT upstream_id, driver, cfl_name, total FROM call_tasks WHERE ctk_id = ?", answer.id)).toEqual([
      { upstream_id: String(PLATFORM_TASK), driver: "upstream", cfl_name: "平台的流程", total: 2 }
    ])
    await new Promise((r) => setTimeout(r, 1_500))
    // no dial of ours: still untouched, nothing asked of the platform since
    expect(query(server, "SELECT status FROM call_task_numbers ORDER BY seq")).toEqual([{ status: 0 }, { status: 0 }])
    expect(platform.calls.at(-1)!.get("method")).toBe("addTask")

    const mx = await asAdmin(server, "findTaskMx", { ctkId: String(answer.id) })
    expect(mx.code).toBe(0)
    expect(Object.fromEntries(platform.calls.at(-1)!)).toMatchObject({ method: "findTaskMx", ctkId: String(PLATFORM_TASK) })
    const rows = mx.data as Array<Record<string, unknown>>
    // our id for the task we relayed; a task of the platform's own keeps its id
    expect(rows.map((r) => r.ctd_ctkId)).toEqual([String(answer.id), "123"])
    expect(rows[0]).toMatchObject({ ctdId: "5501", ctdStatus: 4, ctdTimes: "30" })
    expect(mx.groupData).toEqual([{ ctkId: answer.id, ctdStatus: 4, num: 1 }, { ctkId: 123, ctdStatus: 3, num: 1 }])
    expect(mx.count).toBe(2)

    expect(await asAdmin(server, "getTaskDetailPhone", {})).toMatchObject({ code: 0, success: true, phone: "13800000009", cflId: 7, ctdId: 5509 })
    expect(platform.calls.at(-1)!.get("method")).toBe("getTaskDetailPhone")
  })

  it("an answer not in the documented shape is -3; a platform that cannot be reached is -1, nothing stored, the bridge still serves", async () => {
    platform.malformed.on = true
    try {
      const bad = await asAdmin(server, "findTaskMx", {})
      expect(bad.code).toBe(-3)
      expect(bad.message).toMatch(/findTaskMx answer/)
    } finally {
      platform.malformed.on = false
    }
    expect(await asAdmin(down, "addTask", { data: JSON.stringify([{ phone: "13800000001" }]), addType: "2", name: "断网" }, "form")).toMatchObject({ code: -1 })
    expect(query(down, "SELECT count(*) AS n FROM call_tasks")).toEqual([{ n: 0 }])
    expect(query(down, "SELECT count(*) AS n FROM events WHERE type = 'task.added'")).toEqual([{ n: 0 }])
    expect(await asAdmin(down, "findTaskMx", {})).toMatchObject({ code: -1 })
    expect(await asAdmin(down, "getTaskDetailPhone", {})).toMatchObject({ code: -1 })
    expect((await fetch(`${down.url}/healthz`)).status).toBe(200)
    // refused before the platform is asked: the same -14 as on any driver
    const before = platform.calls.length
    expect(await asAdmin(server, "addTask", { data: JSON.stringify([{ phone: "13800000001" }]), addType: "1", name: "无流程" }, "form")).toMatchObject({ code: -14 })
    expect(platform.calls.length).toBe(before)
  })
})
