/** Extensions (§2.1.1, §2.1.2, §2.1.11, §2.1.12, §2.2.4, §2.11.*): every method's success and failure paths. */
import Database from "better-sqlite3"
import * as path from "node:path"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Passwords } from "../src/auth/Passwords.js"
import { ExtensionsRepo } from "../src/extensions/ExtensionsRepo.js"
import { ADMIN, asAdmin, callApi, creds, startTestServer, type TestServer } from "./support/TestServer.js"

let server: TestServer
beforeAll(async () => {
  server = await startTestServer()
})
afterAll(() => server.close())

interface Row {
  exteId: number
  exteExtension: string
  exteSuffix: number
  exteName: string
  exteMobile: string
  exteinMobileRule: number
  statustext: string
  exteStatus: number
  exteShowPhone: string
  exteMemo: string
  exteMemo5: string
}
const list = async (as = creds()) => (await callApi(server, { ...as, method: "getExtensions" })).rows as Array<Row>
const bySuffix = async (suffix: number) => (await list()).find((r) => r.exteSuffix === suffix)
const eventsOf = (type: string) => {
  const db = new Database(path.join(server.dataDir, "bridge.db"), { readonly: true })
  try {
    return db.prepare("SELECT type, enterprise, source, data FROM events WHERE type = ? ORDER BY id").all(type) as Array<{ data: string; enterprise: string; source: string }>
  } finally {
    db.close()
  }
}

/** A second enterprise with its own admin, created through the app's own services. */
const otherEnterprise = async () => {
  await server.runtime.runPromise(
    Effect.gen(function* () {
      const repo = yield* ExtensionsRepo
      const passwords = yield* Passwords
      yield* repo.ensureEnterprise("200001", "别的企业")
      yield* repo.insert("200001", 800, { password_hash: yield* passwords.hashPlain("other-pw"), status: 2, name: "他人管理员" })
    })
  )
  return creds("200001800", "other-pw")
}

describe("getExtension (§2.1.1)", () => {
  it("answers every documented field and a sessionId", async () => {
    const body = await asAdmin(server, "getExtension")
    expect(body).toEqual({
      code: 0,
      message: "OK",
      httpStatus: 200,
      exteId: expect.any(Number),
      name: "管理员",
      extension: ADMIN.user,
      compNumber: "100008",
      compName: "测试企业",
      disablePhoneNum: 0,
      exteLoginType: 0,
      exteStatus: 2,
      sessionId: expect.stringMatching(/^voip_/)
    })
  })
})

describe("addExtension (§2.11.1)", () => {
  it("stores every field, answers exteId, and raises extension.created", async () => {
    const body = await asAdmin(server, "addExtension", {
      exteExtension: "401",
      exteName: "李四",
      extePassword: "pw401",
      exteMobile: "13800138000",
      exteinMobileRule: "1",
      exteStatus: "0",
      exteIsRecord: "1",
      exteMemo: "m1",
      exteMemo5: "m5",
      exteLoginName: "lisi",
      exteLoginType: "2",
      exteIsApp: "1",
      exte_deptId: "7",
      exte_shpId: "8",
      exte_transfer_shpId: "9"
    }, "form")
    expect(body).toMatchObject({ code: 0, exteId: expect.any(Number), extension: "100008401" })
    expect(body.password).toBeUndefined()
    const row = await bySuffix(401)
    expect(row).toMatchObject({ exteExtension: "100008401", exteName: "李四", exteMobile: "13800138000", exteinMobileRule: 1, statustext: "签入", exteMemo: "m1", exteMemo5: "m5" })
    expect((await callApi(server, { ...creds("100008401", "pw401"), method: "getExtension" })).code).toBe(0)
    const created = eventsOf("extension.created").map((e) => JSON.parse(e.data) as Row)
    expect(created.some((d) => d.exteExtension === "100008401")).toBe(true)
    expect(JSON.stringify(created)).not.toMatch(/password|scrypt/)
  })

  it("generates and returns a password when none is given", async () => {
    const body = await asAdmin(server, "addExtension", { exteExtension: "402" })
    expect(body.password).toMatch(/^\d{11}$/)
    expect((await callApi(server, { ...creds("100008402", String(body.password)), method: "getExtension" })).code).toBe(0)
  })

  it("of two concurrent adds of one suffix, exactly one succeeds and the other answers -10", async () => {
    const [a, b] = await Promise.all([
      asAdmin(server, "addExtension", { exteExtension: "403", extePassword: "a" }),
      asAdmin(server, "addExtension", { exteExtension: "403", extePassword: "b" })
    ])
    expect([a.code, b.code].sort()).toEqual([-10, 0])
    expect((await list()).filter((r) => r.exteSuffix === 403)).toHaveLength(1)
  })

  it.each([
    [{ exteExtension: "399" }, "exteExtension"],
    [{ exteExtension: "404", exteMobile: "12345" }, "exteMobile"],
    [{ exteExtension: "404", exteStatus: "5" }, "exteStatus"],
    [{ exteExtension: "404", exteName: "x".repeat(65) }, "exteName"]
  ])("refuses %o with -14 naming %s, storing nothing", async (params, param) => {
    const body = await asAdmin(server, "addExtension", params)
    expect(body.code).toBe(-14)
    expect(body.message).toMatch(new RegExp(`^parameter ${param}: `))
    expect(await bySuffix(404)).toBeUndefined()
  })
})

