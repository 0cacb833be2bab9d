/**
 * A jsondata method's own document (`/openapi.json?method=<name>`): Prism, as a validating
 * proxy with it, holds that method's calls and answers to its precise shape — required
 * parameters, the answer's fields — which the whole document, one operation for every
 * method, cannot.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { methods } from "../schemas/index.js"
import { implementationsByName } from "../src/api/methods.js"
import { type Prism, startPrism, viaPrism } from "./support/Prism.js"
import { creds, startTestServer, type TestServer } from "./support/TestServer.js"

let server: TestServer
let prism: Prism

beforeAll(async () => {
  server = await startTestServer()
  prism = await startPrism(`${server.url}/openapi.json?method=addExtension`, server.url)
}, 90_000)

afterAll(async () => {
  await prism?.close()
  await server?.close()
})

const add = (params: Record<string, string>) => viaPrism(prism, `/voip/api/jsondata.html?${new URLSearchParams({ ...creds(), method: "addExtension", ...params })}`)
const violations = (header: string | null) => JSON.parse(header ?? "[]") as Array<{ location: Array<string>; code?: string; message: string; severity: string }>

describe("a method's own document, in Prism", () => {
  it("passes a correct call and its answer", async () => {
    const answer = await add({ exteExtension: "470", extePassword: "pw470" })
    expect(answer.violations).toBeNull()
    expect(JSON.parse(answer.body)).toMatchObject({ code: 0 })
  })

  it("names the required parameter a call leaves out, and the bridge's -14 is a valid answer", async () => {
    const answer = await add({ extePassword: "pw" })
    expect(JSON.parse(answer.body)).toMatchObject({ code: -14, message: expect.stringMatching(/exteExtension/) })
    // Prism reports parameter names lower-cased
    expect(violations(answer.violations)).toEqual([expect.objectContaining({ location: ["request", "query"], code: "required", message: expect.stringMatching(/exteextension/i) })])
  })

  it("advertises only that method", async () => {
    const answer = await viaPrism(prism, `/voip/api/jsondata.html?${new URLSearchParams({ ...creds(), method: "getExtension" })}`)
    expect(JSON.parse(answer.body)).toMatchObject({ code: 0 })
    expect(violations(answer.violations)).toEqual(expect.arrayContaining([expect.objectContaining({ location: ["request", "query", "method"], code: "enum" })]))
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
  })

  it("is not served for a method that is not implemented", async () => {
    // any method of the contract without an implementation (while there is one)
    const unbuilt = methods.find((m) => !implementationsByName.has(m.name))
    if (unbuilt === undefined) return
    const res = await fetch(`${server.url}/openapi.json?method=${unbuilt.name}`)
    expect(res.status).toBe(404)
    expect(await res.json()).toMatchObject({ code: -11 })
  })
})
