/** getAreaPhone (§2.4.4): mobiles (region + carrier), landlines (area code → city), the usual prefixes, and junk. */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { asAdmin, startTestServer, type TestServer } from "./support/TestServer.js"

let server: TestServer
beforeAll(async () => {
  server = await startTestServer()
})
afterAll(() => server.close())

describe("getAreaPhone", () => {
  it.each([
    ["13800138000", { area: "北京市", phone: "13800138000", areaCode: "", serviceName: "中国移动" }],
    ["+86 130-0236-7525", { area: "重庆市", phone: "13002367525", areaCode: "", serviceName: "中国联通" }],
    ["008613800138000", { area: "北京市", phone: "13800138000", serviceName: "中国移动" }],
    ["023-63846384", { area: "重庆市", phone: "02363846384", areaCode: "023", serviceName: "固话" }],
    ["02363846384", { area: "重庆市", phone: "02363846384", areaCode: "023" }],
    ["010 1234 5678", { area: "北京市", phone: "01012345678", areaCode: "010" }],
    ["075512345678", { area: "广东省深圳市", phone: "075512345678", areaCode: "0755" }]
  ])("looks up %s", async (phone, expected) => {
    const body = await asAdmin(server, "getAreaPhone", { phone })
    expect(body).toMatchObject({ code: 0, ...expected, oldphone: phone })
  })

  it.each(["abc", "12345", "+999 1", "138001380001234567"])("refuses junk %s with -14 naming phone", async (phone) => {
    const body = await asAdmin(server, "getAreaPhone", { phone })
    expect(body.code).toBe(-14)
    expect(body.message).toMatch(/^parameter phone: expected a telephone number/)
  })

  it("requires phone", async () => {
    expect(await asAdmin(server, "getAreaPhone")).toMatchObject({ code: -14, message: "parameter phone: is missing" })
  })
})
