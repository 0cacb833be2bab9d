/**
 * Outbound call tasks (issue 13 item 6): addTask, the automatic dialler on the simulator,
 * findTaskMx's data / count / groupData, getTaskDetailPhone handing each number out once under
 * concurrent agents, findCallFlow by task, refused input storing nothing, enterprise isolation,
 * a restart going on where the dialler stopped. Real server, real HTTP, real SQLite.
 */
import * as path from "node:path"
import Database from "better-sqlite3"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { loadConfig } from "../src/config/AppConfig.js"
import { type RunningServer, startServer } from "../src/http/Server.js"
import { MAX_CALLS } from "../src/tasks/Tasks.js"
import { addEnterpriseAdmin } from "./support/Enterprises.js"
import { eventually } from "./support/Receiver.js"
import { asAdmin, callApi, creds, startTestServer, tempDir, type TestServer } from "./support/TestServer.js"

const alive = async (s: TestServer) => expect((await fetch(`${s.url}/healthz`)).status).toBe(200)
const query = <T>(s: TestServer, text: string, ...args: ReadonlyArray<unknown>) => {
  const db = new Database(path.join(s.dataDir, "bridge.db"), { readonly: true })
  try {
    return db.prepare(text).all(...args) as Array<T>
  } finally {
    db.close()
  }
}
const count = (s: TestServer, table: string) => query<{ n: number }>(s, `SELECT count(*) AS n FROM ${table}`)[0]!.n
/** `n` numbers as JSON (strict: relaxed JSON is parsed only in small amounts), 138 + 8 digits from `from` */
const numbers = (n: number, from = 0) => JSON.stringify(Array.from({ length: n }, (_, i) => ({ phone: `138${String(from + i).padStart(8, "0")}` })))
const EXAMPLE_FLOW = "示例流程"

// a fast simulator: rings of 1 s and talks of 2 s (simulated) played 100,000 times faster
const fast = {
  driver: "simulator",
  simulator: { speed: 100_000, outcomes: { answered: 0.6, noAnswer: 0.25, busy: 0.15 }, ringMs: { min: 1000, max: 1000 }, talkMs: { min: 2000, max: 2000 } }
}

type Group = { ctkId: number; ctdStatus: number; num: number }
type Mx = { code: number; count: number; data: Array<Record<string, unknown>>; groupData: Array<Group> }

