/**
 * Work orders (§2.12.1–2.12.9) over real HTTP: every endpoint on both of the contract's paths,
 * sessionId and sa_user/sa_password, each refusal's code; a work order walked through every step
 * of the seeded 售后工单 with its events; the customer it links or creates; GetWorkList's
 * filters with injection and wildcards as plain values; attachments (Chinese, hostile and
 * over-size names and files); enterprise and step isolation; and the §2.12.9 push at a type's URL.
 */
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import Database from "better-sqlite3"
import { Effect, Schema } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { WorkOrderPush } from "../schemas/push.js"
import { Passwords } from "../src/auth/Passwords.js"
import { ExtensionsRepo } from "../src/extensions/ExtensionsRepo.js"
import { TypeDefinition } from "../src/workorders/Definition.js"
import { WorkOrdersStore } from "../src/workorders/WorkOrdersStore.js"
import { SqlClient } from "@effect/sql"
import { adminApi } from "./support/AdminApi.js"
import { rawRequest } from "./support/Raw.js"
import { startReceiver } from "./support/Receiver.js"
import { asAdmin, callApi, creds, type Params, startTestServer, type TestServer } from "./support/TestServer.js"

type Answer = Record<string, unknown> & { code: number; message: string; httpStatus: number }
type Row = Record<string, unknown>

let server: TestServer
let receiver: Awaited<ReturnType<typeof startReceiver>>
let session = ""
let agentSession = ""
let strangerSession = ""
let wotId = ""
let pushTypeId = ""
let agentId = 0
let adminId = 0
const MAX_ATTACHMENT = 64 * 1024

const wo = async (name: string, params: Params, via: "get" | "form" = "form", base = "workordermanager"): Promise<Answer> => {
  const url = `${server.url}/voip/${base}/${name}.json`
  const search = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) for (const x of typeof v === "string" ? [v] : v) search.append(k, x)
  const res = via === "get" ? await fetch(`${url}?${search}`) : await fetch(url, { method: "POST", body: search })
  return Object.assign((await res.json()) as Answer, { httpStatus: res.status })
}
const healthy = async () => expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
const dbAll = <T>(sql: string, ...args: Array<unknown>) => {
  const d = new Database(path.join(server.dataDir, "bridge.db"), { readonly: true })
  try {
    return d.prepare(sql).all(...args) as Array<T>
  } finally {
    d.close()
  }
}
const eventsOf = (woId: string) =>
  dbAll<{ type: string; data: string; enterprise: string }>("SELECT type, data, enterprise FROM events WHERE type LIKE 'workorder.%' AND json_extract(data, '$.woId') = ? ORDER BY id", woId).map((e) => ({
    ...e,
    data: JSON.parse(e.data) as Row
  }))
const login = async (user: string, password: string) => String((await callApi(server, { ...creds(user, password), method: "getExtension" })).sessionId)
const list = (params: Params = {}, sid = session) => wo("GetWorkList", { sessionId: sid, wotId, startTime: "2000-1-1", endTime: "2100-1-1 23:59:59", rows: "1000", ...params })
const rowsOf = (a: Answer) => a.rows as Array<Row>

/** A multipart body written byte for byte, so hostile file names arrive exactly as sent. */
const multipart = (fields: Record<string, string>, file: { name: string; data: Buffer } | undefined) => {
  const boundary = `----wo${crypto.randomBytes(6).toString("hex")}`
  const parts: Array<Buffer> = []
  for (const [k, v] of Object.entries(fields)) parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`))
  if (file) parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${file.name}"\r\nContent-Type: application/octet-stream\r\n\r\n`), file.data, Buffer.from("\r\n"))
  parts.push(Buffer.from(`--${boundary}--\r\n`))
  return { body: Buffer.concat(parts), type: `multipart/form-data; boundary=${boundary}` }
}
const upload = async (woId: string, file: { name: string; data: Buffer } | undefined, sid = session) => {
  const { body, type } = multipart({ sessionId: sid, woId }, file)
  const res = await rawRequest(server.url, "POST", "/voip/manage/workorderattachment/upload.json", { "Content-Type": type }, body)
  return { status: res.status, body: JSON.parse(res.body.toString("utf8")) as Answer }
}

