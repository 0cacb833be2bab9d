/**
 * Customers (§2.1.9, §2.6.1, §2.6.2, §2.6.4, §2.6.5, §2.7.3) and sales (§2.8.*) over real HTTP:
 * every field, 20 phones, every filter, wildcards and injection strings as plain text, locks,
 * enterprise isolation, and an event per change.
 */
import * as path from "node:path"
import Database from "better-sqlite3"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Passwords } from "../src/auth/Passwords.js"
import { ExtensionsRepo } from "../src/extensions/ExtensionsRepo.js"
import { asAdmin, callApi, creds, type Params, startTestServer, type TestServer } from "./support/TestServer.js"

let server: TestServer
const agent = creds("100008401", "agent-pw")
const other = creds("100008402", "other-pw")
let stranger: ReturnType<typeof creds>

interface Customer {
  custId: number
  custName: string
  custCorpName: string
  custStatus: string
  custType: string
  custIsLock: number
  custBirthday: string
  custCreateTime: string
  custLastCallTime: string | null
  [k: string]: unknown
}
interface Phone {
  cp_custId: number
  cpPhone: string
  cpType: string
  cpLinkMan: string
}
interface Page {
  code: number
  success: boolean
  recordTotal: number
  rows_customer: Array<Customer>
  rows_customerphone: Array<Phone>
  message: string
}