describe("outbound tasks", () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startTestServer({ telephony: fast })
  })
  afterAll(async () => {
    await server.close()
  })

  it("refuses bad input (-14 naming the parameter, -12 over the maximum) and stores nothing", async () => {
    const before = { tasks: count(server, "call_tasks"), numbers: count(server, "call_task_numbers"), events: count(server, "events") }
    const cases: Array<[Record<string, string>, number, RegExp]> = [
      [{ data: numbers(2), addType: "1", name: "无流程" }, -14, /cflName/],
      [{ data: numbers(2), addType: "3", name: "无流程", wotName: "售后工单" }, -14, /cflName/],
      [{ data: numbers(2), addType: "1", name: "未知流程", cflName: "没有这个流程" }, -14, /cflName/],
      [{ data: numbers(2), addType: "4", name: "无工单" }, -14, /wotName/],
      [{ data: numbers(2), addType: "2", name: "外人", allotExte: "999999800" }, -14, /allotExte/],
      [{ data: numbers(2), addType: "2", name: "外人", attriExte: "999999800" }, -14, /attriExte/],
      [{ data: "[]", addType: "2", name: "空" }, -14, /data/],
      [{ data: "[{phone:'abc'}]", addType: "2", name: "坏号码" }, -14, /data/],
      [{ data: numbers(1), addType: "5", name: "坏类型" }, -14, /addType/],
      [{ data: numbers(10_001), addType: "2", name: "太多" }, -12, /10000/]
    ]
    for (const [params, code, message] of cases) {
      const answer = await asAdmin(server, "addTask", params, "form")
      expect(answer, JSON.stringify(params).slice(0, 200)).toMatchObject({ code })
      expect(answer.message).toMatch(message)
    }
    expect({ tasks: count(server, "call_tasks"), numbers: count(server, "call_task_numbers"), events: count(server, "events") }).toEqual(before)
    await alive(server)
  })

  it("a manual task of 10,000 numbers: stored whole; 16 agents at once are each handed different numbers, every number once", async () => {
    const agents = Array.from({ length: 16 }, (_, i) => String(401 + i))
    for (const exteExtension of agents) expect((await asAdmin(server, "addExtension", { exteExtension, extePassword: `agent-${exteExtension}` })).code).toBe(0)
    const extensions = agents.map((a) => `100008${a}`)
    const added = await asAdmin(server, "addTask", { data: numbers(10_000), addType: "2", name: "手工任务", allotExte: extensions.join(",") }, "form")
    expect(added).toMatchObject({ code: 0 })
    const id = added.id as number
    expect(query<{ n: number }>(server, `SELECT count(*) AS n FROM call_task_numbers WHERE ctk_id = ?`, id)[0]!.n).toBe(10_000)
    expect(query<{ type: string }>(server, `SELECT type FROM events WHERE type LIKE 'task.%'`).map((e) => e.type)).toEqual(["task.added"])

    // each agent asks again as soon as it is answered, until nothing is left
    const handed = await Promise.all(
      agents.map(async (a) => {
        const mine: Array<{ phone: string; ctdId: number; cflId: unknown }> = []
        for (;;) {
          const answer = await callApi(server, { ...creds(`100008${a}`, `agent-${a}`), method: "getTaskDetailPhone" })
          if (answer.code === -11) return mine
          expect(answer).toMatchObject({ code: 0, success: true })
          mine.push({ phone: answer.phone as string, ctdId: answer.ctdId as number, cflId: answer.cflId })
        }
      })
    )
    const all = handed.flat()
    expect(all).toHaveLength(10_000)
    expect(new Set(all.map((h) => h.ctdId)).size).toBe(10_000)
    expect(new Set(all.map((h) => h.phone))).toEqual(new Set(query<{ phone: string }>(server, `SELECT phone FROM call_task_numbers WHERE ctk_id = ?`, id).map((r) => r.phone)))
    // all of them took part: the numbers were shared out, not served to one
    expect(handed.filter((mine) => mine.length > 0).length).toBeGreaterThan(1)
    expect(all[0]!.cflId).toBeNull()
    // who got which number is stored
    const claimed = query<{ claimed_by: string; n: number }>(server, `SELECT claimed_by, count(*) AS n FROM call_task_numbers WHERE ctk_id = ? GROUP BY claimed_by`, id)
    expect(Object.fromEntries(claimed.map((c) => [c.claimed_by, c.n]))).toEqual(Object.fromEntries(agents.map((a, i) => [`100008${a}`, handed[i]!.length]).filter(([, n]) => n !== 0)))

    // every number handed out: the task is finished, once
    const mx = (await asAdmin(server, "findTaskMx", { ctkId: String(id), limit: "5" })) as unknown as Mx
    expect(mx).toMatchObject({ code: 0, count: 10_000, groupData: [{ ctkId: id, ctdStatus: 1, num: 10_000 }] })
    expect(mx.data).toHaveLength(5)
    expect(query<{ type: string }>(server, `SELECT type FROM events WHERE type = 'task.finished'`)).toHaveLength(1)
    // an agent not allotted gets nothing, nor does one when nothing is left
    expect((await asAdmin(server, "getTaskDetailPhone")).code).toBe(-11)
    await alive(server)
  }, 120_000)

  it("an automatic task runs on the simulator to completion: each number's outcome recorded, groupData counts match, task.finished says them", async () => {
    const n = 400
    const added = await asAdmin(
      server,
      "addTask",
      { data: numbers(n, 50_000_000), addType: "1", name: "自动任务", cflName: EXAMPLE_FLOW, repeatSend: "0", sendInterval: "0" },
      "form"
    )
    expect(added).toMatchObject({ code: 0 })
    const id = added.id as number
    const finished = await eventually(
      () => query<{ data: string }>(server, `SELECT data FROM events WHERE type = 'task.finished' AND data LIKE ?`, `%"id":${id}%`)[0],
      60_000,
      () => query(server, `SELECT status, count(*) AS n FROM call_task_numbers WHERE ctk_id = ? GROUP BY status`, id)
    )
    const mx = (await asAdmin(server, "findTaskMx", { ctkId: String(id), limit: "1000" })) as unknown as Mx
    expect(mx).toMatchObject({ code: 0, count: n })
    // each number ended: not answered (3), answered (4: the agent did not answer the transfer) or transferred to the agent (5), as the example flow transfers
    const truth = query<{ status: number; num: number }>(server, `SELECT status, count(*) AS num FROM call_task_numbers WHERE ctk_id = ? GROUP BY status ORDER BY status`, id)
    expect(mx.groupData).toEqual(truth.map((t) => ({ ctkId: id, ctdStatus: t.status, num: t.num })))
    expect(truth.map((t) => t.status).every((s) => s >= 3)).toBe(true)
    expect(truth.reduce((sum, t) => sum + t.num, 0)).toBe(n)
    // the table and the rows findTaskMx answers agree with each other, number by number
    expect(mx.data.filter((d) => d.ctdStatus === 5).length).toBe(truth.find((t) => t.status === 5)?.num ?? 0)
    const event = JSON.parse(finished.data) as { groupData: Array<{ ctdStatus: number; num: number }>; total: number }
    expect(event).toMatchObject({ total: n, groupData: truth.map((t) => ({ ctdStatus: t.status, num: t.num })) })
    // a call record per number dialled, its cause the number's
    const answered = mx.data.find((d) => d.ctdStatus === 5)!
    expect(answered).toMatchObject({ ctd_ctkId: String(id), ctkName: "自动任务", ctdResultCode: 200, cnrReasonType: "NORMAL_CLEARING", ctdExtension: "100008800", ctdReNum: 0, ctdWheelSum: 1 })
    for (const f of ["ctdCallTime", "ctdBeginTime", "ctdSuccessTime", "ctdEndTime", "ctdTransferSuccessTime"]) expect(answered[f]).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/)
    const missed = mx.data.find((d) => d.ctdStatus === 3)!
    expect([480, 486]).toContain(missed.ctdResultCode)
    const cdrs = query<{ n: number }>(server, `SELECT count(*) AS n FROM cdrs WHERE phone >= '13850000000' AND phone < '13860000000' AND hangup_ms IS NOT NULL`)[0]!.n
    expect(cdrs).toBe(n)
    // its flow, by the task's id and by a number's, names the task
    for (const by of [String(id), answered.ctdId as string]) {
      const flows = (await asAdmin(server, "findCallFlow", { ctdId: by })) as unknown as { code: number; callflow: Array<{ cflName: string; ctkName: string }> }
      expect(flows).toMatchObject({ code: 0, callflow: [{ cflName: EXAMPLE_FLOW, ctkName: "自动任务" }] })
    }
    // paging and `type`: not started (none left) and done (all)
    expect(((await asAdmin(server, "findTaskMx", { ctkId: String(id), type: "1" })) as unknown as Mx).count).toBe(0)
    expect(((await asAdmin(server, "findTaskMx", { ctkId: String(id), type: "2", start: "390", limit: "25" })) as unknown as Mx).data).toHaveLength(10)
    expect((await asAdmin(server, "findTaskMx", { limit: "100000" })).code).toBe(-12)
    await alive(server)
  }, 90_000)

  it("is the enterprise's own: another enterprise sees none of its tasks, gets none of its numbers, cannot allot to its agents", async () => {
    await addEnterpriseAdmin(server, "200002800", "other-pw")
    const other = creds("200002800", "other-pw")
    const mine = await asAdmin(server, "addTask", { data: numbers(3, 70_000_000), addType: "2", name: "本企业任务" }, "form")
    expect(mine.code).toBe(0)
    expect(await callApi(server, { ...other, method: "findTaskMx", ctkId: String(mine.id) })).toMatchObject({ code: 0, count: 0, data: [], groupData: [] })
    expect((await callApi(server, { ...other, method: "findTaskMx" })).count).toBe(0)
    expect((await callApi(server, { ...other, method: "getTaskDetailPhone" })).code).toBe(-11)
    expect((await callApi(server, { ...other, method: "findCallFlow", ctdId: String(mine.id) })).code).toBe(-11)
    expect((await callApi(server, { ...other, method: "addTask", data: numbers(1), addType: "2", name: "越界", allotExte: "100008800" }, "form")).code).toBe(-14)
    // its own manual task is handed to its own admin only
    const theirs = await callApi(server, { ...other, method: "addTask", data: "[{phone:13900000001,key:'k',memo:'你好',woOther1:'甲'}]", addType: "2", name: "他企业任务" }, "form")
    expect(theirs.code).toBe(0)
    expect(await callApi(server, { ...other, method: "getTaskDetailPhone" })).toMatchObject({ code: 0, phone: "13900000001" })
    const detail = (await callApi(server, { ...other, method: "findTaskMx", ctkId: String(theirs.id) })) as unknown as Mx
    expect(detail.data[0]).toMatchObject({ ctdPhone: "13900000001", ctdKey: "k", ctdText: "你好", ctdStatus: 1, ctdExtension: "200002800" })
    expect(query<{ wo_other: string }>(server, `SELECT wo_other FROM call_task_numbers WHERE ctk_id = ?`, theirs.id)[0]!.wo_other).toBe(JSON.stringify({ woOther1: "甲" }))
  })
})

