/** Blacklist (§2.2.6–2.2.8): comma lists with spaces, every number validated, idempotent. */
import * as path from "node:path"
import Database from "better-sqlite3"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { asAdmin, callApi, creds, startTestServer, type TestServer } from "./support/TestServer.js"

let server: TestServer
beforeAll(async () => {
  server = await startTestServer()
})
afterAll(() => server.close())

const listed = async () => (await asAdmin(server, "getBlacklists")).blaPhone as Array<string>

describe("blacklist", () => {
  it("adds the contract's example list (comma and space separated)", async () => {
    const body = await asAdmin(server, "addBlacklists", { phones: "13002300000, 13002300001" })
    expect(body).toMatchObject({ code: 0, added: 2 })
    expect(await listed()).toEqual(["13002300000", "13002300001"])
  })

  it("is idempotent: adding a listed number again adds nothing and is no error", async () => {
    const body = await asAdmin(server, "addBlacklists", { phones: "13002300000,13002300002，13002300002" })
    expect(body).toMatchObject({ code: 0, added: 1 })
    expect(await listed()).toEqual(["13002300000", "13002300001", "13002300002"])
  })

  it("answers rows with the time each number was added", async () => {
    const body = await asAdmin(server, "getBlacklists")
    expect(body.total).toBe(3)
    expect(body.rows).toContainEqual({ blaPhone: "13002300001", blaCreateTime: expect.stringMatching(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/) })
  })

  it("refuses the whole list when one number is invalid, naming it (-14)", async () => {
    const body = await asAdmin(server, "addBlacklists", { phones: "13002300009, 12ab34" })
    expect(body.code).toBe(-14)
    expect(body.message).toMatch(/^parameter phones\.1: expected a telephone number, got "12ab34"/)
    expect(await listed()).not.toContain("13002300009")
  })

  it("refuses an empty list (-14)", async () => {
    expect(await asAdmin(server, "addBlacklists", { phones: " , " })).toMatchObject({ code: -14 })
    expect(await asAdmin(server, "addBlacklists")).toMatchObject({ code: -14, message: "parameter phones: is missing" })
  })

  it("removes numbers; removing an absent one is no error", async () => {
    const body = await asAdmin(server, "delBlacklists", { phones: "13002300001, 13999999999" })
    expect(body).toMatchObject({ code: 0, removed: 1 })
    expect(await listed()).toEqual(["13002300000", "13002300002"])
  })

  it("lets any extension read the list, only admins change it (-5)", async () => {
    await asAdmin(server, "addExtension", { exteExtension: "401", extePassword: "agent" })
    const agent = creds("100008401", "agent")
    expect((await callApi(server, { ...agent, method: "getBlacklists" })).code).toBe(0)
    expect((await callApi(server, { ...agent, method: "addBlacklists", phones: "13100000000" })).code).toBe(-5)
    expect((await callApi(server, { ...agent, method: "delBlacklists", phones: "13002300000" })).code).toBe(-5)
    expect(await listed()).toContain("13002300000")
  })
})

describe("delBlacklists: by the normal form entries are matched by", () => {
  const rows = <A>(sql: string): Array<A> => {
    const db = new Database(path.join(server.dataDir, "bridge.db"), { readonly: true })
    try {
      return db.prepare(sql).all() as Array<A>
    } finally {
      db.close()
    }
  }
  const removedEvents = () =>
    rows<{ data: string }>(`SELECT data FROM events WHERE type = 'blacklist.removed' ORDER BY id`).map((r) => JSON.parse(r.data).phones as Array<string>)

  it("deleting 13800138000 removes the entry +86-138-0013-8000 that blocked it, and only it", async () => {
    const before = removedEvents().length
    expect(await asAdmin(server, "addBlacklists", { phones: "+86-138-0013-8000, 0086-139-0013-9000, 13700137000" })).toMatchObject({ code: 0, added: 3 })
    const body = await asAdmin(server, "delBlacklists", { phones: "13800138000, 0139-0013-9000" })
    expect(body).toMatchObject({ code: 0, removed: 2 })
    expect(await listed()).not.toContain("+8613800138000")
    expect(await listed()).not.toContain("008613900139000")
    expect(await listed()).toContain("13700137000")
    // the event names the entries as they were written, the one removal once
    expect(removedEvents().slice(before)).toEqual([["+8613800138000", "008613900139000"]])
    // the number is no longer blocked where the blacklist is checked
    expect((await asAdmin(server, "smsSend", { phoneNum: "13800138000", memo: "hello" }, "form")).code).not.toBe(-5)
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
  })

  it("a number with no digits after its zeros deletes only the entry written the same way", async () => {
    expect(await asAdmin(server, "addBlacklists", { phones: "000, 0000" })).toMatchObject({ code: 0, added: 2 })
    expect(await asAdmin(server, "delBlacklists", { phones: "000" })).toMatchObject({ code: 0, removed: 1 })
    expect(await listed()).toContain("0000")
    expect(await listed()).not.toContain("000")
  })

  it("an invalid number in the list removes nothing (-14)", async () => {
    const body = await asAdmin(server, "delBlacklists", { phones: "13700137000, 12ab34" })
    expect(body.code).toBe(-14)
    expect(await listed()).toContain("13700137000")
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
  })
})

describe("delBlacklists removes only the number named", () => {
  const own: Array<TestServer> = []
  afterAll(async () => {
    for (const s of own) await s.close()
  })
  const fresh = async () => {
    const s = await startTestServer()
    own.push(s)
    return { s, listed: async () => (await asAdmin(s, "getBlacklists")).blaPhone as Array<string> }
  }

  it("deleting a foreign number (+1 312 345 6789, or 00 1 312 345 6789 dialled from China) leaves the Chinese mobile 13123456789 listed", async () => {
    const { s, listed } = await fresh()
    expect(await asAdmin(s, "addBlacklists", { phones: "13123456789" })).toMatchObject({ code: 0, added: 1 })
    const body = await asAdmin(s, "delBlacklists", { phones: "+13123456789, 0013123456789" })
    expect(body).toMatchObject({ code: 0, removed: 0 })
    expect(await listed()).toEqual(["13123456789"])
    // still blocked where the blacklist is checked
    expect((await asAdmin(s, "smsSend", { phoneNum: "13123456789", memo: "hello" }, "form")).code).toBe(-5)
    expect((await fetch(`${s.url}/healthz`)).status).toBe(200)
  })

  it("a domestic or +86 number leaves a foreign entry of the same normal form; the foreign number in either spelling removes it", async () => {
    const { s, listed } = await fresh()
    expect(await asAdmin(s, "addBlacklists", { phones: "+1-312-345-6789, 13123456789" })).toMatchObject({ code: 0, added: 2 })
    expect(await asAdmin(s, "delBlacklists", { phones: "13123456789, +86-131-2345-6789" })).toMatchObject({ code: 0, removed: 1 })
    expect(await listed()).toEqual(["+13123456789"])
    // blocking still matches by the normal form alone: the foreign entry blocks the Chinese mobile too
    expect((await asAdmin(s, "smsSend", { phoneNum: "13123456789", memo: "hello" }, "form")).code).toBe(-5)
    expect(await asAdmin(s, "delBlacklists", { phones: "+44-3123456789, 00-1-312-345-6789" })).toMatchObject({ code: 0, removed: 1 })
    expect(await listed()).toEqual([])
    expect((await fetch(`${s.url}/healthz`)).status).toBe(200)
  })
})
