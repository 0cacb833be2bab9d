/**
 * The admin API declared once (src/admin/Api.ts): its OpenAPI part lists exactly what the
 * server serves, and what the platform would answer in its own style is answered in ours.
 */
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { Validator } from "@seriousme/openapi-schema-validator"
import Database from "better-sqlite3"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { adminOpenApi } from "../src/admin/Api.js"
import { rawRequest } from "./support/Raw.js"
import { startTestServer, type TestServer } from "./support/TestServer.js"

const BODY_LIMIT = 4096
let server: TestServer
beforeAll(async () => {
  server = await startTestServer({ http: { bodyLimitBytes: BODY_LIMIT } })
})
afterAll(() => server.close())

const token = () => fs.readFileSync(path.join(server.dataDir, "admin-token"), "utf8").trim()
const call = async (method: string, p: string, init: { body?: string | Buffer; headers?: Record<string, string>; auth?: boolean } = {}) => {
  const res = await fetch(`${server.url}${p}`, {
    method,
    headers: { ...(init.auth === false ? {} : { authorization: `Bearer ${token()}` }), ...init.headers },
    ...(init.body !== undefined ? { body: init.body } : {})
  })
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> }
}
const healthy = async () => expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
const targetsStored = () => {
  const db = new Database(path.join(server.dataDir, "bridge.db"), { readonly: true })
  try {
    return (db.prepare("SELECT count(*) AS n FROM targets").get() as { n: number }).n
  } finally {
    db.close()
  }
}

const VERBS = ["get", "post", "put", "patch", "delete"] as const
const concrete = (p: string) => p.replace("{name}", "t").replace("{id}", "1").replace("{mac}", "00-1A-2B-3C-4D-5E").replace("{comp}", "100008").replace("{codeType}", "custStatus").replace("{codeId}", "1").replace("{wotId}", "1")

describe("the generated admin token", () => {
  it("starts with letters, never a dash a command line would read as an option (replay's --admin-token)", async () => {
    expect(token()).toMatch(/^vb_[A-Za-z0-9_-]{32}$/)
    expect((await call("GET", "/admin/api/targets")).status).toBe(200)
  })
})

