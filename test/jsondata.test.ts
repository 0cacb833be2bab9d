/** The jsondata.html surface: envelope, authentication, codes, and every way of sending parameters. */
import * as fs from "node:fs"
import * as path from "node:path"
import Database from "better-sqlite3"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { methods } from "../schemas/index.js"
import { implementationsByName } from "../src/api/methods.js"
import { rawRequest } from "./support/Raw.js"
import { ADMIN, asAdmin, callApi, creds, md5, startTestServer, type TestServer, type Via } from "./support/TestServer.js"

let server: TestServer
beforeAll(async () => {
  server = await startTestServer()
})
afterAll(() => server.close())

const fixtures = fs
  .readFileSync(path.join(import.meta.dirname, "fixtures/contract-requests.jsonl"), "utf8")
  .split("\n")
  .filter(Boolean)
  .map((l) => JSON.parse(l) as { seed: string; method: string; path: string; query?: string; form?: Record<string, string> })

describe("authentication (-2)", () => {
  it("answers the contract's own example URL with -2: its MD5 is not the test password's", async () => {
    const f = fixtures.find((x) => x.seed === "1.1.1")!
    const res = await fetch(`${server.url}${f.path}?${f.query}`)
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ code: -2, message: expect.stringMatching(/authentication failed/) })
  })

  it.each([
    ["lower-case MD5", md5(ADMIN.password)],
    ["upper-case MD5", md5(ADMIN.password).toUpperCase()]
  ])("accepts the %s of the password", async (_, hash) => {
    const body = await callApi(server, { sa_user: ADMIN.user, sa_password: hash, method: "getExtension" })
    expect(body.code).toBe(0)
  })

  it.each([
    ["a wrong password", { sa_user: ADMIN.user, sa_password: md5("nope") }],
    ["the plain password instead of its MD5", { sa_user: ADMIN.user, sa_password: ADMIN.password }],
    ["an unknown extension", { sa_user: "100008899", sa_password: md5(ADMIN.password) }],
    ["no credentials", {}],
    ["only sa_user", { sa_user: ADMIN.user }],
    ["an unknown sessionId", { sessionId: "voip_0000" }]
  ])("refuses %s with -2", async (_, params) => {
    const body = await callApi(server, { ...params, method: "getExtension" })
    expect(body).toMatchObject({ code: -2, httpStatus: 200 })
  })

  it("accepts the sessionId getExtension issued, in place of sa_user/sa_password", async () => {
    const login = await asAdmin(server, "getExtension")
    expect(login.sessionId).toMatch(/^voip_[0-9a-f]{24}$/)
    const body = await callApi(server, { sessionId: String(login.sessionId), method: "getExtensions" })
    expect(body.code).toBe(0)
  })

  it("refuses a disabled extension (exteStatus 1) even with the right password", async () => {
    const added = await asAdmin(server, "addExtension", { exteExtension: "450", extePassword: "pw450", exteStatus: "1" })
    expect(added.code).toBe(0)
    const body = await callApi(server, { ...creds("100008450", "pw450"), method: "getExtension" })
    expect(body.code).toBe(-2)
    expect(body.message).toMatch(/disabled/)
  })
})

describe("first start", () => {
  it("can be told not to create the test enterprise", async () => {
    const bare = await startTestServer({ bootstrap: { enabled: false } })
    try {
      expect((await callApi(bare, { ...creds(), method: "getExtension" })).code).toBe(-2)
    } finally {
      await bare.close()
    }
  })

  it("creates it with a configured password", async () => {
    const custom = await startTestServer({ bootstrap: { adminPassword: "another-one" } })
    try {
      expect((await callApi(custom, { ...creds(ADMIN.user, "another-one"), method: "getExtension" })).code).toBe(0)
      expect((await callApi(custom, { ...creds(), method: "getExtension" })).code).toBe(-2)
    } finally {
      await custom.close()
    }
  })
})