beforeAll(async () => {
  receiver = await startReceiver()
  server = await startTestServer({
    workorders: {
      seedExample: true,
      attachmentMaxBytes: MAX_ATTACHMENT,
      types: [
        {
          enterprise: "100008",
          name: "推送工单",
          pushUrl: receiver.url,
          steps: [
            { name: "创建", push: { save: true, submit: true } },
            { name: "处理", push: { return: true, submit: true } },
            { name: "结案", end: true }
          ]
        }
      ]
    },
    forwarding: { circuitThreshold: 5, circuitCooldownMs: 30_000, retentionDays: 30, pollIntervalMs: 50 }
  })
  await asAdmin(server, "addExtension", { exteExtension: "401", extePassword: "agent-pw", exteName: "坐席401" })
  await asAdmin(server, "addExtension", { exteExtension: "402", extePassword: "other-pw", exteName: "坐席402" })
  await server.runtime.runPromise(
    Effect.gen(function* () {
      const repo = yield* ExtensionsRepo
      const passwords = yield* Passwords
      yield* repo.ensureEnterprise("200001", "别的企业")
      yield* repo.insert("200001", 800, { password_hash: yield* passwords.hashPlain("stranger-pw"), status: 2, name: "他人管理员" })
    })
  )
  session = await login("100008800", "02367073578")
  agentSession = await login("100008401", "agent-pw")
  strangerSession = await login("200001800", "stranger-pw")
  const ids = dbAll<{ exte_id: number; extension: string }>("SELECT exte_id, extension FROM extensions")
  agentId = ids.find((e) => e.extension === "100008401")!.exte_id
  adminId = ids.find((e) => e.extension === "100008800")!.exte_id
})
afterAll(async () => {
  await server.close()
  await receiver.close()
})

describe("definitions (§2.12.1–2.12.3, §2.12.6)", () => {
  it("lists the seeded 售后工单 on both paths, by GET and POST, with sessionId or sa_user/sa_password", async () => {
    for (const base of ["workordermanager", "workordermanagernew"])
      for (const via of ["get", "form"] as const) {
        const a = await wo("GetWorkOrderType", { sessionId: session }, via, base)
        expect(a).toMatchObject({ code: 0, httpStatus: 200 })
        expect(rowsOf(a).map((r) => r.wotName)).toContain("售后工单")
      }
    const byPassword = await wo("GetWorkOrderType", creds())
    expect(byPassword.code).toBe(0)
    wotId = String(rowsOf(byPassword).find((r) => r.wotName === "售后工单")!.wotId)
    pushTypeId = String(rowsOf(byPassword).find((r) => r.wotName === "推送工单")!.wotId)
    expect(wotId).toMatch(/^\d+$/)
  })

  it("refuses a wrong, missing or expired sessionId with -2", async () => {
    expect((await wo("GetWorkOrderType", { sessionId: "voip_0000000000000000" })).code).toBe(-2)
    expect((await wo("GetWorkOrderType", {})).code).toBe(-2)
    expect((await wo("GetWorkList", { sessionId: "nope", wotId, startTime: "2000-1-1", endTime: "2100-1-1" })).code).toBe(-2)
    // a session whose row has expired
    const sid = await login("100008402", "other-pw")
    const d = new Database(path.join(server.dataDir, "bridge.db"))
    d.prepare("UPDATE sessions SET expires_at = 1 WHERE exte_id = (SELECT exte_id FROM extensions WHERE extension = '100008402')").run()
    d.close()
    expect((await wo("GetWorkOrderType", { sessionId: sid })).code).toBe(-2)
    await healthy()
  })

  it("GetWorkOrderStep: create → handle → close, the last one ending", async () => {
    const a = await wo("GetWorkOrderStep", { sessionId: session, wotId }, "get")
    expect(a.code).toBe(0)
    expect(rowsOf(a).map((r) => [r.wosName, r.wosIndex, r.wosIsEnd])).toEqual([
      ["创建", 1, 0],
      ["处理", 2, 0],
      ["结案", 3, 1]
    ])
    expect(rowsOf(a)[0]!.wosId).toEqual(expect.any(Number))
    expect((await wo("GetWorkOrderStep", { sessionId: session, wotId: "123" })).code).toBe(-11)
    expect((await wo("GetWorkOrderStep", { sessionId: session })).code).toBe(-14)
    expect((await wo("GetWorkOrderStep", { sessionId: session, wotId: "x' OR 1=1" })).code).toBe(-14)
  })

  it("GetDeptPersonTree: the people of a step (everyone of the enterprise when none are listed)", async () => {
    const a = await wo("GetDeptPersonTree", { sessionId: session, wotId, wosIndex: "2" }, "get")
    expect(a.code).toBe(0)
    expect(rowsOf(a).map((r) => r.exteExtension)).toEqual(["100008401", "100008402", "100008800"])
    expect(rowsOf(a).find((r) => r.exteExtension === "100008401")).toMatchObject({ exteId: agentId, exteName: "坐席401" })
    expect((await wo("GetDeptPersonTree", { sessionId: session, wotId })).code).toBe(0)
    expect((await wo("GetDeptPersonTree", { sessionId: session, wotId, wosIndex: "9" })).code).toBe(-14)
    expect((await wo("GetDeptPersonTree", { sessionId: strangerSession, wotId, wosIndex: "1" })).code).toBe(-11)
  })

  it("loadWorkCode: a field's code tree by field_typeId, and a code's children", async () => {
    const a = await wo("loadWorkCode", { sessionId: session, wotId, fieldname: `woLevel_${wotId}`, oper: "0" }, "get")
    expect(a.code).toBe(0)
    expect((a.parentdata as Array<Row>).map((c) => [c.codeCode, c.codeName, c.codeParentId])).toEqual([
      ["1", "普通", null],
      ["2", "紧急", null],
      ["3", "非常紧急", null]
    ])
    const tree = (await wo("loadWorkCode", { sessionId: session, fieldname: `woOther3_${wotId}` })).parentdata as Array<Row>
    const repair = tree.find((c) => c.codeCode === "B")!
    expect(tree.filter((c) => c.codeParentId === repair.codeId).map((c) => c.codeName)).toEqual(["无法开机", "通话断线"])
    const children = await wo("loadWorkCode", { sessionId: session, fieldname: `woOther3_${wotId}`, codeId: String(repair.codeId) })
    expect((children.parentdata as Array<Row>).map((c) => c.codeName)).toEqual(["无法开机", "通话断线"])
    expect((await wo("loadWorkCode", { sessionId: session, fieldname: "woLevel" })).code).toBe(-14)
    expect((await wo("loadWorkCode", { sessionId: session, fieldname: `woLevel_${wotId}`, wotId: "1" })).code).toBe(-14)
    expect((await wo("loadWorkCode", { sessionId: strangerSession, fieldname: `woLevel_${wotId}` })).code).toBe(-11)
    expect((await wo("loadWorkCode", { sessionId: session, fieldname: `woNothing_${wotId}` })).parentdata).toEqual([])
  })
})

