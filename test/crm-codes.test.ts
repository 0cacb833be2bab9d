/** getTableFields (§2.6.3) and getCodes (§2.6.6): built-in defaults, the config's `crm` section, and the admin API's edits, per enterprise. */
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { loadConfig } from "../src/config/AppConfig.js"
import { startServer } from "../src/http/Server.js"
import { adminApi } from "./support/AdminApi.js"
import { addEnterpriseAdmin } from "./support/Enterprises.js"
import { asAdmin, callApi, creds, startTestServer, tempDir, type TestServer } from "./support/TestServer.js"

let server: TestServer
const other = creds("200008800", "other-pw")

beforeAll(async () => {
  server = await startTestServer({
    crm: {
      fields: { custOther1: "微信号" },
      codes: { custSource: [{ code: "web", name: "官网" }, { code: "web-cq", name: "官网·重庆", parent: "web" }] },
      enterprises: { "200008": { fields: { custOther1: "旺旺号", custOther2: "工号" }, codes: { custType: [{ code: "gov", name: "政府" }] } } }
    }
  })
  await addEnterpriseAdmin(server, "200008800", "other-pw")
})
afterAll(() => server.close())

type Row = { codeId: number; codeCode: string; codeName: string; codeParentId: number | null }
const codes = async (codeType: string, who = creds(), method = "getCodes") => {
  const body = await callApi(server, { ...who, method, codeType })
  expect(body.code).toBe(0)
  return body.rows as Array<Row>
}
const labels = async (chinesename: string | undefined, who = creds()) => {
  const body = await callApi(server, { ...who, method: "getTableFields", ...(chinesename === undefined ? {} : { chinesename }) })
  expect(body).toMatchObject({ code: 0, success: true })
  return Object.fromEntries((body.rows as Array<{ fieldName: string; chineseName: string; fieldType: string }>).map((r) => [r.fieldName, r]))
}

describe("getTableFields", () => {
  it("answers every customer field with the enterprise's labels (0, the default) or the system's names (1)", async () => {
    const own = await labels("0")
    expect(own.custOther1).toEqual({ fieldName: "custOther1", chineseName: "微信号", fieldType: "text" })
    expect(own.custOther2!.chineseName).toBe("其它2")
    expect(own.custStatus).toEqual({ fieldName: "custStatus", chineseName: "客户状态", fieldType: "code" })
    expect(await labels(undefined)).toEqual(own)
    const system = await labels("1")
    expect(system.custOther1!.chineseName).toBe("其它1")
    expect(Object.keys(system)).toEqual(Object.keys(own))
    expect((await asAdmin(server, "getTableFields", { chinesename: "2" })).code).toBe(-14)
  })

  it("per enterprise: the config's labels of one enterprise are not another's", async () => {
    const theirs = await labels("0", other)
    expect(theirs.custOther1!.chineseName).toBe("旺旺号")
    expect(theirs.custOther2!.chineseName).toBe("工号")
    expect((await labels("0")).custOther2!.chineseName).toBe("其它2")
  })

  it("the admin API sets labels (Chinese text round-trips), null gives the config's back; bad bodies are 400 -14 and change nothing", async () => {
    const set = await adminApi(server, "PUT", "/enterprises/100008/fields", { labels: { custOther3: "备用「3」号'; DROP TABLE crm_codes;--", custOther1: "企业微信" } })
    expect(set.status).toBe(200)
    expect((set.body.items as Array<Record<string, unknown>>).find((f) => f.fieldName === "custOther3")).toEqual({ fieldName: "custOther3", fieldType: "text", systemName: "其它3", label: "备用「3」号'; DROP TABLE crm_codes;--", origin: "admin" })
    expect((await labels("0")).custOther3!.chineseName).toBe("备用「3」号'; DROP TABLE crm_codes;--")
    expect((await labels("0")).custOther1!.chineseName).toBe("企业微信")
    expect((await labels("0", other)).custOther3!.chineseName).toBe("其它3")
    for (const bad of [{ labels: { custNope: "x" } }, { labels: { custOther1: "" } }, { labels: { custOther1: "x".repeat(51) } }, { labels: { custOther1: "a\nb" } }, { labels: {}, extra: 1 }, {}]) {
      const r = await adminApi(server, "PUT", "/enterprises/100008/fields", bad)
      expect(r.status, JSON.stringify(bad)).toBe(400)
      expect(r.body.code).toBe(-14)
    }
    expect((await labels("0")).custOther1!.chineseName).toBe("企业微信")
    expect((await adminApi(server, "PUT", "/enterprises/100008/fields", { labels: { custOther1: null, custOther3: null } })).status).toBe(200)
    expect((await labels("0")).custOther1!.chineseName).toBe("微信号")
    expect((await adminApi(server, "GET", "/enterprises/100008/fields")).body.items).toContainEqual({ fieldName: "custOther1", fieldType: "text", systemName: "其它1", label: "微信号", origin: "config" })
    expect(await adminApi(server, "GET", "/enterprises/999999/fields")).toMatchObject({ status: 404, body: { code: -11 } })
    expect(await adminApi(server, "GET", "/enterprises/abc/fields")).toMatchObject({ status: 400, body: { code: -14 } })
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
  })
})