describe("the admin part of /openapi.json, derived from the declaration", () => {
  const doc = adminOpenApi() as { paths: Record<string, Record<string, { security?: unknown }>>; components: Record<string, unknown> }

  it("is a valid OpenAPI 3.1 document on its own, with the bearer scheme", async () => {
    const result = await new Validator().validate({ openapi: "3.1.0", info: { title: "admin", version: "0" }, ...doc })
    expect(result.errors ?? []).toEqual([])
    expect(doc.components.securitySchemes).toMatchObject({ bearer: { type: "http", scheme: "bearer" } })
    expect(JSON.stringify(doc)).not.toContain("HttpApiDecodeError")
  })

  it("documents every path and verb the server serves under /admin/api, and none it does not", async () => {
    expect(Object.keys(doc.paths).sort()).toEqual([
      "/admin/api/capture",
      "/admin/api/capture/status",
      "/admin/api/dead-letters",
      "/admin/api/dead-letters/redrive",
      "/admin/api/deliveries",
      "/admin/api/devices",
      "/admin/api/devices/{mac}",
      "/admin/api/devices/{mac}/messages",
      "/admin/api/enterprises/{comp}/codes",
      "/admin/api/enterprises/{comp}/codes/{codeType}",
      "/admin/api/enterprises/{comp}/codes/{codeType}/{codeId}",
      "/admin/api/enterprises/{comp}/fields",
      "/admin/api/enterprises/{comp}/flows",
      "/admin/api/enterprises/{comp}/flows/{id}",
      "/admin/api/enterprises/{comp}/sounds/{name}",
      "/admin/api/enterprises/{comp}/workorder-types",
      "/admin/api/enterprises/{comp}/workorder-types/{wotId}",
      "/admin/api/events",
      "/admin/api/events/{id}/resend",
      "/admin/api/targets",
      "/admin/api/targets/{name}",
      "/admin/api/targets/{name}/recover",
      "/admin/api/targets/{name}/test",
      "/admin/api/templates"
    ])
    for (const [p, item] of Object.entries(doc.paths)) {
      for (const verb of VERBS) {
        // without a token: a served endpoint asks for it, anything else is no endpoint
        const res = await call(verb.toUpperCase(), concrete(p), { auth: false })
        if (verb in item) {
          expect(item[verb]!.security, `${verb} ${p}`).toEqual([{ bearer: [] }])
          expect([res.status, res.body, res.headers.get("www-authenticate")], `${verb} ${p}`).toEqual([401, { code: -2, message: "admin API: missing or wrong bearer token" }, "Bearer"])
        } else expect([res.status, res.body], `${verb} ${p}`).toEqual([404, { code: -11, message: `no such endpoint: ${verb.toUpperCase()} ${concrete(p)}` }])
      }
    }
    await healthy()
  })

  it("has what /openapi.json has always said of the admin API: the dead-letter filter and the listing pages", () => {
    type Op = { parameters?: Array<{ name: string }>; requestBody?: { content: Record<string, { schema: { properties?: Record<string, unknown> } }> }; responses: Record<string, { content?: Record<string, { schema: { properties?: Record<string, unknown> } }> }> }
    const paths = doc.paths as Record<string, Record<string, Op>>
    const redrive = paths["/admin/api/dead-letters/redrive"]!.post!
    expect(Object.keys(redrive.requestBody!.content["application/json"]!.schema.properties ?? {})).toEqual(["target", "type", "ids", "since", "until"])
    const dead = paths["/admin/api/dead-letters"]!.get!
    expect(dead.parameters!.map((x) => x.name)).toEqual(["target", "type", "ids", "since", "until", "limit", "before"])
    expect(Object.keys(dead.responses["200"]!.content!["application/json"]!.schema.properties ?? {})).toEqual(["items", "next"])
    expect(Object.keys(paths["/admin/api/targets"]!.post!.responses)).toEqual(expect.arrayContaining(["201", "400", "401", "409"]))
  })
})