describe("UpdateWorkOrder (§2.12.5) and GetWorkList (§2.12.4)", () => {
  it("takes the contract's own request and creates the customer it names", async () => {
    const a = await wo("UpdateWorkOrder", { sessionId: session, wotId, custName: "2434", woOther1: "ldksjfalksj", cpPhone: "63846384" }, "get", "workordermanagernew")
    expect(a).toMatchObject({ code: 0, woId: expect.stringMatching(/^\d+$/) })
    const customer = await callApi(server, { ...creds(), method: "getcustomer", phoneNum: "63846384" })
    expect(customer.customer).toMatchObject({ custName: "2434" })
    expect(customer.worktype).toEqual([expect.objectContaining({ woId: a.woId, wotName: "售后工单", woStepId: 1 })])
    expect(dbAll("SELECT 1 FROM events WHERE type = 'customer.saved' AND source = 'api:UpdateWorkOrder'")).toHaveLength(1)
    // the same phone again links to that customer, not a second one
    const again = await wo("UpdateWorkOrder", { sessionId: session, wo_wotId: wotId, custName: "别名", cpPhone: "6384-6384" })
    expect(again.code).toBe(0)
    expect(dbAll("SELECT 1 FROM customers")).toHaveLength(1)
    // without a woOther10 (the consultation phone) the work order's phone is the customer's: found by it however written
    expect(rowsOf(await list({ woOther10: "6384 6384" })).map((r) => r.woId).sort()).toEqual([a.woId, again.woId].sort())
    const byCustomer = dbAll<{ cust_id: number }>("SELECT DISTINCT cust_id FROM work_orders WHERE cust_id IS NOT NULL")
    expect(byCustomer).toHaveLength(1)
  })

  it("walks a work order through every step, each move an event with the §2.12.9 fields", async () => {
    const created = await wo("UpdateWorkOrder", {
      sessionId: session,
      wo_wotId: wotId,
      woId: "0",
      woQuestion: "无法开机",
      woOther8: "李四",
      woOther10: "13900139000",
      woOther3: "B1",
      woMoney: "12.5",
      cpPhone: "13900139000",
      custName: "李四"
    })
    expect(created.code).toBe(0)
    const woId = String(created.woId)
    // submitted to step 2, assigned to the agent (the client echoes the step it is at)
    expect((await wo("UpdateWorkOrder", { sessionId: session, woId, woStepId: "1", next_exteId: String(agentId) })).code).toBe(0)
    // the agent answers and saves at step 2
    expect((await wo("UpdateWorkOrder", { sessionId: agentSession, woId, woStep2Answer: "已上门更换电源", woStep2Status: "满意" })).code).toBe(0)
    // the agent closes it: step 3 ends it
    expect((await wo("UpdateWorkOrder", { sessionId: agentSession, woId, woStepId: "3" })).code).toBe(0)
    // an ended work order is not saved or submitted again, only returned
    expect((await wo("UpdateWorkOrder", { sessionId: session, woId, woQuestion: "again" })).code).toBe(-14)
    expect((await wo("UpdateWorkOrder", { sessionId: session, woId, woStepId: "2" })).code).toBe(0)

    const events = eventsOf(woId)
    expect(events.map((e) => [e.type, e.data.wo_action, e.data.woStepId])).toEqual([
      ["workorder.saved", 1, 1],
      ["workorder.submitted", 2, 2],
      ["workorder.saved", 1, 2],
      ["workorder.ended", 4, 3],
      ["workorder.returned", 3, 2]
    ])
    expect(events.every((e) => e.enterprise === "100008")).toBe(true)
    const ended = events[3]!.data
    expect(ended).toMatchObject({
      woId,
      wo_wotId: wotId,
      wotName: "售后工单",
      wosName: "结案",
      woPhone: "13900139000",
      cpPhone1: "13900139000",
      custName: "李四",
      woQuestion: "无法开机",
      woOther8: "李四",
      woOther3: "B1",
      woMoney: 12.5,
      woStep1_exteId: adminId,
      woStep2_exteId: agentId,
      woStep2Answer: "已上门更换电源",
      woStep2Status: "满意",
      woCreate_exteId: adminId,
      woCreate_exteName: "管理员",
      woCode: expect.stringMatching(/^\d{14}$/),
      woCreateTime: expect.stringMatching(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/),
      woEndTime: expect.stringMatching(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/),
      wo_custId: expect.stringMatching(/^\d+$/)
    })
    expect(ended.woStep1Time).toEqual(expect.stringMatching(/^\d{4}-/))
    expect(events[4]!.data.woEndTime).toBeNull()
    // every event's data is a §2.12.9 push the platform's own receiver schema takes
    for (const e of events) expect(() => Schema.decodeUnknownSync(WorkOrderPush)(Object.fromEntries(Object.entries(e.data).filter(([, v]) => v !== null).map(([k, v]) => [k, String(v)])))).not.toThrow()

    // GetWorkList shows it where it is now, with the contract's fields
    const [row] = rowsOf(await list({ smemo: "无法开机" }))
    expect(row).toMatchObject({ woId, woStepId: 2, woStep2_exteId: agentId, woStep2Answer: "已上门更换电源", woCreate_exteName: "管理员", woOther10: "13900139000", woCode: ended.woCode })
    expect(rowsOf(await list({ stepindex: "2", woOther10: "139-0013-9000" })).map((r) => r.woId)).toEqual([woId])
    expect(rowsOf(await list({ stepindex: "3", woOther10: "13900139000" }))).toEqual([])
    await healthy()
  })

  it("refuses what it cannot do, with the parameter named, and stores nothing", async () => {
    const before = dbAll<{ n: number }>("SELECT count(*) AS n FROM work_orders")[0]!.n
    const eventsBefore = dbAll<{ n: number }>("SELECT count(*) AS n FROM events")[0]!.n
    const refusals: Array<[Params, number, string]> = [
      [{}, -14, "wo_wotId"],
      [{ wotId: "42" }, -11, "wotId"],
      [{ wotId, woStepId: "3" }, -14, "woStepId"],
      [{ wotId, woStepId: "7" }, -14, "woStepId"],
      [{ wotId, next_exteId: "999999999" }, -14, "next_exteId"],
      [{ wotId, cpPhone: "not a phone" }, -14, "cpPhone"],
      [{ wotId, wo_wotId: pushTypeId }, -14, "wotId"],
      [{ wotId, ispost: "7" }, -14, "ispost"],
      [{ wotId, woStep2Time: "yesterday" }, -14, "woStep2Time"],
      [{ wotId, woOther5: "x".repeat(4001) }, -14, "woOther5"],
      [{ woId: "123456789" }, -11, "woId"]
    ]
    for (const [params, code, param] of refusals) {
      const a = await wo("UpdateWorkOrder", { sessionId: session, ...params })
      expect([a.code, a.message.includes(param)], JSON.stringify(params)).toEqual([code, true])
    }
    // a next handler from another enterprise is outside the step's people
    const stranger = dbAll<{ exte_id: number }>("SELECT exte_id FROM extensions WHERE extension = '200001800'")[0]!.exte_id
    expect((await wo("UpdateWorkOrder", { sessionId: session, wotId, next_exteId: String(stranger) })).code).toBe(-14)
    expect(dbAll<{ n: number }>("SELECT count(*) AS n FROM work_orders")[0]!.n).toBe(before)
    expect(dbAll<{ n: number }>("SELECT count(*) AS n FROM events")[0]!.n).toBe(eventsBefore)
    await healthy()
  })

  it("GetWorkList: startTime and endTime required, pages, a row limit, and smemo searched as itself", async () => {
    expect((await wo("GetWorkList", { sessionId: session, wotId })).code).toBe(-14)
    expect((await wo("GetWorkList", { sessionId: session, wotId, startTime: "2000-1-1", endTime: "soon" })).code).toBe(-14)
    expect((await list({ startTime: "2020-01-02", endTime: "2020-01-01" })).code).toBe(-14)
    expect((await list({ rows: "100000" })).code).toBe(-12)
    const hostile = ["' OR '1'='1", "x'); DROP TABLE work_orders; --", "100%", "a_b", "\\", "%", "_", '"quoted"']
    for (const text of hostile) expect((await wo("UpdateWorkOrder", { sessionId: session, wotId, woQuestion: `问题 ${text} 结束` })).code).toBe(0)
    for (const text of hostile) {
      const a = await list({ smemo: text })
      expect(a.code).toBe(0)
      // exactly the work orders whose text holds it: a wildcard matches only itself
      const found = rowsOf(a).map((r) => r.woQuestion)
      expect(found.length, text).toBeGreaterThan(0)
      expect(found.every((q) => String(q).includes(text)), text).toBe(true)
    }
    expect(rowsOf(await list({ smemo: "%%" }))).toEqual([])
    const all = await list()
    const total = all.total as number
    const page1 = await list({ rows: "3", page: "1" })
    const page2 = await list({ rows: "3", page: "2" })
    expect(page1.total).toBe(total)
    expect(rowsOf(page1)).toHaveLength(3)
    expect(rowsOf(page1).map((r) => r.woId)).toEqual(rowsOf(all).slice(0, 3).map((r) => r.woId))
    expect(rowsOf(page2).map((r) => r.woId)).toEqual(rowsOf(all).slice(3, 6).map((r) => r.woId))
    expect(dbAll("SELECT name FROM sqlite_master WHERE name = 'work_orders'")).toHaveLength(1)
    await healthy()
  })
})