describe("editExtension / delExtension / initExtensionPassword (§2.11.2–2.11.4)", () => {
  it("edits fields, including the suffix and the password", async () => {
    const { exteId } = await asAdmin(server, "addExtension", { exteExtension: "410", extePassword: "old" })
    const body = await asAdmin(server, "editExtension", { exteId: String(exteId), exteExtension: "411", exteName: "王五", extePassword: "new", exteMemo2: "memo" })
    expect(body).toEqual({ code: 0, message: "OK", httpStatus: 200 })
    expect(await bySuffix(410)).toBeUndefined()
    expect(await bySuffix(411)).toMatchObject({ exteName: "王五", exteExtension: "100008411" })
    expect((await callApi(server, { ...creds("100008411", "old"), method: "getExtension" })).code).toBe(-2)
    expect((await callApi(server, { ...creds("100008411", "new"), method: "getExtension" })).code).toBe(0)
    expect(eventsOf("extension.updated").length).toBeGreaterThan(0)
  })

  it("answers -10 moving onto a taken suffix, -11 for an unknown exteId, -14 for a bad one", async () => {
    const { exteId } = await asAdmin(server, "addExtension", { exteExtension: "412", extePassword: "x" })
    expect(await asAdmin(server, "editExtension", { exteId: String(exteId), exteExtension: "800" })).toMatchObject({ code: -10 })
    expect(await bySuffix(412)).toBeDefined()
    expect(await asAdmin(server, "editExtension", { exteId: "999999", exteName: "x" })).toMatchObject({ code: -11 })
    expect(await asAdmin(server, "editExtension", { exteId: "abc" })).toMatchObject({ code: -14, message: expect.stringMatching(/^parameter exteId/) })
    expect(await asAdmin(server, "editExtension", {})).toMatchObject({ code: -14, message: "parameter exteId: is missing" })
  })

  it("keeps at least one administrator", async () => {
    const me = await asAdmin(server, "getExtension")
    expect(await asAdmin(server, "editExtension", { exteId: String(me.exteId), exteStatus: "0" })).toMatchObject({
      code: -14,
      message: "parameter exteStatus: the enterprise must keep at least one administrator"
    })
    expect(await asAdmin(server, "delExtension", { exteId: String(me.exteId) })).toMatchObject({ code: -14 })
  })

  it("deletes, after which the extension can neither log in nor be deleted again", async () => {
    const { exteId } = await asAdmin(server, "addExtension", { exteExtension: "420", extePassword: "gone" })
    expect((await asAdmin(server, "delExtension", { exteId: String(exteId) })).code).toBe(0)
    expect(await bySuffix(420)).toBeUndefined()
    expect((await callApi(server, { ...creds("100008420", "gone"), method: "getExtension" })).code).toBe(-2)
    expect((await asAdmin(server, "delExtension", { exteId: String(exteId) })).code).toBe(-11)
    expect(eventsOf("extension.deleted").some((e) => JSON.parse(e.data).exteId === exteId)).toBe(true)
  })

  it("resets a password and answers the new one", async () => {
    const { exteId } = await asAdmin(server, "addExtension", { exteExtension: "421", extePassword: "before" })
    const body = await asAdmin(server, "initExtensionPassword", { exteId: String(exteId) })
    expect(body.password).toMatch(/^\d{11}$/)
    expect((await callApi(server, { ...creds("100008421", "before"), method: "getExtension" })).code).toBe(-2)
    expect((await callApi(server, { ...creds("100008421", String(body.password)), method: "getExtension" })).code).toBe(0)
    expect((await asAdmin(server, "initExtensionPassword", { exteId: "1" })).code).toBe(-11)
  })
})