describe("getCodes", () => {
  it("answers the seeded lists, cpType with 常用电话 first; both spellings; the config's list replaces a built-in one, with its tree", async () => {
    const status = await codes("custStatus")
    expect(status.map((r) => r.codeName)).toEqual(["潜在客户", "意向客户", "成交客户", "流失客户"])
    expect(status[0]).toEqual({ codeId: expect.any(Number), codeCode: "1", codeName: "潜在客户", codeParentId: null })
    expect((await codes("cpType"))[0]!.codeName).toBe("常用电话")
    expect((await codes("custSex")).map((r) => r.codeName)).toEqual(["男", "女", "未知"])
    expect((await codes("custType")).length).toBeGreaterThan(0)
    expect(await codes("custStatus", creds(), "getCodes.html")).toEqual(status)
    const source = await codes("custSource")
    expect(source.map((r) => [r.codeCode, r.codeName])).toEqual([["web", "官网"], ["web-cq", "官网·重庆"]])
    expect(source[1]!.codeParentId).toBe(source[0]!.codeId)
    // ids are stable from one read to the next
    expect(await codes("custStatus")).toEqual(status)
  })

  it("an unknown codeType, an injection or a wildcard is an empty list; a missing one is -14", async () => {
    for (const t of ["noSuchType", "%", "_", "custStatus' OR '1'='1", "custStatus%", "客户状态"]) expect(await codes(t), t).toEqual([])
    expect((await asAdmin(server, "getCodes")).code).toBe(-14)
    expect((await asAdmin(server, "getCodes", { codeType: "" })).code).toBe(-14)
    expect((await asAdmin(server, "getCodes", { codeType: "x".repeat(101) })).code).toBe(-14)
  })

  it("per enterprise: another enterprise has its own lists and ids", async () => {
    const mine = await codes("custStatus")
    const theirs = await codes("custStatus", other)
    expect(theirs.map((r) => r.codeName)).toEqual(mine.map((r) => r.codeName))
    expect(theirs.map((r) => r.codeId).some((id) => mine.some((m) => m.codeId === id))).toBe(false)
    expect((await codes("custType", other)).map((r) => r.codeName)).toEqual(["政府"])
    expect((await codes("custType")).map((r) => r.codeName)).not.toContain("政府")
  })

  it("the admin API adds, removes, replaces and resets codes of one enterprise only", async () => {
    const before = await codes("custStatus")
    const theirs = await codes("custStatus", other)
    const added = await adminApi(server, "POST", "/enterprises/100008/codes/custStatus", { code: "vip%_'", name: "重点客户；\"引号\"" })
    expect(added).toMatchObject({ status: 201, body: { code: 0, item: { codeCode: "vip%_'", codeName: "重点客户；\"引号\"", codeParentId: null } } })
    const child = await adminApi(server, "POST", "/enterprises/100008/codes/custStatus", { code: "vip-a", name: "重点A", parent: "vip%_'" })
    expect(child.status).toBe(201)
    const after = await codes("custStatus")
    expect(after.slice(0, before.length)).toEqual(before)
    expect(after.slice(before.length).map((r) => r.codeCode)).toEqual(["vip%_'", "vip-a"])
    expect(after.at(-1)!.codeParentId).toBe(after.at(-2)!.codeId)
    expect(await codes("custStatus", other)).toEqual(theirs)

    // refused: a duplicate (409), an unknown parent, bad text, a bad type; removing a parent first
    expect(await adminApi(server, "POST", "/enterprises/100008/codes/custStatus", { code: "vip-a", name: "again" })).toMatchObject({ status: 409, body: { code: -10 } })
    for (const [p, body] of [
      ["/enterprises/100008/codes/custStatus", { code: "x", name: "y", parent: "nope" }],
      ["/enterprises/100008/codes/custStatus", { code: "", name: "y" }],
      ["/enterprises/100008/codes/custStatus", { code: "x" }],
      ["/enterprises/100008/codes/custStatus", { code: "x", name: "y", extra: true }],
      ["/enterprises/100008/codes/bad%20type", { code: "x", name: "y" }]
    ] as const) expect((await adminApi(server, "POST", p, body)).body.code, JSON.stringify([p, body])).toBe(-14)
    const parentId = after.at(-2)!.codeId
    expect(await adminApi(server, "DELETE", `/enterprises/100008/codes/custStatus/${parentId}`)).toMatchObject({ status: 400, body: { code: -14 } })
    expect((await adminApi(server, "DELETE", `/enterprises/100008/codes/custStatus/${after.at(-1)!.codeId}`)).status).toBe(200)
    expect((await adminApi(server, "DELETE", `/enterprises/100008/codes/custStatus/${parentId}`)).status).toBe(200)
    expect(await codes("custStatus")).toEqual(before)
    // another enterprise's code is not found through this one
    expect(await adminApi(server, "DELETE", `/enterprises/100008/codes/custStatus/${theirs[0]!.codeId}`)).toMatchObject({ status: 404, body: { code: -11 } })
    expect(await codes("custStatus", other)).toEqual(theirs)

    // replace: codes that stay keep their ids; a list with a loop or a duplicate is refused
    const replaced = await adminApi(server, "PUT", "/enterprises/100008/codes/custStatus", { items: [{ code: "2", name: "有意向" }, { code: "9", name: "新的" }] })
    expect(replaced.status).toBe(200)
    const now = await codes("custStatus")
    expect(now.map((r) => [r.codeCode, r.codeName])).toEqual([["2", "有意向"], ["9", "新的"]])
    expect(now[0]!.codeId).toBe(before[1]!.codeId)
    for (const items of [[{ code: "a", name: "A", parent: "b" }, { code: "b", name: "B", parent: "a" }], [{ code: "a", name: "A" }, { code: "a", name: "B" }], Array.from({ length: 201 }, (_, i) => ({ code: `c${i}`, name: "n" }))])
      expect(await adminApi(server, "PUT", "/enterprises/100008/codes/custStatus", { items })).toMatchObject({ status: 400, body: { code: -14 } })
    expect(await codes("custStatus")).toEqual(now)

    // a new type is a new list; reset gives the configuration's list back
    expect((await adminApi(server, "POST", "/enterprises/100008/codes/custLevel", { code: "A", name: "A级" })).status).toBe(201)
    expect((await codes("custLevel")).map((r) => r.codeName)).toEqual(["A级"])
    expect(await codes("custLevel", other)).toEqual([])
    const reset = await adminApi(server, "DELETE", "/enterprises/100008/codes/custStatus")
    expect(reset.status).toBe(200)
    expect((await codes("custStatus")).map((r) => r.codeName)).toEqual(before.map((r) => r.codeName))
    const lists = (await adminApi(server, "GET", "/enterprises/100008/codes")).body.items as Array<{ codeType: string; owner: string }>
    expect(lists.map((l) => [l.codeType, l.owner])).toEqual([["cpType", "config"], ["custLevel", "admin"], ["custSex", "config"], ["custSource", "config"], ["custStatus", "config"], ["custType", "config"]])
    expect(await adminApi(server, "GET", "/enterprises/999999/codes/custStatus")).toMatchObject({ status: 404, body: { code: -11 } })
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
  })

  it("a changed config applies at the next start to lists the admin API has not edited; codes that stay keep their ids", async () => {
    const dataDir = tempDir()
    const start = async (crm: Record<string, unknown>) =>
      startServer(await Effect.runPromise(loadConfig({ env: {}, overrides: { port: 0, host: "127.0.0.1", dataDir, logLevel: "error", crm } })))
    const read = async (s: { url: string }, codeType: string) => (await callApi(s, { ...creds(), method: "getCodes", codeType })).rows as Array<Row>
    const first = await start({})
    let status: Array<Row>
    try {
      status = await read(first, "custStatus")
      expect((await adminApi({ url: first.url, dataDir }, "POST", "/enterprises/100008/codes/custType", { code: "own", name: "自定义" })).status).toBe(201)
    } finally {
      await first.close()
    }
    const second = await start({ codes: { custStatus: [{ code: "2", name: "有意向" }, { code: "new", name: "新增" }], custType: [{ code: "t", name: "配置的" }] } })
    try {
      const now = await read(second, "custStatus")
      expect(now.map((r) => [r.codeCode, r.codeName])).toEqual([["2", "有意向"], ["new", "新增"]])
      expect(now[0]!.codeId).toBe(status[1]!.codeId)
      expect((await read(second, "custType")).map((r) => r.codeCode)).toEqual(["1", "2", "3", "own"])
    } finally {
      await second.close()
    }
  })

  it("the config is validated at start: a code list with an unknown parent or an unknown field label stops it, naming the key", async () => {
    const bad = [
      { crm: { codes: { custStatus: [{ code: "a", name: "A", parent: "zz" }] } } },
      { crm: { fields: { custNope: "x" } } },
      { crm: { enterprises: { "12": { fields: {} } } } },
      { crm: { codes: { "bad type": [] } } }
    ]
    for (const overrides of bad) {
      const result = await Effect.runPromise(Effect.either(loadConfig({ env: {}, overrides })))
      expect(result._tag, JSON.stringify(overrides)).toBe("Left")
      if (result._tag === "Left") expect(result.left.message).toMatch(/config key "crm\./)
    }
  })
})