describe("isolation", () => {
  it("another enterprise sees none of ours; an agent sees the work orders of its step", async () => {
    const mine = String((await wo("UpdateWorkOrder", { sessionId: session, wotId, woQuestion: "本企业" })).woId)
    expect(rowsOf(await wo("GetWorkOrderType", { sessionId: strangerSession })).map((r) => r.wotName)).not.toContain("售后工单")
    expect((await list({}, strangerSession)).code).toBe(-11)
    expect((await wo("UpdateWorkOrder", { sessionId: strangerSession, woId: mine, woQuestion: "改" })).code).toBe(-11)
    expect((await wo("GetWorkInfoFile", { sessionId: strangerSession, woId: mine })).code).toBe(-11)

    // a type whose handling step names the agent alone: another agent does not see its work orders there
    const restricted = await server.runtime.runPromise(
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const store = yield* WorkOrdersStore
        const def = Schema.decodeSync(TypeDefinition)({ enterprise: "100008", name: "限定工单", steps: [{ name: "创建", people: ["100008800"] }, { name: "处理", people: ["100008401"] }, { name: "结案", end: true }] })
        return yield* sql.withTransaction(store.saveType(def, Date.now()))
      })
    )
    const sid402 = await login("100008402", "other-pw")
    // the agent is no person of step 1: -14 when named; 402 is not of step 2
    expect((await wo("UpdateWorkOrder", { sessionId: session, wotId: String(restricted), next_exteId: String(adminId) })).code).toBe(-14)
    const moved = await wo("UpdateWorkOrder", { sessionId: session, wotId: String(restricted), woQuestion: "限定", next_exteId: String(agentId) })
    expect(moved.code).toBe(0)
    const restrictedList = (sid: string) => wo("GetWorkList", { sessionId: sid, wotId: String(restricted), startTime: "2000-1-1", endTime: "2100-1-1" })
    expect(rowsOf(await restrictedList(agentSession)).map((r) => r.woId)).toEqual([moved.woId])
    expect(rowsOf(await restrictedList(session)).map((r) => r.woId)).toEqual([moved.woId])
    expect(rowsOf(await restrictedList(sid402))).toEqual([])
    expect((await wo("UpdateWorkOrder", { sessionId: sid402, woId: String(moved.woId), woQuestion: "改" })).code).toBe(-11)
  })
})