const save = async (params: Params, who = creds(), method = "saveCustomer") => (await callApi(server, { ...who, method, ...params }, "form")) as unknown as { code: number; custId: number; success: boolean; message: string }
const page = async (params: Params = {}, who = creds()) => (await callApi(server, { ...who, method: "getCustomersPage", limit: "1000", ...params }, "form")) as unknown as Page
const names = (p: Page) => p.rows_customer.map((c) => c.custName).sort()
const getcustomer = async (phoneNum: string, who = creds()) =>
  (await callApi(server, { ...who, method: "getcustomer", phoneNum }, "form")) as unknown as {
    code: number
    customer: Customer | null
    customerphone: Array<Phone>
    customersales: Array<Record<string, unknown>>
    worktype: Array<unknown>
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
const events = (type: string) => dbAll<{ data: string; enterprise: string }>("SELECT data, enterprise FROM events WHERE type = ? ORDER BY id", type).map((e) => ({ ...e, data: JSON.parse(e.data) as Record<string, unknown> }))
const customerCount = () => dbAll<{ n: number }>("SELECT count(*) AS n FROM customers")[0]!.n

/** Free text that must be stored and searched as itself. */
const HOSTILE = ["' OR '1'='1", "x'); DROP TABLE customers; --", "100%", "a_b", "\\", "%", "_", "\\%"]

beforeAll(async () => {
  server = await startTestServer()
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
  stranger = creds("200001800", "stranger-pw")
  // the filter fixtures: 3 of status A / type T1, 2 of status B / type T2
  for (let i = 0; i < 5; i++)
    expect(
      (
        await save({
          custName: `筛选${i}`,
          custCorpName: `筛选公司${i}`,
          custStatus: i < 3 ? "A" : "B",
          custType: i < 3 ? "T1" : "T2",
          custBirthday: `1990-0${i + 1}-15`,
          custBirthdayType: "1",
          cpPhone: `1590000000${i}`
        })
      ).code
    ).toBe(0)
})
afterAll(() => server.close())

describe("saveCustomer / savecustomer (§2.6.4, §2.1.9)", () => {
  it("stores every field, Chinese text as sent, and answers the new custId", async () => {
    const fields = {
      custName: "张三",
      custCorpName: "重庆某某科技有限公司",
      custStatus: "意向客户",
      custQQ: "10001",
      custAddr: "重庆市渝北区 1 号",
      custBirthdayType: "2",
      custBirthday: "1980-08-15",
      custSource: "网络",
      custAge: "44",
      custArea: "西南",
      custSex: "男",
      custMemo: "备注：老客户 😀",
      custType: "VIP",
      custOther1: "其它一",
      custOther2: "其它二",
      custOther3: "其它三"
    }
    const saved = await save({ ...fields, cpPhone: "+86 138-0013-8000" })
    expect(saved).toMatchObject({ code: 0, success: true, custId: expect.any(Number) })
    const got = await getcustomer("13800138000")
    expect(got.code).toBe(0)
    expect(got.customer).toMatchObject({
      custId: saved.custId,
      custName: "张三",
      custCorpName: "重庆某某科技有限公司",
      custStatus: "意向客户",
      custQQ: "10001",
      custAddr: "重庆市渝北区 1 号",
      custBirthdayType: 2,
      // a lunar birthday as given
      custBirthday: "1980-08-15",
      custSource: "网络",
      custAge: 44,
      custArea: "西南",
      custSex: "男",
      custMemo: "备注：老客户 😀",
      custType: "VIP",
      custOther1: "其它一",
      custOther2: "其它二",
      custOther3: "其它三",
      custIsLock: 0,
      custLastCallTime: null
    })
    // stored as given; the first phone's type defaults to 常用电话
    expect(got.customerphone).toEqual([{ cp_custId: saved.custId, cpPhone: "+86 138-0013-8000", cpType: "常用电话", cpLinkMan: "" }])
    expect(got.worktype).toEqual([])
    expect(events("customer.saved").at(-1)).toMatchObject({ enterprise: "100008", data: { custId: saved.custId, created: true, by: "100008800", customer: { custName: "张三" } } })
  })

  it("takes 20 phones as cpPhone[i]/cpType[i]/cpLinkMan[i] with recordCount_voip_customer_phone, each one finding the customer", async () => {
    const params: Record<string, string> = { custName: "二十个号码", recordCount_voip_customer_phone: "20" }
    for (let i = 0; i < 20; i++) {
      params[`cpPhone[${i}]`] = i % 2 === 0 ? `0086 139-0000-00${String(i).padStart(2, "0")}` : `023 6384 63${String(i).padStart(2, "0")}`
      if (i > 0) params[`cpType[${i}]`] = `类型${i}`
      params[`cpLinkMan[${i}]`] = `联系人${i}`
    }
    const saved = await save(params, agent, "savecustomer")
    expect(saved.code).toBe(0)
    const got = await getcustomer("13900000006")
    expect(got.customer?.custId).toBe(saved.custId)
    expect(got.customerphone).toHaveLength(20)
    expect(got.customerphone[0]).toEqual({ cp_custId: saved.custId, cpPhone: "0086 139-0000-0000", cpType: "常用电话", cpLinkMan: "联系人0" })
    expect(got.customerphone[19]).toEqual({ cp_custId: saved.custId, cpPhone: "023 6384 6319", cpType: "类型19", cpLinkMan: "联系人19" })
    for (const [i, asked] of [[0, "+8613900000000"], [5, "02363846305"], [5, "2363846305"], [18, "139 0000 0018"]] as const)
      expect((await getcustomer(asked)).customer?.custId, `${i} as ${asked}`).toBe(saved.custId)
  })

  it("updates the whole form of an existing customer, replaces its phones when given and keeps them when not", async () => {
    const { custId } = await save({ custName: "改前", custMemo: "旧", cpPhone: ["13700000001", "13700000002"] })
    expect((await save({ custId: String(custId), custName: "改后", custStatus: "成交" })).custId).toBe(custId)
    let got = await getcustomer("13700000002")
    expect(got.customer).toMatchObject({ custId, custName: "改后", custStatus: "成交", custMemo: "" })
    expect(got.customerphone.map((p) => p.cpPhone)).toEqual(["13700000001", "13700000002"])
    expect((await save({ custId: String(custId), custName: "改后", cpPhone: "13700000003" })).code).toBe(0)
    got = await getcustomer("13700000003")
    expect(got.customerphone.map((p) => p.cpPhone)).toEqual(["13700000003"])
    expect((await getcustomer("13700000001")).customer).toBeNull()
    expect(events("customer.saved").at(-1)).toMatchObject({ data: { custId, created: false } })
  })

  it("answers -11 for a custId of no customer of the caller's enterprise, and stores nothing", async () => {
    const before = customerCount()
    expect((await save({ custId: "123456789", custName: "x" })).code).toBe(-11)
    const theirs = await save({ custName: "别人的客户", cpPhone: "13300000001" }, stranger)
    expect(theirs.code).toBe(0)
    expect((await save({ custId: String(theirs.custId), custName: "篡改" })).code).toBe(-11)
    expect((await getcustomer("13300000001", stranger)).customer?.custName).toBe("别人的客户")
    expect(customerCount()).toBe(before + 1)
    await healthy()
  })

  it("refuses what is no phone number, a count that disagrees with the phones, and more than 100 phones, storing nothing of what it refused", async () => {
    const before = customerCount()
    expect(await save({ custName: "x", cpPhone: "abc" })).toMatchObject({ code: -14, message: expect.stringContaining("cpPhone[0]") })
    expect(await save({ custName: "x", cpPhone: "13800000000' OR 1=1" })).toMatchObject({ code: -14 })
    // an empty (or left out) cpPhone[1] keeps its place: it is named, not silently skipped
    expect(await save({ custName: "x", "cpPhone[0]": "13800000001", "cpPhone[1]": "", "cpPhone[2]": "13800000003", recordCount_voip_customer_phone: "3" })).toMatchObject({
      code: -14,
      message: expect.stringContaining("cpPhone[1]")
    })
    expect(await save({ custName: "x", "cpPhone[0]": "13800000001", "cpPhone[1]": "13800000003", recordCount_voip_customer_phone: "3" })).toMatchObject({
      code: -14,
      message: expect.stringContaining("recordCount_voip_customer_phone")
    })
    expect(await save({ custName: "x", cpPhone: "13800000001", "cpType[0]": "a", "cpType[1]": "b" })).toMatchObject({ code: -14, message: expect.stringContaining("cpType") })
    expect((await save({ custName: "x", cpPhone: Array.from({ length: 101 }, (_, i) => `1380000${String(i).padStart(4, "0")}`) })).code).toBe(-12)
    // a far index holds no places: nothing is allocated for it, and a near one still counts against the maximum
    expect((await save({ custName: "x", "cpPhone[999999999]": "13800000001", "cpType[999999999]": "t" })).code).toBe(0)
    expect((await save({ custName: "x", "cpPhone[999]": "13800000001" })).code).toBe(-12)
    expect((await save({ custName: "x".repeat(101) })).code).toBe(-14)
    expect((await save({ custName: "x", custBirthday: "1990-02-30" })).code).toBe(-14)
    expect((await save({ custName: "x", custBirthdayType: "3" })).code).toBe(-14)
    expect(customerCount()).toBe(before + 1)
    await healthy()
  })
})

describe("getCustomersPage (§2.6.1)", () => {
  it("pages the enterprise's customers newest first with their phones, start/limit and the page maximum", async () => {
    const all = await page()
    expect(all).toMatchObject({ code: 0, success: true })
    expect(all.recordTotal).toBe(all.rows_customer.length)
    const ids = all.rows_customer.map((c) => c.custId)
    expect(ids).toEqual([...ids].sort((a, b) => b - a))
    const second = await page({ start: "2", limit: "2" })
    expect(second.rows_customer.map((c) => c.custId)).toEqual(ids.slice(2, 4))
    expect(second.recordTotal).toBe(all.recordTotal)
    // the phones of the page's customers, in the page's order
    expect([...new Set(second.rows_customerphone.map((p) => p.cp_custId))]).toEqual(ids.slice(2, 4).filter((id) => second.rows_customerphone.some((p) => p.cp_custId === id)))
    expect((await page({ limit: "0" })).rows_customer).toEqual([])
    expect((await page({ start: "100000" })).rows_customer).toEqual([])
    expect((await page({ limit: "1001" })).code).toBe(-12)
  })

  it("filters by custStatus, custType and custIsLock, alone and together", async () => {
    expect(names(await page({ custStatus: "A" }))).toEqual(["筛选0", "筛选1", "筛选2"])
    expect(names(await page({ custType: "T2" }))).toEqual(["筛选3", "筛选4"])
    expect(names(await page({ custStatus: "A", custType: "T2" }))).toEqual([])
    const { custId } = await save({ custName: "锁定筛选", custStatus: "L" })
    expect((await callApi(server, { ...creds(), method: "setCustomerLock", custId: String(custId), custIsLock: "1" })).code).toBe(0)
    expect(names(await page({ custIsLock: "1", custStatus: "L" }))).toEqual(["锁定筛选"])
    expect(names(await page({ custIsLock: "0", custStatus: "L" }))).toEqual([])
    expect((await page({ custIsLock: "1" })).rows_customer.every((c) => c.custIsLock === 1)).toBe(true)
    expect((await page({ custIsLock: "2" })).code).toBe(-14)
  })

  it("finds by findType cpPhone, custName and custCorpName with sqlwhere as the start of the value", async () => {
    expect(names(await page({ findType: "custName", sqlwhere: "筛选" }))).toEqual(["筛选0", "筛选1", "筛选2", "筛选3", "筛选4"])
    expect(names(await page({ findType: "custName", sqlwhere: "筛选3" }))).toEqual(["筛选3"])
    // Chinese in the query string as in a form body
    const viaGet = (await callApi(server, { ...creds(), method: "getCustomersPage", findType: "custName", sqlwhere: "筛选3" })) as unknown as Page
    expect(names(viaGet)).toEqual(["筛选3"])
    expect(names(await page({ findType: "custCorpName", sqlwhere: "筛选公司4" }))).toEqual(["筛选4"])
    // a phone however written: the whole number or its beginning
    expect(names(await page({ findType: "cpPhone", sqlwhere: "+86 159-0000-0002" }))).toEqual(["筛选2"])
    expect(names(await page({ findType: "cpPhone", sqlwhere: "159000000" }))).toEqual(["筛选0", "筛选1", "筛选2", "筛选3", "筛选4"])
    expect(names(await page({ findType: "cpPhone", sqlwhere: "159000000", custStatus: "B" }))).toEqual(["筛选3", "筛选4"])
    expect((await page({ sqlwhere: "x" })).code).toBe(-14)
    expect((await page({ findType: "custMemo", sqlwhere: "x" })).code).toBe(-14)
  })

  it("takes injection strings and LIKE wildcards in sqlwhere as text that matches only itself", async () => {
    const stored: Record<string, number> = {}
    for (const [i, text] of HOSTILE.entries()) stored[text] = (await save({ custName: `注入${text}`, custCorpName: `${text}公司`, custStatus: `S${i}`, custMemo: text, custOther1: text })).custId
    await save({ custName: "注入100x", custCorpName: "100x公司" })
    await save({ custName: "注入aXb", custCorpName: "aXb公司" })
    const total = (await page()).recordTotal
    for (const text of HOSTILE) {
      expect(names(await page({ findType: "custName", sqlwhere: `注入${text}` })), text).toEqual([`注入${text}`, ...HOSTILE.filter((t) => t !== text && t.startsWith(text)).map((t) => `注入${t}`)].sort())
      const byCorp = await page({ findType: "custCorpName", sqlwhere: `${text}公司` })
      expect(byCorp.rows_customer.map((c) => c.custId), text).toEqual([stored[text]])
      // not a phone number: no customer's
      expect((await page({ findType: "cpPhone", sqlwhere: text })).recordTotal, text).toBe(0)
      // as an exact filter value, too
      expect((await page({ custStatus: text })).recordTotal, text).toBe(0)
      expect((await page({ custType: text })).recordTotal, text).toBe(0)
      expect((await getcustomer(text)).customer, text).toBeNull()
    }
    // stored as sent
    const got = (await page({ findType: "custName", sqlwhere: "注入' OR" })).rows_customer
    expect(got).toHaveLength(1)
    expect(got[0]).toMatchObject({ custMemo: "' OR '1'='1", custOther1: "' OR '1'='1", custCorpName: "' OR '1'='1公司" })
    expect(dbAll("SELECT name FROM sqlite_master WHERE name = 'customers'")).toHaveLength(1)
    expect((await page()).recordTotal).toBe(total)
    await healthy()
  })

  it("filters by dateOpt 3 (created) and 2 (birthday) within startTime/endTime, and refuses a range without dateOpt or backwards", async () => {
    const now = Date.now()
    const fmt = (ms: number) => new Date(ms + 8 * 3600_000).toISOString().slice(0, 19).replace("T", " ")
    const created = await page({ dateOpt: "3", startTime: fmt(now - 3600_000), endTime: fmt(now + 3600_000) })
    expect(created.recordTotal).toBe((await page()).recordTotal)
    expect((await page({ dateOpt: "3", endTime: "2000-01-01 00:00:00" })).recordTotal).toBe(0)
    expect(names(await page({ dateOpt: "2", startTime: "1990-02-01", endTime: "1990-03-31 23:59:59" }))).toEqual(["筛选1", "筛选2"])
    expect(names(await page({ dateOpt: "2", startTime: "1990-05-01" }))).toEqual(["筛选4"])
    expect((await page({ startTime: "2026-01-01" })).code).toBe(-14)
    expect((await page({ dateOpt: "3", startTime: "2026-02-01", endTime: "2026-01-01" })).code).toBe(-14)
    expect((await page({ dateOpt: "4" })).code).toBe(-14)
    expect((await page({ dateOpt: "1", startTime: "2026-13-01" })).code).toBe(-14)
  })

  it("sorts by an allowed sortfield, either way, and answers -14 for any other", async () => {
    const byName = (await page({ findType: "custName", sqlwhere: "筛选", sortfield: "custName" })).rows_customer.map((c) => c.custName)
    expect(byName).toEqual(["筛选0", "筛选1", "筛选2", "筛选3", "筛选4"])
    const desc = (await page({ findType: "custName", sqlwhere: "筛选", sortfield: "custBirthday desc" })).rows_customer.map((c) => c.custName)
    expect(desc).toEqual(["筛选4", "筛选3", "筛选2", "筛选1", "筛选0"])
    for (const field of ["custId", "custCreateTime", "custLastCallTime", "custCorpName", "custStatus", "custType asc"]) expect((await page({ sortfield: field })).code, field).toBe(0)
    for (const bad of ["cust_id", "custName; DROP TABLE customers", "1", "custName desc, 1", "constructor", "custName sideways"]) {
      const r = await page({ sortfield: bad })
      expect(r.code, bad).toBe(-14)
      expect(r.message).toContain("sortfield")
    }
    await healthy()
  })
})

describe("delcustomer (§2.6.5)", () => {
  it("deletes one customer with its phones and sales, by either spelling; -11 when absent", async () => {
    const { custId } = await save({ custName: "待删", cpPhone: "13611110000" })
    expect((await callApi(server, { ...creds(), method: "setCustomerSales", custId: String(custId), status: "1" })).code).toBe(0)
    expect((await callApi(server, { ...creds(), method: "delcustomer", custId: String(custId) })).code).toBe(0)
    expect((await getcustomer("13611110000")).customer).toBeNull()
    expect(dbAll("SELECT 1 FROM customer_phones WHERE cust_id = ? UNION ALL SELECT 1 FROM customer_sales WHERE cust_id = ?", custId, custId)).toEqual([])
    expect(events("customer.deleted").at(-1)).toMatchObject({ data: { custId, by: "100008800" } })
    expect((await callApi(server, { ...creds(), method: "delcustomer", custId: String(custId) })).code).toBe(-11)
    const again = await save({ custName: "待删2" })
    expect((await callApi(server, { ...creds(), method: "delcustomer.html", custId: String(again.custId) })).code).toBe(0)
    // another enterprise's customer is none of ours
    const theirs = await save({ custName: "别人的" }, stranger)
    expect((await callApi(server, { ...creds(), method: "delcustomer", custId: String(theirs.custId) })).code).toBe(-11)
    expect((await page({}, stranger)).rows_customer.map((c) => c.custId)).toContain(theirs.custId)
  })
})

describe("setCustomerLock (§2.7.3)", () => {
  it("stops other agents' edits, deletes, sales and unlocks with -5; the locker and an administrator may", async () => {
    const { custId } = await save({ custName: "锁", cpPhone: "13622220000" }, agent)
    const lock = (who: ReturnType<typeof creds>, v: string) => callApi(server, { ...who, method: "setCustomerLock", custId: String(custId), custIsLock: v })
    expect((await lock(agent, "1")).code).toBe(0)
    expect(events("customer.locked").at(-1)).toMatchObject({ data: { custId, custIsLock: 1, by: "100008401" } })
    expect((await save({ custId: String(custId), custName: "别人改" }, other)).code).toBe(-5)
    expect((await callApi(server, { ...other, method: "delcustomer", custId: String(custId) })).code).toBe(-5)
    expect((await callApi(server, { ...other, method: "setCustomerSales", custId: String(custId), status: "1" })).code).toBe(-5)
    expect((await lock(other, "0")).code).toBe(-5)
    expect((await lock(other, "1")).code).toBe(-5)
    expect((await getcustomer("13622220000", other)).customer).toMatchObject({ custName: "锁", custIsLock: 1 })
    // the locker edits; an administrator edits and unlocks
    expect((await save({ custId: String(custId), custName: "自己改", cpPhone: "13622220000" }, agent)).code).toBe(0)
    expect((await save({ custId: String(custId), custName: "管理员改", cpPhone: "13622220000" })).code).toBe(0)
    expect((await lock(creds(), "0")).code).toBe(0)
    expect((await save({ custId: String(custId), custName: "解锁后别人改", cpPhone: "13622220000" }, other)).code).toBe(0)
    expect((await callApi(server, { ...creds(), method: "setCustomerLock", custId: "999999", custIsLock: "1" })).code).toBe(-11)
    expect((await callApi(server, { ...creds(), method: "setCustomerLock", custId: String(custId), custIsLock: "2" })).code).toBe(-14)
    expect((await callApi(server, { ...stranger, method: "setCustomerLock", custId: String(custId), custIsLock: "1" })).code).toBe(-11)
  })
})

describe("after review: locks and numbers", () => {
  it("a sale of a locked customer cannot be moved away by another agent (-5); the locker may", async () => {
    const locked = await save({ custName: "锁着的", cpPhone: "13633330001" }, agent)
    const free = await save({ custName: "没锁的", cpPhone: "13633330002" }, other)
    const sale = (await callApi(server, { ...agent, method: "setCustomerSales", custId: String(locked.custId), status: "1" })) as unknown as { code: number; csId: number }
    expect(sale.code).toBe(0)
    expect((await callApi(server, { ...agent, method: "setCustomerLock", custId: String(locked.custId), custIsLock: "1" })).code).toBe(0)
    expect((await callApi(server, { ...other, method: "setCustomerSales", csId: String(sale.csId), custId: String(free.custId), status: "0" })).code).toBe(-5)
    expect(dbAll<{ cust_id: number; status: number }>("SELECT cust_id, status FROM customer_sales WHERE cs_id = ?", sale.csId)).toEqual([{ cust_id: locked.custId, status: 1 }])
    expect((await callApi(server, { ...agent, method: "setCustomerSales", csId: String(sale.csId), custId: String(free.custId), status: "1" })).code).toBe(0)
    expect(events("sale.saved").at(-1)).toMatchObject({ data: { csId: sale.csId, custId: free.custId, formerCustId: locked.custId } })
  })

  it("takes the seed's form: cpPhone beside cpPhone[0..n] is the first phone, not another one", async () => {
    const a = await save({ custName: "种子格式", cpPhone: "13644440001", "cpPhone[0]": "13644440001", "cpType[0]": "手机", "cpPhone[1]": "13644440002", "cpType[1]": "办公", recordCount_voip_customer_phone: "2" })
    expect(a.code).toBe(0)
    expect((await getcustomer("13644440002")).customerphone.map((p) => [p.cpPhone, p.cpType])).toEqual([
      ["13644440001", "手机"],
      ["13644440002", "办公"]
    ])
  })

  it("a later customer with the same number does not take the number over: calls, sales and getcustomer stay with the first", async () => {
    const first = await save({ custName: "原主", cpPhone: "13655550001" }, agent)
    expect((await callApi(server, { ...agent, method: "setCustomerLock", custId: String(first.custId), custIsLock: "1" })).code).toBe(0)
    expect((await save({ custName: "冒名", cpPhone: "136-5555-0001" }, other)).code).toBe(0)
    expect((await getcustomer("13655550001", other)).customer).toMatchObject({ custId: first.custId, custName: "原主" })
    const sale = (await callApi(server, { ...other, method: "setCustomerSales", phone: "13655550001", status: "1" })) as unknown as { code: number }
    expect(sale.code).toBe(-5)
  })
})

describe("getCustomerSales / setCustomerSales (§2.8)", () => {
  it("adds a sale (csId empty), updates it by csId, lists it by any of the customer's phones; -11 for unknown ids", async () => {
    const { custId } = await save({ custName: "签单客户", custType: "VIP", cpPhone: ["13633330000", "023-88889999"] })
    const added = await callApi(server, { ...agent, method: "setCustomerSales", custId: String(custId), status: "0", phone: "13633330000" })
    expect(added).toMatchObject({ code: 0, csId: expect.any(Number) })
    let sales = (await callApi(server, { ...creds(), method: "getCustomerSales", phoneNum: "02388889999" })).customersales as Array<Record<string, unknown>>
    expect(sales).toEqual([
      { csId: added.csId, cs_custId: custId, csExtension: "100008401", csCustType: "VIP", csStatus: 0, csPhone: "13633330000", csTime: expect.stringMatching(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/) }
    ])
    expect((await callApi(server, { ...creds(), method: "setCustomerSales", csId: String(added.csId), status: "1", custType: "成交", extension: "100008402" })).code).toBe(0)
    sales = (await getcustomer("13633330000")).customersales
    expect(sales).toMatchObject([{ csId: added.csId, csStatus: 1, csCustType: "成交", csExtension: "100008402" }])
    // by the customer's phone alone
    const byPhone = await callApi(server, { ...creds(), method: "setCustomerSales", phone: "+86 136 3333 0000", status: "1" })
    expect(byPhone.code).toBe(0)
    expect((await getcustomer("13633330000")).customersales).toHaveLength(2)
    expect(events("sale.saved").at(-1)).toMatchObject({ data: { csId: byPhone.csId, custId, created: true } })
    expect((await callApi(server, { ...creds(), method: "setCustomerSales", csId: "999999", status: "1" })).code).toBe(-11)
    expect((await callApi(server, { ...creds(), method: "setCustomerSales", custId: "999999", status: "1" })).code).toBe(-11)
    expect((await callApi(server, { ...creds(), method: "setCustomerSales", phone: "13000000000", status: "1" })).code).toBe(-11)
    expect((await callApi(server, { ...creds(), method: "setCustomerSales", status: "1" })).code).toBe(-14)
    expect((await callApi(server, { ...creds(), method: "setCustomerSales", custId: String(custId), status: "1", extension: "200001800" })).code).toBe(-11)
    // another enterprise sees neither the customer nor its sales, and cannot add to them
    expect((await callApi(server, { ...stranger, method: "getCustomerSales", phoneNum: "13633330000" })).customersales).toEqual([])
    expect((await callApi(server, { ...stranger, method: "setCustomerSales", custId: String(custId), status: "1" })).code).toBe(-11)
    expect((await callApi(server, { ...stranger, method: "setCustomerSales", csId: String(added.csId), status: "1" })).code).toBe(-11)
    expect((await callApi(server, { ...creds(), method: "getCustomerSales", phoneNum: "' OR 1=1 --" })).customersales).toEqual([])
  })
})

describe("enterprise isolation", () => {
  it("a second enterprise sees none of the first's customers by any filter, phone or id", async () => {
    const mine = await page()
    expect(mine.recordTotal).toBeGreaterThan(10)
    const theirs = await page({}, stranger)
    const myIds = new Set(mine.rows_customer.map((c) => c.custId))
    expect(theirs.rows_customer.some((c) => myIds.has(c.custId))).toBe(false)
    expect((await page({ custStatus: "A" }, stranger)).recordTotal).toBe(0)
    expect((await page({ findType: "custName", sqlwhere: "筛选" }, stranger)).recordTotal).toBe(0)
    expect((await page({ findType: "cpPhone", sqlwhere: "159" }, stranger)).recordTotal).toBe(0)
    expect((await getcustomer("15900000001", stranger)).customer).toBeNull()
    const id = String(mine.rows_customer[0]!.custId)
    expect((await callApi(server, { ...stranger, method: "delcustomer", custId: id })).code).toBe(-11)
    expect((await page()).recordTotal).toBe(mine.recordTotal)
    // and the events of one enterprise's changes name it
    expect(events("customer.saved").every((e) => e.enterprise === "100008" || e.enterprise === "200001")).toBe(true)
  })
})