describe("codes", () => {
  it("-3 for an unknown method, after authentication", async () => {
    expect(await asAdmin(server, "noSuchMethod")).toMatchObject({ code: -3, message: 'unknown method "noSuchMethod"' })
    expect(await callApi(server, { method: "noSuchMethod" })).toMatchObject({ code: -2 })
  })

  it("-14 when method is missing", async () => {
    expect(await callApi(server, creds())).toMatchObject({ code: -14, message: "parameter method: is missing" })
  })

  it("-3 saying so for a contract method that is not implemented yet", async () => {
    const pending = methods.find((m) => !implementationsByName.has(m.name))
    if (!pending) return expect(implementationsByName.size).toBeGreaterThanOrEqual(methods.length)
    const body = await asAdmin(server, pending.name)
    expect(body.code).toBe(-3)
    expect(body.message).toMatch(/not implemented yet/)
  })

  it("-5 when a non-admin calls an administrative method; nothing changes", async () => {
    expect((await asAdmin(server, "addExtension", { exteExtension: "460", extePassword: "agent460" })).code).toBe(0)
    const agent = creds("100008460", "agent460")
    const res = await callApi(server, { ...agent, method: "addExtension", exteExtension: "461" })
    expect(res).toMatchObject({ code: -5, message: expect.stringMatching(/administrators only/) })
    const list = await asAdmin(server, "getExtensions")
    expect((list.rows as Array<{ exteSuffix: number }>).some((r) => r.exteSuffix === 461)).toBe(false)
  })

  it("-10 / -11 / -12 / -14 with messages naming what is wrong", async () => {
    expect(await asAdmin(server, "addExtension", { exteExtension: "800" })).toMatchObject({
      code: -10,
      message: "extension 100008800 already exists"
    })
    expect(await asAdmin(server, "delExtension", { exteId: "12345" })).toMatchObject({ code: -11 })
    expect(await asAdmin(server, "addBlacklists", { phones: Array.from({ length: 1001 }, (_, i) => `1300000${String(i).padStart(4, "0")}`).join(",") }, "form")).toMatchObject({ code: -12 })
    expect(await asAdmin(server, "addExtension", { exteExtension: "abc" })).toMatchObject({
      code: -14,
      message: 'parameter exteExtension: expected an integer, got "abc"'
    })
    expect(await asAdmin(server, "addExtension", { exteExtension: "900" })).toMatchObject({
      code: -14,
      message: "parameter exteExtension: expected an integer from 400 to 899, got 900"
    })
    expect(await asAdmin(server, "addExtension", {})).toMatchObject({ code: -14, message: "parameter exteExtension: is missing" })
  })

  it("-6 when a storage statement fails, and nothing is stored half-way", async () => {
    const db = new Database(path.join(server.dataDir, "bridge.db"))
    db.exec(`CREATE TRIGGER fail_blacklist BEFORE INSERT ON blacklist WHEN NEW.phone = '13900000002'
             BEGIN SELECT RAISE(ABORT, 'disk on fire'); END`)
    try {
      const body = await asAdmin(server, "addBlacklists", { phones: "13900000001,13900000002" })
      expect(body).toMatchObject({ code: -6, message: "storage statement failed" })
      const list = await asAdmin(server, "getBlacklists")
      expect(list.blaPhone).not.toContain("13900000001")
      const events = db.prepare("SELECT count(*) AS n FROM events WHERE type = 'blacklist.added' AND data LIKE '%13900000001%'").get() as { n: number }
      expect(events.n).toBe(0)
    } finally {
      db.exec("DROP TRIGGER fail_blacklist")
      db.close()
    }
  })
})

describe("transports", () => {
  const vias: ReadonlyArray<Via> = ["get", "form", "multipart", "mixed"]

  it.each(vias)("answers getExtension identically over %s", async (via) => {
    const body = await asAdmin(server, "getExtension", {}, via)
    expect(body).toMatchObject({ code: 0, extension: ADMIN.user, compNumber: "100008" })
  })

  it.each(vias)("adds and reads back a blacklist number over %s", async (via) => {
    const phone = { get: "13811110001", form: "13811110002", multipart: "13811110003", mixed: "13811110004" }[via]
    expect((await asAdmin(server, "addBlacklists", { phones: phone }, via)).code).toBe(0)
    expect((await asAdmin(server, "getBlacklists")).blaPhone).toContain(phone)
  })

  it("reads raw UTF-8 bytes in the query string (as real senders send them)", async () => {
    const { request } = await import("node:http")
    const url = new URL(server.url)
    const q = `sa_user=${ADMIN.user}&sa_password=${md5(ADMIN.password)}&method=addExtension&exteExtension=470&extePassword=x&exteName=张三`
    const body = await new Promise<string>((resolve, reject) => {
      const req = request({ host: url.hostname, port: url.port, method: "GET", path: `/voip/api/jsondata.html?${q}`, insecureHTTPParser: true }, (res) => {
        const chunks: Array<Buffer> = []
        res.on("data", (c: Buffer) => chunks.push(c))
        res.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
      })
      req.on("error", reject)
      req.end()
    }).catch(() => "")
    // Node's client may refuse to send raw bytes; when it does, send them over a socket.
    const answer = body !== "" ? body : (await rawRequest(server.url, "GET", `/voip/api/jsondata.html?${q}`)).body.toString("utf8")
    expect(JSON.parse(answer).code).toBe(0)
    const list = await asAdmin(server, "getExtensions")
    expect((list.rows as Array<{ exteSuffix: number; exteName: string }>).find((r) => r.exteSuffix === 470)?.exteName).toBe("张三")
  })

  it("answers malformed multipart with 400 and a coded body", async () => {
    const res = await fetch(`${server.url}/voip/api/jsondata.html`, {
      method: "POST",
      headers: { "content-type": "multipart/form-data" },
      body: "garbage"
    })
    expect(res.status).toBe(400)
    expect(await res.json()).toMatchObject({ code: -14, message: expect.stringMatching(/multipart/) })
  })

  it("answers a body over the limit with 413 and a coded body", async () => {
    const res = await fetch(`${server.url}/voip/api/jsondata.html`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: `method=getExtension&x=${"a".repeat(server.config.http.bodyLimitBytes + 10)}`
    })
    expect(res.status).toBe(413)
    expect(await res.json()).toMatchObject({ code: -12 })
  })

  it("answers an unknown path with 404 and a coded body", async () => {
    const res = await fetch(`${server.url}/voip/api/nothing.html`)
    expect(res.status).toBe(404)
    expect(await res.json()).toMatchObject({ code: -11 })
  })
})
