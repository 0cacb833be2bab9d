/**
 * The endpoint builder (src/http/Endpoint.ts) on what no route of today uses yet: an alias
 * path, the box's `status` answers, an address list before credentials, -14/-12 from the
 * params schema — over real HTTP, on the app and runtime the bridge itself is built from.
 */
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { Effect, ManagedRuntime, Schema } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as P from "../schemas/Param.js"
import { appLayer } from "../src/App.js"
import { type AppConfigShape, loadConfig } from "../src/config/AppConfig.js"
import { box, coded, endpoint, NO_PARAMS } from "../src/http/Endpoint.js"
import { converter } from "../src/http/OpenApiSchemas.js"
import { type AppRuntime, makeApp } from "../src/http/Server.js"
import { rawRequest } from "./support/Raw.js"
import { creds, tempDir } from "./support/TestServer.js"

/** the shape of the box's upload (§2.1.10), answered the box's way */
const boxUpload = endpoint({
  id: "testBoxUpload",
  summary: "a box-style endpoint with an alias",
  tags: ["test"],
  paths: ["/test/upload_record", "/test-alias/upload_record"],
  methods: ["POST"],
  auth: { kind: "none" },
  body: { kind: "form" },
  params: Schema.Struct({ satellite: P.textMax(17), channel: Schema.optional(P.intIn(1, 8)), tags: Schema.optional(P.list(Schema.String)) }),
  answer: box(Schema.Struct({ time: Schema.Number, satellite: Schema.String }), "status 0, or the failure's code"),
  handler: ({ params }) => Effect.succeed({ time: 1, satellite: params.satellite })
})

const whoAmI = (allowFrom: ReadonlyArray<string>) =>
  endpoint({
    id: `testWho${allowFrom.length}`,
    summary: "who is calling",
    tags: ["test"],
    paths: `/test/who${allowFrom.length}`,
    methods: ["GET", "POST"],
    auth: { kind: "credentials" },
    allowFrom: () => allowFrom,
    body: { kind: "form" },
    params: NO_PARAMS,
    answer: coded(Schema.Struct({ extension: Schema.String }), "the caller"),
    handler: ({ caller }) => Effect.succeed({ extension: caller.extension.extension })
  })

const table = [boxUpload, whoAmI(["10.0.0.0/8"]), whoAmI(["127.0.0.1", "::1", "::ffff:127.0.0.1"])]

let config: AppConfigShape
let runtime: AppRuntime
let server: http.Server
let url: string
beforeAll(async () => {
  config = await Effect.runPromise(loadConfig({ env: {}, overrides: { port: 0, host: "127.0.0.1", dataDir: tempDir(), logLevel: "error" } }))
  runtime = ManagedRuntime.make(appLayer(config, { background: false }))
  await runtime.runtime()
  server = http.createServer(makeApp(runtime, table.map((e) => e.route(config))))
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve))
  await runtime.dispose()
})

const post = async (path: string, body: string) => {
  const res = await fetch(`${url}${path}`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body })
  return { status: res.status, body: (await res.json()) as Record<string, unknown> }
}

describe("a declared endpoint", () => {
  it("is served on its path and its alias, answering the box's way", async () => {
    for (const path of ["/test/upload_record", "/test-alias/upload_record"])
      expect(await post(path, "satellite=00:11:22:33:44:55")).toEqual({ status: 200, body: { status: 0, time: 1, satellite: "00:11:22:33:44:55" } })
    // an undeclared verb is not served
    expect((await fetch(`${url}/test/upload_record?satellite=x`)).status).toBe(404)
  })

  it("refuses parameters from its schema: -14 naming the parameter, -12 over a maximum, as the box's status", async () => {
    expect(await post("/test/upload_record", "channel=2")).toMatchObject({ status: 200, body: { status: -14, message: expect.stringMatching(/^parameter satellite: is missing/) } })
    expect(await post("/test/upload_record", "satellite=x&channel=9")).toMatchObject({ status: 200, body: { status: -14, message: expect.stringMatching(/^parameter channel:/) } })
    const many = Array.from({ length: P.MAX_LIST_ITEMS + 1 }, (_, i) => `tags=${i}`).join("&")
    expect(await post("/test/upload_record", `satellite=x&${many}`)).toMatchObject({ status: 200, body: { status: -12 } })
  })

  it("checks its address list before reading the body (-5), then the credentials (-2), then hands the caller over", async () => {
    // a body that never arrives: the refusal cannot have waited for it
    const refused = await rawRequest(url, "POST", "/test/who1", { "Content-Type": "application/x-www-form-urlencoded", "Content-Length": "100" }, undefined)
    expect(JSON.parse(refused.body.toString("utf8"))).toMatchObject({ code: -5 })
    expect(await post("/test/who3", "sa_user=100008800&sa_password=wrong")).toMatchObject({ status: 200, body: { code: -2 } })
    expect(await post("/test/who3", new URLSearchParams(creds()).toString())).toEqual({ status: 200, body: { code: 0, message: "OK", extension: "100008800" } })
    expect((await fetch(`${url}/test/who3`)).status).toBe(200)
  })

  it("documents itself: one operation per path and verb, unique ids, its security and address list", () => {
    const kit = converter()
    const docs = Object.assign({}, ...table.map((e) => e.openApi(config, kit))) as Record<string, Record<string, { operationId: string; security: unknown; description?: string }>>
    expect(docs["/test/upload_record"]!.post!.operationId).toBe("testBoxUpload")
    expect(docs["/test-alias/upload_record"]!.post!.operationId).toBe("testBoxUpload_1")
    expect(docs["/test/upload_record"]!.post!.security).toEqual([])
    expect(Object.keys(docs["/test/who1"]!)).toEqual(["get", "post"])
    expect(docs["/test/who1"]!.get!.operationId).toBe("testWho1_get")
    expect(docs["/test/who1"]!.get!.security).toEqual([{ saUser: [], saPassword: [] }, { sessionId: [] }])
    expect(docs["/test/who1"]!.get!.description).toMatch(/only from the configured addresses/)
  })
})
