/** List parameters are bounded: asking for more than the bridge takes at once is -12, never a failed statement (-6). */
import { Either, Schema } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as P from "../schemas/Param.js"
import { toInvalidParam } from "../src/api/Implementation.js"
import { toRawParams } from "../src/http/Params.js"
import { asAdmin, startTestServer, type TestServer } from "./support/TestServer.js"

let server: TestServer
beforeAll(async () => {
  server = await startTestServer()
})
afterAll(() => server.close())

const extensions = (n: number) => Array.from({ length: n }, (_, i) => String(100008000000 + i)).join(",")

describe("list parameters", () => {
  it("findDialrecord with 40,000 extensions answers -12 naming the parameter and the maximum", async () => {
    const answer = await asAdmin(server, "findDialrecord", { extension: extensions(40_000) }, "form")
    expect(answer.code).toBe(-12)
    expect(answer.message).toContain("extension")
    expect(answer.message).toContain("at most 1000")
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
  })

  it("takes a list at the maximum", async () => {
    const answer = await asAdmin(server, "findDialrecord", { extension: extensions(1000) }, "form")
    expect(answer.code).toBe(0)
  })

  it("bounds every comma list (-12, nothing stored), and an invalid item is still -14", async () => {
    const phones = Array.from({ length: 1001 }, (_, i) => `1380013${String(i).padStart(4, "0")}`)
    const tooMany = await asAdmin(server, "addBlacklists", { phones: phones.join(",") }, "form")
    expect(tooMany.code).toBe(-12)
    expect(tooMany.message).toContain("phones")
    const listed = await asAdmin(server, "getBlacklists", {})
    expect(JSON.stringify(listed)).not.toContain("13800130000")
    const bad = await asAdmin(server, "findDialrecord", { extension: "12,abc" }, "form")
    expect(bad.code).toBe(-14)
  })

  it("pads gaps in indexed lists within one budget per request: a body of far indexes costs no more than its size", async () => {
    // ~80k names each asking for a 1000-place list: padded each, they made ~860 MB (found in review)
    const body = Array.from({ length: 75_000 }, (_, i) => `k${i}[999]=1`).join("&")
    expect(body.length).toBeLessThan(1024 * 1024)
    const base = process.memoryUsage().heapUsed
    let peak = base
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().heapUsed)), 5)
    try {
      const res = await fetch(`${server.url}/voip/api/jsondata.html?method=getExtension`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body })
      expect(((await res.json()) as { code: number }).code).toBe(-2)
    } finally {
      clearInterval(sampler)
    }
    // the request's own strings and maps, not 80k arrays of a thousand places
    expect(peak - base).toBeLessThan(300 * 1024 * 1024)
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
    // alignment still holds where it is wanted
    expect(toRawParams([["cpPhone[0]", "a"], ["cpType[1]", "t"], ["cpPhone[2]", "c"], ["cpPhone", "a"]])).toEqual({ cpPhone: ["a", "", "c"], cpType: ["", "t"] })
  })

  it("bounds repeated and indexed lists the same way", () => {
    const schema = Schema.Struct({ cpPhone: P.list(Schema.String) })
    const decode = Schema.decodeUnknownEither(schema, { errors: "first" })
    const many = Array.from({ length: 1001 }, (_, i) => String(i))
    const refused = decode({ cpPhone: many })
    expect(Either.isLeft(refused) && toInvalidParam(refused.left)._tag).toBe("OverLimit")
    expect(Either.isRight(decode({ cpPhone: many.slice(0, 1000) }))).toBe(true)
  })
})