describe("a restart", () => {
  it("goes on dialling where the dialler stopped: calls cut short end INTERRUPTED, the rest are dialled, none twice", async () => {
    const dataDir = tempDir()
    const configWith = (simulator: Record<string, unknown>) =>
      Effect.runPromise(loadConfig({ env: {}, overrides: { port: 0, host: "127.0.0.1", dataDir, logLevel: "error", telephony: { driver: "simulator", simulator } } }))
    const on = (s: RunningServer) => ({ ...s, dataDir }) as unknown as TestServer
    // the first bridge's calls ring for an hour: stopped while they ring
    const first = await startServer(await configWith({ outcomes: { answered: 1 }, ringMs: { min: 3_600_000, max: 3_600_000 } }))
    let id = 0
    try {
      const added = await asAdmin(first, "addTask", { data: numbers(100, 80_000_000), addType: "1", name: "重启任务", cflName: EXAMPLE_FLOW }, "form")
      expect(added.code).toBe(0)
      id = added.id as number
      await eventually(() => (query<{ n: number }>(on(first), `SELECT count(*) AS n FROM call_task_numbers WHERE ctk_id = ? AND begin_ms IS NOT NULL`, id)[0]!.n === MAX_CALLS ? true : undefined))
    } finally {
      await first.close()
    }
    const second = await startServer(await configWith(fast.simulator))
    try {
      const s = on(second)
      await eventually(() => query(s, `SELECT 1 FROM events WHERE type = 'task.finished'`)[0], 30_000)
      const rows = query<{ phone: string; status: number; result_code: string }>(s, `SELECT phone, status, result_code FROM call_task_numbers WHERE ctk_id = ?`, id)
      expect(rows.filter((r) => r.result_code === "INTERRUPTED")).toHaveLength(MAX_CALLS)
      expect(rows.filter((r) => r.result_code === "INTERRUPTED").every((r) => r.status === 3)).toBe(true)
      expect(rows.every((r) => r.status >= 3)).toBe(true)
      // one call record per number, each hung up (the cut ones by the restart's INTERRUPTED hang-up)
      const cdrs = query<{ phone: string; n: number; open: number }>(s, `SELECT phone, count(*) AS n, sum(hangup_ms IS NULL) AS open FROM cdrs GROUP BY phone`)
      expect(cdrs).toHaveLength(100)
      expect(cdrs.every((c) => c.n === 1 && c.open === 0)).toBe(true)
    } finally {
      await second.close()
    }
  }, 60_000)
})