describe("attachments (§2.12.7, §2.12.8)", () => {
  let woId = ""
  beforeAll(async () => {
    woId = String((await wo("UpdateWorkOrder", { sessionId: session, wotId, woQuestion: "附件" })).woId)
  })

  it("round-trips a photo with a Chinese name, listed and downloadable with the same auth", async () => {
    const photo = crypto.randomBytes(20_000)
    const up = await upload(woId, { name: "现场照片 1.jpg", data: photo })
    expect(up).toMatchObject({ status: 200, body: { code: 0, waName: "现场照片 1.jpg" } })
    const files = rowsOf(await wo("GetWorkInfoFile", { sessionId: session, woId }, "get"))
    expect(files).toEqual([{ waName: "现场照片 1.jpg", waPath: up.body.waPath }])
    const waPath = String(up.body.waPath)
    expect(waPath).toMatch(/^\/voip\/workorderattachment\/100008\/\d+\/\d+\.jpg$/)
    const got = await fetch(`${server.url}${waPath}?sessionId=${session}`)
    expect(got.status).toBe(200)
    expect(got.headers.get("content-type")).toBe("image/jpeg")
    expect(got.headers.get("content-disposition")).toContain(encodeURIComponent("现场照片 1.jpg"))
    expect(Buffer.from(await got.arrayBuffer()).equals(photo)).toBe(true)
    expect(((await (await fetch(`${server.url}${waPath}`)).json()) as Answer).code).toBe(-2)
    expect((await fetch(`${server.url}${waPath}?sessionId=${strangerSession}`)).status).toBe(404)
  })

  it("keeps hostile names as plain names and stores every file under its id", async () => {
    for (const name of ["../../etc/passwd", "..\\..\\boot.ini", "a%2f..%2fb.png", "<script>alert(1)</script>.gif", ".."]) {
      const up = await upload(woId, { name, data: Buffer.from("hostile") })
      expect(up.body.code, name).toBe(0)
      expect(String(up.body.waName)).not.toMatch(/[/\\\u0000-\u001f<>]/)
      expect(String(up.body.waPath)).toMatch(/^\/voip\/workorderattachment\/100008\/\d+\/\d+(\.[a-z0-9]+)?$/)
      expect((await fetch(`${server.url}${String(up.body.waPath)}?sessionId=${session}`)).status).toBe(200)
    }
    const stored = fs.readdirSync(path.join(server.dataDir, "workorder", "100008", woId))
    expect(stored.every((f) => /^\d+(\.[a-z0-9]+)?$/.test(f))).toBe(true)
    expect(fs.existsSync(path.join(server.dataDir, "etc"))).toBe(false)
    for (const p of ["/voip/workorderattachment/../bridge.db", "/voip/workorderattachment/100008/%2e%2e/%2e%2e/bridge.db"])
      expect((await rawRequest(server.url, "GET", `${p}?sessionId=${session}`)).status, p).toBe(404)
    await healthy()
  })

  it("refuses an over-size file (-13), a missing file, an unknown work order, and missing credentials before the file", async () => {
    const count = () => dbAll<{ n: number }>("SELECT count(*) AS n FROM wo_attachments")[0]!.n
    const before = count()
    const big = await upload(woId, { name: "big.jpg", data: Buffer.alloc(MAX_ATTACHMENT + 1) })
    expect([big.status, big.body.code]).toEqual([413, -13])
    expect((await upload(woId, undefined)).body.code).toBe(-14)
    expect((await wo("GetWorkInfoFile", { sessionId: session })).code).toBe(-14)
    expect((await wo("GetWorkInfoFile", { sessionId: session, woId: "../1" })).code).toBe(-14)
    expect((await wo("GetWorkInfoFile", { sessionId: session, woId: "987654321" })).code).toBe(-11)
    expect((await wo("GetWorkInfoFile", { sessionId: "wrong", woId })).code).toBe(-2)
    expect((await upload("123456", { name: "a.jpg", data: Buffer.from("x") })).body.code).toBe(-11)
    expect((await upload(woId, { name: "a.jpg", data: Buffer.from("x") }, strangerSession)).body.code).toBe(-11)
    const { body, type } = multipart({ woId }, { name: "a.jpg", data: Buffer.from("x") })
    const anonymous = await rawRequest(server.url, "POST", "/voip/manage/workorderattachment/upload.json", { "Content-Type": type }, body)
    expect(JSON.parse(anonymous.body.toString()).code).toBe(-2)
    expect(count()).toBe(before)
    expect(fs.readdirSync(path.join(server.dataDir, "tmp")).length).toBe(0)
    await healthy()
  })
})

