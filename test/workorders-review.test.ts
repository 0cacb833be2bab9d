/**
 * Work orders against the review's findings, over real HTTP: a type redefined with fewer steps
 * while work orders sit at a removed step (refused; an order at a missing step answers a code,
 * never -3), the per-type push target reserved in the admin targets API (no `*`, no deletion, a
 * delivery whose target is gone dead-lettered, not pending for good), and a return's
 * `woStepN_exteId` checked like `next_exteId`.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import Database from "better-sqlite3"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Passwords } from "../src/auth/Passwords.js"
import { loadConfig } from "../src/config/AppConfig.js"
import { startServer } from "../src/http/Server.js"
import { ExtensionsRepo } from "../src/extensions/ExtensionsRepo.js"
import { Targets } from "../src/forwarding/Targets.js"
import { adminApi } from "./support/AdminApi.js"
import { runCli } from "./support/Process.js"
import { startReceiver } from "./support/Receiver.js"
import { asAdmin, callApi, creds, type Params, startTestServer, tempDir, type TestServer } from "./support/TestServer.js"

type Answer = Record<string, unknown> & { code: number; message: string; httpStatus: number }
type Row = Record<string, unknown>

let server: TestServer
let receiver: Awaited<ReturnType<typeof startReceiver>>
let session = ""
let agentSession = ""
let adminId = 0
let agentId = 0
let otherId = 0
let strangerId = 0

const wo = async (params: Params): Promise<Answer> => {
  const res = await fetch(`${server.url}/voip/workordermanager/UpdateWorkOrder.json`, { method: "POST", body: new URLSearchParams(params as Record<string, string>) })
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
const order = (woId: string) => dbAll<{ step: number; assignee: number | null; fields: string; updated_ms: number }>("SELECT step, assignee, fields, updated_ms FROM work_orders WHERE wo_id = ?", Number(woId))[0]!
const login = async (user: string, password: string) => String((await callApi(server, { ...creds(user, password), method: "getExtension" })).sessionId)
const saveType = (body: Row) => adminApi(server, "POST", "/enterprises/100008/workorder-types", body)
const until = async (check: () => boolean, ms = 5000) => {
  const deadline = Date.now() + ms
  while (!check() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
}

beforeAll(async () => {
  receiver = await startReceiver()
  server = await startTestServer({ forwarding: { circuitThreshold: 5, circuitCooldownMs: 30_000, retentionDays: 30, pollIntervalMs: 50 } })
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
  const ids = dbAll<{ exte_id: number; extension: string }>("SELECT exte_id, extension FROM extensions")
  const idOf = (ext: string) => ids.find((e) => e.extension === ext)!.exte_id
  adminId = idOf("100008800")
  agentId = idOf("100008401")
  otherId = idOf("100008402")
  strangerId = idOf("200001800")
})
afterAll(async () => {
  await server.close()
  await receiver.close()
})

describe("a type redefined with fewer steps", () => {
  const steps = [{ name: "一" }, { name: "二" }, { name: "三", push: { return: true, save: true } }, { name: "四", end: true }]

  it("is refused (409, -10) while a work order is at a step it would drop, and the order still moves", async () => {
    const created = await saveType({ name: "四步工单", pushUrl: receiver.url, steps })
    expect(created.status).toBe(200)
    const wotId = String((created.body.type as Row).wotId)
    const woId = String((await wo({ sessionId: session, wotId, woQuestion: "到第三步" })).woId)
    expect((await wo({ sessionId: session, woId, woStepId: "2" })).code).toBe(0)
    expect((await wo({ sessionId: session, woId, woStepId: "3" })).code).toBe(0)
    expect(order(woId).step).toBe(3)

    const refused = await saveType({ name: "四步工单", pushUrl: receiver.url, steps: [{ name: "一" }, { name: "二", end: true }] })
    expect([refused.status, refused.body.code]).toEqual([409, -10])
    expect(refused.body.message).toContain("step 3")
    // nothing of the new definition was stored
    const kept = (await adminApi(server, "GET", `/enterprises/100008/workorder-types/${wotId}`)).body.type as Row & { steps: Array<Row> }
    expect(kept.steps.map((s) => s.name)).toEqual(["一", "二", "三", "四"])
    // dropping only steps no order is at is fine
    const fewer = await saveType({ name: "四步工单", pushUrl: receiver.url, steps: [...steps.slice(0, 2), { name: "三", end: true }] })
    expect(fewer.status).toBe(200)
    expect((fewer.body.type as Row & { steps: Array<Row> }).steps.map((s) => s.name)).toEqual(["一", "二", "三"])
    expect((await wo({ sessionId: session, woId, woStepId: "1" })).code).toBe(0)
    expect(order(woId).step).toBe(1)
    await healthy()
  })

  it("an order already at a step its type no longer has answers a code (-14), never -3, and can be returned", async () => {
    const created = await saveType({ name: "旧库工单", pushUrl: receiver.url, steps })
    const wotId = String((created.body.type as Row).wotId)
    const woId = String((await wo({ sessionId: session, wotId })).woId)
    expect((await wo({ sessionId: session, woId, woStepId: "2" })).code).toBe(0)
    expect((await wo({ sessionId: session, woId, woStepId: "3" })).code).toBe(0)
    // as a database written before the refusal existed may hold it: step 3 and 4 gone under the order
    const d = new Database(path.join(server.dataDir, "bridge.db"))
    d.prepare("DELETE FROM wo_steps WHERE wot_id = ? AND idx > 2").run(Number(wotId))
    d.close()
    const before = order(woId)
    const moves: Array<Params> = [{ woQuestion: "保存" }, { woStepId: "3" }, { next_exteId: String(agentId) }]
    for (const params of moves) {
      const saved = await wo({ sessionId: session, woId, ...params })
      expect([saved.httpStatus, saved.code]).toEqual([200, -14])
      expect(saved.message).toContain("step 3")
    }
    expect(order(woId)).toEqual(before)
    const returned = await wo({ sessionId: session, woId, woStepId: "1" })
    expect(returned.code).toBe(0)
    expect(order(woId).step).toBe(1)
    await healthy()
  })
})

describe("a configured type edited to fewer steps between starts", () => {
  it("is left as stored while a work order is at a step it drops; the bridge starts and the order moves", async () => {
    const dataDir = tempDir()
    const configured = (steps: Array<Row>) =>
      Effect.runPromise(loadConfig({ env: {}, overrides: { port: 0, host: "127.0.0.1", dataDir, logLevel: "error", workorders: { types: [{ enterprise: "100008", name: "配置工单", steps }] } } }))
    const first = await startServer(await configured([{ name: "一" }, { name: "二" }, { name: "三" }, { name: "四", end: true }]))
    let second: Awaited<ReturnType<typeof startServer>> | undefined
    try {
      const post = async (base: string, params: Params) => {
        const res = await fetch(`${base}/voip/workordermanager/UpdateWorkOrder.json`, { method: "POST", body: new URLSearchParams({ ...creds(), ...params } as Record<string, string>) })
        return (await res.json()) as Answer
      }
      const types = await fetch(`${first.url}/voip/workordermanager/GetWorkOrderType.json?${new URLSearchParams(creds())}`)
      const wotId = String(((await types.json()) as { rows: Array<Row> }).rows.find((r) => r.wotName === "配置工单")!.wotId)
      const woId = String((await post(first.url, { wotId })).woId)
      expect((await post(first.url, { woId, woStepId: "2" })).code).toBe(0)
      expect((await post(first.url, { woId, woStepId: "3" })).code).toBe(0)
      await first.close()

      second = await startServer(await configured([{ name: "一" }, { name: "二", end: true }]))
      expect((await fetch(`${second.url}/healthz`)).status).toBe(200)
      const steps = await fetch(`${second.url}/voip/workordermanager/GetWorkOrderStep.json?${new URLSearchParams({ ...creds(), wotId })}`)
      expect(((await steps.json()) as { rows: Array<Row> }).rows.map((r) => r.wosName)).toEqual(["一", "二", "三", "四"])
      expect((await post(second.url, { woId, woStepId: "4" })).code).toBe(0)
    } finally {
      await second?.close()
      fs.rmSync(dataDir, { recursive: true, force: true })
    }
  })
})

describe("the per-type push target", () => {
  it("cannot be created, edited or deleted through the admin targets API", async () => {
    const created = await saveType({ name: "推送保留", pushUrl: receiver.url, steps: [{ name: "一", push: { save: true } }, { name: "二", end: true }] })
    const wotId = String((created.body.type as Row).wotId)
    const name = `workorder-type-${wotId}`
    const before = (await adminApi(server, "GET", `/targets/${name}`)).body

    const patched = await adminApi(server, "PATCH", `/targets/${name}`, { events: ["*"] })
    expect([patched.status, patched.body.code]).toEqual([400, -14])
    expect(patched.body.message).toContain(`work-order type ${wotId}`)
    const deleted = await adminApi(server, "DELETE", `/targets/${name}`)
    expect([deleted.status, deleted.body.code]).toEqual([400, -14])
    const made = await adminApi(server, "POST", "/targets", { name: "workorder-type-999", url: receiver.url, events: ["*"] })
    expect([made.status, made.body.code]).toEqual([400, -14])
    expect((await adminApi(server, "GET", "/targets/workorder-type-999")).status).toBe(404)
    expect((await adminApi(server, "GET", `/targets/${name}`)).body).toEqual(before)

    // one save, one push: the target still fans out nothing by itself
    const woId = String((await wo({ sessionId: session, wotId, woQuestion: "一次" })).woId)
    const [event] = dbAll<{ id: number }>("SELECT id FROM events WHERE type LIKE 'workorder.%' AND json_extract(data, '$.woId') = ?", woId)
    await until(() => receiver.received.some((r) => r.body.includes(`woId=${woId}`)))
    expect(dbAll<{ target: string }>("SELECT target FROM deliveries WHERE event_id = ?", event!.id)).toEqual([{ target: name }])
    await healthy()
  })

  it("a delivery whose target is gone is a dead letter, not pending for good", async () => {
    // a URL nobody answers: the first push waits for its retry
    const created = await saveType({ name: "推送撤销", pushUrl: "http://127.0.0.1:9/hook", steps: [{ name: "一", push: { save: true } }, { name: "二", end: true }] })
    const wotId = String((created.body.type as Row).wotId)
    const name = `workorder-type-${wotId}`
    const woId = String((await wo({ sessionId: session, wotId })).woId)
    await until(() => dbAll<{ attempts: number }>("SELECT attempts FROM deliveries WHERE target = ?", name).some((d) => d.attempts > 0))
    // the push URL taken off the type: what waited for its target goes to the dead letters
    expect((await saveType({ name: "推送撤销", steps: [{ name: "一", push: { save: true } }, { name: "二", end: true }] })).status).toBe(200)
    expect(dbAll<{ status: string; dead_reason: string }>("SELECT status, dead_reason FROM deliveries WHERE target = ?", name)).toEqual([{ status: "dead", dead_reason: "target deleted" }])

    // a type whose target is missing (a database of before the reservation): the save stands, its push is a dead letter
    await saveType({ name: "推送撤销", pushUrl: "http://127.0.0.1:9/hook", steps: [{ name: "一", push: { save: true } }, { name: "二", end: true }] })
    await server.runtime.runPromise(Effect.flatMap(Targets, (t) => t.remove(name)))
    const saved = await wo({ sessionId: session, woId, woQuestion: "目标已删" })
    expect(saved.code).toBe(0)
    const [event] = dbAll<{ id: number }>("SELECT id FROM events WHERE type LIKE 'workorder.%' AND json_extract(data, '$.woQuestion') = '目标已删'")
    expect(dbAll<{ status: string; dead_reason: string }>("SELECT status, dead_reason FROM deliveries WHERE event_id = ?", event!.id)).toEqual([{ status: "dead", dead_reason: "target deleted" }])
    await healthy()
  })
})

describe("a return naming who takes the order (woStepN_exteId)", () => {
  it("is checked against that step's people and the enterprise, as next_exteId is", async () => {
    const created = await saveType({ name: "退回检查", steps: [{ name: "登记", people: ["100008800"] }, { name: "处理", people: ["100008401"] }, { name: "完成", end: true }] })
    const wotId = String((created.body.type as Row).wotId)
    const woId = String((await wo({ sessionId: session, wotId })).woId)
    expect((await wo({ sessionId: session, woId, next_exteId: String(agentId) })).code).toBe(0)
    const before = order(woId)
    expect(before).toMatchObject({ step: 2, assignee: agentId })

    for (const someone of [otherId, strangerId]) {
      const refused = await wo({ sessionId: agentSession, woId, woStepId: "1", woStep1_exteId: String(someone) })
      expect([refused.code, refused.message]).toEqual([-14, expect.stringContaining("woStep1_exteId")])
      expect(order(woId)).toEqual(before)
    }
    // the same as next_exteId says
    expect((await wo({ sessionId: agentSession, woId, woStepId: "1", next_exteId: String(otherId) })).code).toBe(-14)
    // another enterprise's extension is nobody's signature of a step either
    expect((await wo({ sessionId: agentSession, woId, woStep2_exteId: String(strangerId) })).code).toBe(-14)
    expect(order(woId)).toEqual(before)

    const returned = await wo({ sessionId: agentSession, woId, woStepId: "1", woStep1_exteId: String(adminId) })
    expect(returned.code).toBe(0)
    expect(order(woId)).toMatchObject({ step: 1, assignee: adminId })
    await healthy()
  })
})

describe("a config target named as a work-order type's push target", () => {
  it("stops the start with one config error line per such name; the type's own target is left as it was", async () => {
    const dataDir = tempDir()
    const config = await Effect.runPromise(loadConfig({ env: {}, overrides: { port: 0, host: "127.0.0.1", dataDir, logLevel: "error" } }))
    const first = await startServer(config)
    let wotId = 0
    try {
      const created = await adminApi({ url: first.url, dataDir }, "POST", "/enterprises/100008/workorder-types", { name: "推送名", pushUrl: "http://127.0.0.1:9/type-hook", steps: [{ name: "一" }, { name: "二", end: true }] })
      expect(created.status).toBe(200)
      wotId = (created.body.type as { wotId: number }).wotId
    } finally {
      await first.close()
    }
    const targetsRow = () => {
      const db = new Database(path.join(dataDir, "bridge.db"), { readonly: true })
      try {
        return db.prepare("SELECT name, config, origin FROM targets ORDER BY name").all()
      } finally {
        db.close()
      }
    }
    const before = targetsRow()
    expect(before).toEqual([{ name: `workorder-type-${wotId}`, config: expect.stringContaining("type-hook"), origin: "api" }])

    const file = path.join(dataDir, "bridge.json")
    fs.writeFileSync(
      file,
      JSON.stringify({
        targets: [
          { name: "crm", url: "http://127.0.0.1:9/crm", events: ["*"] },
          { name: `workorder-type-${wotId}`, url: "http://127.0.0.1:9/takeover", events: ["*"] },
          { name: "workorder-type-later", url: "http://127.0.0.1:9/later", events: ["*"] }
        ]
      })
    )
    try {
      const { code, stdout, stderr } = await runCli(["serve"], { BRIDGE_DATA_DIR: dataDir, BRIDGE_CONFIG: file, BRIDGE_PORT: "0", BRIDGE_HOST: "127.0.0.1", LOG_LEVEL: "error" })
      expect(code).toBe(2)
      expect(stdout).toBe("")
      const refused = `names starting with "workorder-type-" are the work-order types' push targets, set by a type's pushUrl: choose another name`
      expect(stderr.trimEnd().split("\n")).toEqual([
        `voip-bridge: config key "targets.1.name" (from ${file}): ${refused}`,
        `config key "targets.2.name" (from ${file}): ${refused}`
      ])
      // refused before anything was written: the type still pushes where it did
      expect(targetsRow()).toEqual(before)
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true })
    }
  })
})
