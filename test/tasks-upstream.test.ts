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
import { addEnterpriseAdmin } from "./support/Enterprises.js"
import { asAdmin, callApi, creds as enterpriseCreds, startTestServer, type TestServer } from "./support/TestServer.js"

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
    let nextTask = PLATFORM_TASK
    const server = http.createServer((req, res) => {
      let body = ""
      req.on("data", (c: Buffer) => (body += c.toString("utf8")))
      req.on("end", () => {
        const p = new URLSearchParams(body)
        calls.push(p)
        const answers: Record<string, unknown> = {
          addTask: { code: 0, message: "OK", id: p.get("method") === "addTask" ? nextTask++ : 0 },
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
    // our id for the task we relayed; a task this enterprise did not relay (the platform's account is every enterprise's) is left out
    expect(rows.map((r) => r.ctd_ctkId)).toEqual([String(answer.id)])
    expect(rows[0]).toMatchObject({ ctdId: "5501", ctdStatus: 4, ctdTimes: "30" })
    expect(mx.groupData).toEqual([{ ctkId: answer.id, ctdStatus: 4, num: 1 }])
    expect(mx.count).toBe(1)

    // handed out: only a manual task of ours is asked for, and the number is one of its
    const manual = await asAdmin(server, "addTask", { data: JSON.stringify([{ phone: "13800000009" }]), addType: "2", name: "手动" }, "form")
    expect(manual.code).toBe(0)
    expect(await asAdmin(server, "getTaskDetailPhone", {})).toMatchObject({ code: 0, success: true, phone: "13800000009", cflId: 7, ctdId: 5509 })
    expect(Object.fromEntries(platform.calls.at(-1)!)).toMatchObject({ method: "getTaskDetailPhone", ctkId: String(PLATFORM_TASK + 1) })
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
    // no manual task relayed: nothing of ours to hand out, the platform is not asked
    expect(await asAdmin(down, "getTaskDetailPhone", {})).toMatchObject({ code: -11 })
    expect((await fetch(`${down.url}/healthz`)).status).toBe(200)
    // refused before the platform is asked: the same -14 as on any driver
    const before = platform.calls.length
    expect(await asAdmin(server, "addTask", { data: JSON.stringify([{ phone: "13800000001" }]), addType: "1", name: "无流程" }, "form")).toMatchObject({ code: -14 })
    expect(platform.calls.length).toBe(before)
  })
})

/**
 * A fake platform for one account (the bridge's configured sa_user, i.e. every enterprise): it keeps the tasks relayed
 * to it; findTaskMx answers the task asked for, or every task of the account; getTaskDetailPhone
 * hands out the account's next manual number. callbackPhone answers a new id.
 */
const accountPlatform = () =>
  new Promise<{ url: string; calls: Array<URLSearchParams>; close: () => Promise<void> }>((resolve) => {
    const calls: Array<URLSearchParams> = []
    let next = 800_000_001
    const tasks: Array<{ id: number; name: string; addType: string; numbers: Array<{ ctdId: number; phone: string; handed: boolean }> }> = []
    const detail = (t: (typeof tasks)[number], n: (typeof tasks)[number]["numbers"][number]) => ({
      ctdId: String(n.ctdId), ctd_ctkId: String(t.id), ctkName: t.name, ctdPhone: n.phone, ctdPhoneName: "", ctdStatus: 0, ctdKey: "", ctdText: "", ctdType: "",
      ctdExtension: "", exteName: "", ctdCallTime: "", ctdBeginTime: "", ctdSuccessTime: "", ctdEndTime: "",
      ctdTimes: "", ctdCallTalktimes: "", ctdTransferPhone: "", ctdTransferSuccessTime: "", ctdTransferEndTime: "", ctdTransferTimes: "", ctdSmsSendStatus: 0, ctdResultCode: 0,
      ctdResultValue: 0, ctdResultJson: "", ctd_ResultText: "", ctd_word: "", ctd_all_word: "", ctd_wordSum: 0, ctd_timeArea: "", ctdWavFile: "", ctdWavPaths: "", ctdSipRound: "",
      ctdReNum: 0, ctdWheelSum: 0, cnrReasonType: ""
    })
    const server = http.createServer((req, res) => {
      let body = ""
      req.on("data", (c: Buffer) => (body += c.toString("utf8")))
      req.on("end", () => {
        const p = new URLSearchParams(body)
        calls.push(p)
        const method = p.get("method")
        let answer: unknown = { code: -3, message: "unknown" }
        if (method === "callbackPhone") answer = { code: 0, message: "OK", id: next++ }
        if (method === "addTask") {
          const id = next++
          const data = JSON.parse(p.get("data") ?? "[]") as Array<{ phone: string }>
          tasks.push({ id, name: p.get("name") ?? "", addType: p.get("addType") ?? "", numbers: data.map((d) => ({ ctdId: next++, phone: d.phone, handed: false })) })
          answer = { code: 0, message: "OK", id }
        }
        if (method === "findTaskMx") {
          const asked = p.get("ctkId")
          const matched = tasks.filter((t) => asked === null || String(t.id) === asked)
          const data = matched.flatMap((t) => t.numbers.map((n) => detail(t, n)))
          answer = { code: 0, message: "OK", data, count: data.length, groupData: matched.map((t) => ({ ctkId: t.id, ctdStatus: 0, num: t.numbers.length })) }
        }
        if (method === "getTaskDetailPhone") {
          const manual = tasks.filter((t) => t.addType === "2").flatMap((t) => t.numbers).find((n) => !n.handed)
          if (manual) {
            manual.handed = true
            answer = { code: 0, message: "OK", success: true, phone: manual.phone, cflId: 0, ctdId: manual.ctdId }
          } else answer = { code: -11, message: "nothing waiting" }
        }
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(answer))
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

describe("upstream tasks: the one platform account is every enterprise's", () => {
  let platform: Awaited<ReturnType<typeof accountPlatform>>
  let server: TestServer

  beforeAll(async () => {
    platform = await accountPlatform()
    server = await startTestServer({ telephony: { driver: "upstream", upstream: { url: platform.url, ...creds, timeoutMs: 2000 } } })
    await addEnterpriseAdmin(server, "200002800", "other-pw")
  })
  afterAll(async () => {
    await server.close()
    await platform.close()
  })

  it("another enterprise neither sees a relayed task's numbers nor is handed them", async () => {
    const mine = await asAdmin(server, "addTask", { data: JSON.stringify([{ phone: "13800000077" }]), addType: "2", name: "本企业任务" }, "form")
    expect(mine.code).toBe(0)
    const other = enterpriseCreds("200002800", "other-pw")
    const theirs = await callApi(server, { ...other, method: "findTaskMx" })
    expect(theirs.code).toBe(0)
    expect(JSON.stringify(theirs)).not.toContain("13800000077")
    expect(theirs).toMatchObject({ data: [], count: 0, groupData: [] })
    const byId = await callApi(server, { ...other, method: "findTaskMx", ctkId: String(mine.id) })
    expect(JSON.stringify(byId)).not.toContain("13800000077")
    expect(byId.code).toBe(-11)
    const asked = platform.calls.length
    const handed = await callApi(server, { ...other, method: "getTaskDetailPhone" })
    expect(handed.phone).not.toBe("13800000077")
    // no manual task of theirs: the platform is not asked, so nothing of ours is used up
    expect(handed.code).toBe(-11)
    expect(platform.calls.length).toBe(asked)
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
  })

  it("a number the platform hands out of a task the caller did not relay is refused (-3), none of it passed on", async () => {
    const other = enterpriseCreds("200002800", "other-pw")
    const theirs = await callApi(server, { ...other, method: "addTask", data: JSON.stringify([{ phone: "13800000088" }]), addType: "2", name: "他们的任务" }, "form")
    expect(theirs.code).toBe(0)
    const [row] = query<{ upstream_id: string }>(server, "SELECT upstream_id FROM call_tasks WHERE ctk_id = ?", theirs.id)
    // the platform is asked for their task only, but (this fake ignores it) hands out the account's first waiting number: ours
    const handed = await callApi(server, { ...other, method: "getTaskDetailPhone" })
    expect(Object.fromEntries(platform.calls.at(-1)!)).toMatchObject({ method: "getTaskDetailPhone", ctkId: row!.upstream_id })
    expect(handed.code).toBe(-3)
    expect(JSON.stringify(handed)).not.toContain("13800000077")
    // their own findTaskMx lists their task only
    const list = await callApi(server, { ...other, method: "findTaskMx" })
    expect((list.data as Array<{ ctdPhone: string; ctd_ctkId: string }>).map((r) => [r.ctdPhone, r.ctd_ctkId])).toEqual([["13800000088", String(theirs.id)]])
    expect(list.count).toBe(1)
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
  })
})