describe("the §2.12.9 push to a type's URL", () => {
  it("goes out through the type's target when a step is set to push, in the platform's fields", async () => {
    const created = await wo("UpdateWorkOrder", { sessionId: session, wotId: pushTypeId, woQuestion: "推送", custName: "王五", cpPhone: "13700137000", woOther2: "自定义二" })
    const woId = String(created.woId)
    expect((await wo("UpdateWorkOrder", { sessionId: session, woId, next_exteId: String(agentId) })).code).toBe(0)
    // a save at step 2 is not pushed (only return and submit are)
    expect((await wo("UpdateWorkOrder", { sessionId: agentSession, woId, woStep2Answer: "处理中" })).code).toBe(0)
    expect((await wo("UpdateWorkOrder", { sessionId: agentSession, woId, woStepId: "1" })).code).toBe(0)
    // …unless the client asks for it (ispost=1)
    expect((await wo("UpdateWorkOrder", { sessionId: session, woId, woOther3: "提醒", ispost: "1" })).code).toBe(0)
    const deadline = Date.now() + 5000
    while (receiver.received.length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
    const pushes = receiver.received.map((r) => Object.fromEntries(new URLSearchParams(r.body)))
    expect(pushes.map((p) => [p.wo_action, p.woStepId])).toEqual([
      ["1", "1"],
      ["2", "2"],
      ["3", "1"],
      ["1", "1"]
    ])
    expect(receiver.received.every((r) => r.method === "POST" && String(r.headers["content-type"]).startsWith("application/x-www-form-urlencoded"))).toBe(true)
    for (const p of pushes) {
      const decoded = Schema.decodeUnknownSync(WorkOrderPush)(p)
      expect(decoded).toMatchObject({ woId, wo_wotId: pushTypeId, wotName: "推送工单", custName: "王五", cpPhone1: "13700137000", woPhone: "13700137000", woOther2: "自定义二" })
      expect(p.wo_custId).toMatch(/^\d+$/)
      expect(p.woCreateTime).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/)
    }
    expect(pushes[1]).toMatchObject({ wosName: "处理", woStep1_exteId: String(adminId) })
    expect(pushes[2]).toMatchObject({ wosName: "创建", woStep2Answer: "处理中" })
    // the deliveries are the pipeline's: one target per type, visible and redrivable as any
    expect(dbAll<{ target: string; status: string }>("SELECT DISTINCT target, status FROM deliveries WHERE target LIKE 'workorder-type-%'")).toEqual([
      { target: `workorder-type-${pushTypeId}`, status: "delivered" }
    ])
  })
})