describe("answers in the API's coded style", () => {
  it("answers a path under /admin/api that is no endpoint like any other unknown path, token or not", async () => {
    expect(await call("GET", "/admin/api/nope")).toMatchObject({ status: 404, body: { code: -11, message: "no such endpoint: GET /admin/api/nope" } })
    expect(await call("GET", "/admin/api")).toMatchObject({ status: 404, body: { code: -11 } })
    await healthy()
  })

  it("refuses a body over the configured limit with 413/-12, and one in a charset it cannot read with 415/-14, storing nothing", async () => {
    const big = JSON.stringify({ name: "big", url: "http://127.0.0.1:9/x", transform: `"${"x".repeat(BODY_LIMIT)}"` })
    expect(await call("POST", "/admin/api/targets", { body: big, headers: { "content-type": "application/json" } })).toMatchObject({ status: 413, body: { code: -12 } })
    const odd = await call("POST", "/admin/api/targets", { body: JSON.stringify({ name: "odd", url: "http://127.0.0.1:9/x" }), headers: { "content-type": "application/json; charset=x-nonsense" } })
    expect(odd).toMatchObject({ status: 415, body: { code: -14 } })
    expect(targetsStored()).toBe(0)
    await healthy()
  })

  it("refuses a query key a dead-letter listing does not know, naming it, instead of reading it as no filter", async () => {
    expect(await call("GET", "/admin/api/dead-letters?tagret=crm")).toMatchObject({ status: 400, body: { code: -14, message: expect.stringMatching(/^tagret: is unexpected, expected: "target" \| "type"/) } })
    expect(await call("DELETE", "/admin/api/dead-letters?tagret=crm")).toMatchObject({
      status: 400,
      body: { code: -14, message: 'tagret: is unexpected, expected: "target" | "type" | "ids" | "since" | "until"' }
    })
    await healthy()
  })

  it("reads a repeated query key by its last value", async () => {
    expect(await call("GET", "/admin/api/deliveries?status=bogus&status=dead")).toMatchObject({ status: 200, body: { items: [] } })
    expect((await call("GET", "/admin/api/deliveries?status=dead&status=bogus")).body).toEqual({ code: -14, message: "status: expected one of pending, in_flight, delivered, dead" })
  })

  it("names an event id beyond 2^53 as it was sent when it does not exist", async () => {
    expect((await call("POST", "/admin/api/targets", { body: JSON.stringify({ name: "t", url: "http://127.0.0.1:9/x" }) })).status).toBe(201)
    const res = await call("POST", "/admin/api/events/9007199254740993/resend", { body: JSON.stringify({ target: "t" }) })
    expect(res).toMatchObject({ status: 404, body: { code: -11, message: "event 9007199254740993 does not exist" } })
    expect((await call("DELETE", "/admin/api/targets/t")).body).toEqual({ code: 0, message: "OK", deadLettered: 0 })
    await healthy()
  })

  it("answers JSON declared UTF-8, as the bridge's other routes do", async () => {
    expect((await call("GET", "/admin/api/targets")).headers.get("content-type")).toBe("application/json; charset=utf-8")
    expect((await call("GET", "/admin/api/targets", { auth: false })).headers.get("content-type")).toBe("application/json; charset=utf-8")
    expect((await call("GET", "/admin/api/nope")).headers.get("content-type")).toBe("application/json; charset=utf-8")
  })

  it("answers a storage failure with 500/-3 and no detail, and serves again once storage is back", async () => {
    const db = new Database(path.join(server.dataDir, "bridge.db"))
    db.pragma("busy_timeout = 5000")
    try {
      db.exec("ALTER TABLE events RENAME TO events_away")
      const res = await call("GET", "/admin/api/events")
      expect([res.status, res.body]).toEqual([500, { code: -3, message: "internal error" }])
      await healthy()
    } finally {
      db.exec("ALTER TABLE events_away RENAME TO events")
      db.close()
    }
    expect((await call("GET", "/admin/api/events")).status).toBe(200)
  })

  it("takes a token with spaces around it, and refuses one sent under another scheme", async () => {
    const raw = await rawRequest(server.url, "GET", "/admin/api/targets", { Authorization: `bearer   ${token()}  ` })
    expect(raw.status).toBe(200)
    const basic = await call("GET", "/admin/api/targets", { auth: false, headers: { authorization: `Basic ${token()}` } })
    expect(basic.status).toBe(401)
  })

  it("refuses the token under any scheme of seven characters but Bearer (the platform only cuts them off)", async () => {
    for (const header of [`Digest ${token()}`, `Bearer:${token()}`, `!!!!!!X${token()}`]) {
      const res = await call("GET", "/admin/api/targets", { auth: false, headers: { authorization: header } })
      expect(res.status, header.slice(0, 7)).toBe(401)
      expect(res.body.code).toBe(-2)
    }
  })

  it("counts a request whose client went away as aborted, not as a failure", async () => {
    const aborted = async () => Number(/bridge_http_requests_aborted_total\{route="\/admin\/api"\} (\d+)/.exec(await (await fetch(`${server.url}/metrics`)).text())?.[1] ?? 0)
    const before = await aborted()
    await new Promise<void>((resolve) => {
      const url = new URL(server.url)
      const socket = net.connect(Number(url.port), url.hostname, () => {
        socket.write(`POST /admin/api/targets HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token()}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"na`)
        setTimeout(() => {
          socket.destroy()
          resolve()
        }, 100)
      })
    })
    let after = before
    for (let i = 0; i < 40 && after === before; i++) {
      await new Promise((r) => setTimeout(r, 25))
      after = await aborted()
    }
    expect(after).toBe(before + 1)
    await healthy()
  })
})