describe("registerExtension (§2.1.12)", () => {
  it("allocates the lowest free suffix and answers a working password", async () => {
    const body = await asAdmin(server, "registerExtension")
    expect(body).toMatchObject({ code: 0, extension: expect.stringMatching(/^100008[4-8]\d\d$/), password: expect.stringMatching(/^\d{11}$/) })
    const taken = new Set((await list()).map((r) => r.exteSuffix))
    const suffix = Number(String(body.extension).slice(6))
    for (let s = 400; s < suffix; s++) expect(taken.has(s)).toBe(true)
    expect((await callApi(server, { ...creds(String(body.extension), String(body.password)), method: "getExtension" })).code).toBe(0)
  })

  it("answers -12 when every suffix from 400 to 899 is taken", async () => {
    const other = await otherEnterprise()
    const db = new Database(path.join(server.dataDir, "bridge.db"))
    const insert = db.prepare(`INSERT INTO extensions (exte_id, comp_number, suffix, extension, password_hash, created_at, updated_at)
                               VALUES (?, '200001', ?, ?, 'x', 0, 0)`)
    db.transaction(() => {
      for (let s = 400; s <= 899; s++) if (s !== 800) insert.run(9_000_000 + s, s, `200001${s}`)
    })()
    db.close()
    expect(await callApi(server, { ...other, method: "registerExtension" })).toMatchObject({ code: -12, message: expect.stringMatching(/no free extension/) })
  })

  it("is refused (-5) to a non-admin", async () => {
    await asAdmin(server, "addExtension", { exteExtension: "430", extePassword: "agent" })
    expect((await callApi(server, { ...creds("100008430", "agent"), method: "registerExtension" })).code).toBe(-5)
  })
})