describe("admin API: work-order types", () => {
  it("creates a type with its steps, people, pushes, labels and codes; reads, replaces and deletes it", async () => {
    const body = {
      name: "安装工单",
      pushUrl: "http://127.0.0.1:9/hook",
      steps: [
        { name: "登记", people: ["100008800"], push: { save: true } },
        { name: "安装", people: ["100008401", "100008402"], push: { submit: true } },
        { name: "完成", end: true }
      ],
      fields: { woOther1: "地址", woMoney: "费用" },
      codes: { woOther2: [{ code: "P", name: "产品" }, { code: "P1", name: "空调", parent: "P" }] }
    }
    const created = await adminApi(server, "POST", "/enterprises/100008/workorder-types", body)
    expect(created.status).toBe(200)
    const type = created.body.type as Row & { steps: Array<Row> }
    expect(type).toMatchObject({ name: "安装工单", pushUrl: body.pushUrl, fields: body.fields, pushTarget: `workorder-type-${String(type.wotId)}` })
    expect(type.steps.map((s) => [s.wosIndex, s.name, s.end, s.people])).toEqual([
      [1, "登记", false, ["100008800"]],
      [2, "安装", false, ["100008401", "100008402"]],
      [3, "完成", true, []]
    ])
    const wotId = String(type.wotId)
    // the contract's endpoints see it at once
    expect(rowsOf(await wo("GetDeptPersonTree", { sessionId: session, wotId, wosIndex: "2" })).map((r) => r.exteExtension)).toEqual(["100008401", "100008402"])
    const codes = (await wo("loadWorkCode", { sessionId: session, fieldname: `woOther2_${wotId}` })).parentdata as Array<Row>
    expect(codes.map((c) => [c.codeCode, c.codeParentId === null ? null : codes.find((p) => p.codeId === c.codeParentId)!.codeCode])).toEqual([
      ["P", null],
      ["P1", "P"]
    ])
    // the type's push target is a target like any other
    expect((await adminApi(server, "GET", `/targets/workorder-type-${wotId}`)).body).toMatchObject({ url: body.pushUrl, format: "800ing", events: [] })

    // replaced by name: steps keep their ids, the push URL gone takes its target with it
    const replaced = await adminApi(server, "POST", "/enterprises/100008/workorder-types", { ...body, pushUrl: undefined, steps: body.steps.map((s) => ({ ...s, people: [] })) })
    const again = replaced.body.type as Row & { steps: Array<Row> }
    expect(again.wotId).toBe(wotId)
    expect(again.steps.map((s) => s.wosId)).toEqual(type.steps.map((s) => s.wosId))
    expect((await adminApi(server, "GET", `/targets/workorder-type-${wotId}`)).status).toBe(404)
    expect((await adminApi(server, "GET", `/enterprises/100008/workorder-types/${wotId}`)).body.type).toMatchObject({ wotId, pushUrl: null })
    expect(((await adminApi(server, "GET", "/enterprises/100008/workorder-types")).body.items as Array<Row>).map((t) => t.name)).toContain("安装工单")

    // refusals: unknown people, one end step, unknown enterprise, a type in use
    const refused = await adminApi(server, "POST", "/enterprises/100008/workorder-types", { ...body, steps: [{ name: "a", people: ["200001800"] }, { name: "b", end: true }] })
    expect([refused.status, refused.body.code]).toEqual([400, -14])
    expect((await adminApi(server, "POST", "/enterprises/100008/workorder-types", { ...body, steps: [{ name: "a" }, { name: "b" }] })).body.code).toBe(-14)
    expect((await adminApi(server, "GET", "/enterprises/999999/workorder-types")).status).toBe(404)
    expect((await adminApi(server, "DELETE", `/enterprises/100008/workorder-types/${wotId}`)).body.code).toBe(0)
    expect((await adminApi(server, "GET", `/enterprises/100008/workorder-types/${wotId}`)).status).toBe(404)
    expect((await adminApi(server, "DELETE", `/enterprises/100008/workorder-types/${wotId}`)).status).toBe(404)
    const inUse = await adminApi(server, "DELETE", `/enterprises/100008/workorder-types/${pushTypeId}`)
    expect([inUse.status, inUse.body.code]).toEqual([409, -10])
  })
})
