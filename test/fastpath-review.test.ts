/**
 * Review of the plain-path shortcut past express's router (makeApp's `direct` map): a request
 * must reach the handler express would have chosen, whatever its spelling. The map assumes the
 * table's paths are disjoint and that nothing is routed before the table; a receiver's path comes
 * from config and may overlap the admin API (routed before the table) or another route's path in
 * another case (express matches paths case-insensitively, the map exactly).
 */
import * as path from "node:path"
import Database from "better-sqlite3"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { rawRequest } from "./support/Raw.js"
import { startTestServer, type TestServer } from "./support/TestServer.js"

const PUSH = new URLSearchParams({ type: "3", peer: "1", phone: "13700000009", memo: '{"cdrId":990001,"cdrExtension":"100008800"}' }).toString()

const post = async (server: TestServer, p: string) => {
  const res = await rawRequest(server.url, "POST", p, { "Content-Type": "application/x-www-form-urlencoded" }, Buffer.from(PUSH))
  return { status: res.status, body: res.body.toString("utf8") }
}
const events = (server: TestServer) => {
  const d = new Database(path.join(server.dataDir, "bridge.db"), { readonly: true })
  try {
    return (d.prepare("SELECT count(*) AS n FROM events WHERE json_extract(data, '$.cdrId') = 990001").get() as { n: number }).n
  } finally {
    d.close()
  }
}
const healthy = async (server: TestServer) => expect((await fetch(`${server.url}/healthz`)).status).toBe(200)

describe("a receiver path under /admin/api (routed to the admin API before the table)", () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startTestServer({ receive: { voip: { path: "/admin/api/voip.json", allowFrom: [] } } })
  })
  afterAll(() => server.close())

  it("is answered by the same handler in its exact spelling as with a trailing slash, and by the admin API as express routes it", async () => {
    const slashed = await post(server, "/admin/api/voip.json/")
    const exact = await post(server, "/admin/api/voip.json")
    // express routes both to the admin API (registered first), which has no such endpoint
    expect(slashed.status).toBe(404)
    expect(JSON.parse(slashed.body)).toMatchObject({ code: -11 })
    expect({ status: exact.status, code: (JSON.parse(exact.body) as { code: number }).code }).toEqual({ status: 404, code: -11 })
    // and nothing was stored by the receiver the admin API shadows
    expect(events(server)).toBe(0)
    await healthy(server)
  })
})

describe("a receiver path that is another route's path in another case (express matches case-insensitively)", () => {
  let server: TestServer
  beforeAll(async () => {
    // receivers come first in the table: express gives them every spelling of this path
    server = await startTestServer({ receive: { voip: { path: "/Voip/api/jsondata.html", allowFrom: [] } } })
  })
  afterAll(() => server.close())

  it("goes to the same handler whether spelt as configured or as jsondata's plain path", async () => {
    const configured = await post(server, "/Voip/api/jsondata.html")
    const lower = await post(server, "/voip/api/jsondata.html")
    expect(configured.status).toBe(200)
    expect(JSON.parse(configured.body)).toEqual({ code: 0, message: "OK" })
    // express would have given it to the receiver too: a retry of the same push, acknowledged alike
    expect(lower).toEqual(configured)
    expect(events(server)).toBe(1)
    await healthy(server)
  })
})
