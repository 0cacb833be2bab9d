/** /openapi.json is generated from the schemas and is a valid OpenAPI 3.1 document; health endpoints answer. */
import * as net from "node:net"
import { Validator } from "@seriousme/openapi-schema-validator"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { methods } from "../schemas/index.js"
import { eventually } from "./support/Receiver.js"
import { startTestServer, type TestServer } from "./support/TestServer.js"

let server: TestServer
beforeAll(async () => {
  server = await startTestServer()
})
afterAll(() => server.close())

describe("GET /openapi.json", () => {
  it("is valid OpenAPI 3.1", async () => {
    const doc = (await (await fetch(`${server.url}/openapi.json`)).json()) as Record<string, unknown>
    expect(doc.openapi).toBe("3.1.0")
    const validator = new Validator()
    const result = await validator.validate(doc)
    expect(result.errors ?? []).toEqual([])
    expect(result.valid).toBe(true)
  })

  it("documents every method of the contract with its parameters and Chinese descriptions", async () => {
    type Op = { parameters: Array<{ name: string; description?: string; schema: { enum?: Array<string> } }>; summary: string; "x-jsondata-methods"?: Record<string, unknown>; "x-jsondata-not-implemented"?: Array<{ name: string }> }
    const doc = (await (await fetch(`${server.url}/openapi.json`)).json()) as { paths: Record<string, { get: Op }> }
    // one operation per verb on the URL a client calls; each method advertised with its own document, or marked as not implemented
    const jsondata = doc.paths["/voip/api/jsondata.html"]!.get
    const advertised = jsondata.parameters.find((p) => p.name === "method")!.schema.enum ?? []
    const notImplemented = (jsondata["x-jsondata-not-implemented"] ?? []).map((x) => x.name)
    for (const m of methods) expect(advertised.includes(m.name) ? m.name in (jsondata["x-jsondata-methods"] ?? {}) : notImplemented.includes(m.name), m.name).toBe(true)
    const add = ((await (await fetch(`${server.url}/openapi.json?method=addExtension`)).json()) as { paths: Record<string, { get: Op }> }).paths["/voip/api/jsondata.html"]!.get
    expect(add.summary).toBe("增加座席 (§2.11.1)")
    expect(add.parameters.find((p) => p.name === "exteExtension")?.description).toMatch(/400—899/)
  })

  it("documents the admin API: every route, bearer auth, the dead-letter filter and the listing pages", async () => {
    type Op = { security?: Array<Record<string, unknown>>; parameters?: Array<{ name: string }>; requestBody?: { content: Record<string, { schema: { properties?: Record<string, unknown> } }> }; responses: Record<string, { content?: Record<string, { schema: { properties?: Record<string, unknown> } }> }> }
    const doc = (await (await fetch(`${server.url}/openapi.json`)).json()) as { paths: Record<string, Record<string, Op>>; components: { securitySchemes: Record<string, { scheme: string }> } }
    expect(doc.components.securitySchemes.bearer?.scheme).toBe("bearer")
    const expected: Record<string, ReadonlyArray<string>> = {
      "/admin/api/targets": ["get", "post"],
      "/admin/api/targets/{name}": ["get", "patch", "delete"],
      "/admin/api/targets/{name}/recover": ["post"],
      "/admin/api/events": ["get"],
      "/admin/api/events/{id}/resend": ["post"],
      "/admin/api/deliveries": ["get"],
      "/admin/api/dead-letters": ["get", "delete"],
      "/admin/api/dead-letters/redrive": ["post"]
    }
    for (const [p, verbs] of Object.entries(expected)) {
      expect(Object.keys(doc.paths[p] ?? {}).sort()).toEqual([...verbs].sort())
      for (const v of verbs) expect(doc.paths[p]![v]!.security).toEqual([{ bearer: [] }])
    }
    const redrive = doc.paths["/admin/api/dead-letters/redrive"]!.post!
    expect(Object.keys(redrive.requestBody!.content["application/json"]!.schema.properties ?? {})).toEqual(["target", "type", "ids", "since", "until"])
    const dead = doc.paths["/admin/api/dead-letters"]!.get!
    expect(dead.parameters!.map((x) => x.name)).toEqual(expect.arrayContaining(["target", "type", "ids", "since", "until", "limit", "before"]))
    expect(Object.keys(dead.responses["200"]!.content!["application/json"]!.schema.properties ?? {})).toEqual(["items", "next"])
  })
})

describe("health", () => {
  it("GET /metrics exposes request and API-call figures in Prometheus text", async () => {
    await fetch(`${server.url}/voip/api/jsondata.html?method=getExtension`)
    const res = await fetch(`${server.url}/metrics`)
    expect(res.status).toBe(200)
    expect(res.headers.get("content-type")).toMatch(/text\/plain/)
    const text = await res.text()
    expect(text).toMatch(/bridge_http_request_duration_seconds_count\{route="\/voip\/api\/jsondata.html",method="GET",status="200"\} \d+/)
    expect(text).toMatch(/bridge_api_calls_total\{method="getExtension",code="-2"\} 1/)
    expect(text).toMatch(/bridge_process_resident_memory_bytes \d+/)
  })

  it("interrupts the work of a request whose client goes away, and counts it", async () => {
    const aborted = async () => Number(/bridge_http_requests_aborted_total\{route="\/api\/voip.json"\} (\d+)/.exec(await (await fetch(`${server.url}/metrics`)).text())?.[1] ?? 0)
    const before = await aborted()
    const { port } = new URL(server.url)
    // half a body, then the client disappears: the request's fiber is waiting for the rest
    const socket = net.connect(Number(port), "127.0.0.1")
    await new Promise<void>((resolve) => socket.once("connect", resolve))
    socket.write("POST /api/voip.json HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ntype=3&peer=1")
    await new Promise((r) => setTimeout(r, 50))
    socket.destroy()
    expect(await eventually(async () => ((await aborted()) === before + 1 ? true : undefined))).toBe(true)
    // the server goes on serving
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
  })

  it("GET /healthz answers ok", async () => {
    const res = await fetch(`${server.url}/healthz`)
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ status: "ok" })
  })

  it("GET /readyz answers ready once migrations ran", async () => {
    const res = await fetch(`${server.url}/readyz`)
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ status: "ready", database: true })
  })
})

describe("parameters whose checks are not in their decoded type", () => {
  it("still say them: the download's id pattern and ismp3 values, /openapi.json's method names", async () => {
    type Param = { name: string; schema: { pattern?: string; enum?: ReadonlyArray<string> } }
    const doc = (await (await fetch(`${server.url}/openapi.json`)).json()) as { paths: Record<string, { get?: { parameters?: Array<Param> } }> }
    const download = doc.paths["/voip/api/client/download/record.json"]!.get!.parameters!
    expect(download.find((p) => p.name === "id")?.schema.pattern).toBe("^\\d{1,20}$")
    expect(download.find((p) => p.name === "ismp3")?.schema.enum).toEqual(["0", "1"])
    expect(doc.paths["/openapi.json"]!.get!.parameters!.find((p) => p.name === "method")?.schema.enum).toContain("getExtension")
  })
})