describe("setExteMobile / setShowPhone / setUserCheckInOut", () => {
  it("sets an extension's mobile (§2.11.8), validating it", async () => {
    const { exteId } = await asAdmin(server, "addExtension", { exteExtension: "440", extePassword: "m" })
    expect((await asAdmin(server, "setExteMobile", { exteId: String(exteId), phone: "+86 139-0000-1111" })).code).toBe(0)
    expect((await bySuffix(440))?.exteMobile).toBe("13900001111")
    expect(await asAdmin(server, "setExteMobile", { exteId: String(exteId), phone: "123" })).toMatchObject({ code: -14, message: expect.stringMatching(/^parameter phone/) })
    expect(await asAdmin(server, "setExteMobile", { exteId: "5", phone: "13900001111" })).toMatchObject({ code: -11 })
  })

  it("lets an agent change its own settings but not another's (-5)", async () => {
    const { exteId } = await asAdmin(server, "addExtension", { exteExtension: "441", extePassword: "self" })
    const agent = creds("100008441", "self")
    expect((await callApi(server, { ...agent, method: "setExteMobile", exteId: String(exteId), phone: "13900002222" })).code).toBe(0)
    const admin = await asAdmin(server, "getExtension")
    expect((await callApi(server, { ...agent, method: "setExteMobile", exteId: String(admin.exteId), phone: "13900002222" })).code).toBe(-5)
    expect((await callApi(server, { ...agent, method: "setShowPhone", extension: ADMIN.user, phone: "02363846384" })).code).toBe(-5)
    expect((await callApi(server, { ...agent, method: "setUserCheckInOut", exten: ADMIN.user, status: "1" })).code).toBe(-5)
  })

  it("sets the outbound display number (§2.2.4)", async () => {
    await asAdmin(server, "addExtension", { exteExtension: "442", extePassword: "s" })
    expect((await asAdmin(server, "setShowPhone", { extension: "100008442", phone: "023-63846384" })).code).toBe(0)
    expect((await bySuffix(442))?.exteShowPhone).toBe("02363846384")
    expect((await asAdmin(server, "setShowPhone", { extension: "100008999", phone: "02363846384" })).code).toBe(-11)
    expect((await asAdmin(server, "setShowPhone", { phone: "not a number" })).code).toBe(-14)
  })

  it("checks in and out (§2.1.11); statustext follows", async () => {
    await asAdmin(server, "addExtension", { exteExtension: "443", extePassword: "c" })
    const agent = creds("100008443", "c")
    expect((await callApi(server, { ...agent, method: "setUserCheckInOut", status: "1" })).code).toBe(0)
    expect((await bySuffix(443))?.statustext).toBe("签出")
    expect((await asAdmin(server, "setUserCheckInOut", { exten: "100008443", status: "0" })).code).toBe(0)
    expect((await bySuffix(443))?.statustext).toBe("签入")
    expect(await callApi(server, { ...agent, method: "setUserCheckInOut", status: "2" })).toMatchObject({ code: -14, message: expect.stringMatching(/^parameter status/) })
    expect(eventsOf("extension.checked_out").length).toBeGreaterThan(0)
  })

  it("shows 禁用 for a disabled extension", async () => {
    await asAdmin(server, "addExtension", { exteExtension: "444", extePassword: "d", exteStatus: "1" })
    expect((await bySuffix(444))?.statustext).toBe("禁用")
  })
})

describe("getExtensions (§2.1.2 / §2.11.5)", () => {
  it("carries the fields of both sections, in `extension` and `rows`", async () => {
    const body = await asAdmin(server, "getExtensions")
    expect(body.extension).toEqual(body.rows)
    expect(body.total).toBe((body.rows as Array<Row>).length)
    const admin = (body.rows as Array<Row>).find((r) => r.exteExtension === ADMIN.user)
    expect(admin).toMatchObject({ exteId: expect.any(Number), exteName: "管理员", exteMobile: "", exteinMobileRule: 0, statustext: "签入" })
  })
})

describe("tenant isolation", () => {
  it("an admin of another enterprise can neither see nor change ours", async () => {
    const other = await otherEnterprise().catch(() => creds("200001800", "other-pw"))
    const ours = await asAdmin(server, "getExtension")
    const theirs = (await callApi(server, { ...other, method: "getExtensions" })).rows as Array<Row>
    expect(theirs.every((r) => r.exteExtension.startsWith("200001"))).toBe(true)
    expect((await callApi(server, { ...other, method: "editExtension", exteId: String(ours.exteId), exteName: "hacked" })).code).toBe(-11)
    expect((await callApi(server, { ...other, method: "delExtension", exteId: String(ours.exteId) })).code).toBe(-11)
    expect((await callApi(server, { ...other, method: "initExtensionPassword", exteId: String(ours.exteId) })).code).toBe(-11)
    expect((await callApi(server, { ...other, method: "setShowPhone", extension: ADMIN.user, phone: "02300000000" })).code).toBe(-11)
    expect((await callApi(server, { ...other, method: "setUserCheckInOut", exten: ADMIN.user, status: "1" })).code).toBe(-11)
    expect((await callApi(server, { ...other, method: "addBlacklists", phones: "13700000000" })).code).toBe(0)
    expect((await asAdmin(server, "getBlacklists")).blaPhone).not.toContain("13700000000")
    expect((await asAdmin(server, "getExtension")).name).toBe("管理员")
  })
})
