/**
 * The HTTP host under hostile input: paths that do not decode answer coded JSON without a
 * stack; requests that arrive too slowly are answered 408 and their connection closed; bodies
 * in a declared charset (GBK, GB18030) are read in it, and undecodable ones are refused.
 */
import * as net from "node:net"
import * as path from "node:path"
import Database from "better-sqlite3"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { loadConfig } from "../src/config/AppConfig.js"
import { rawRequest } from "./support/Raw.js"
import { eventually, startReceiver } from "./support/Receiver.js"
import { startTestServer, type TestServer } from "./support/TestServer.js"

interface Exchange {
  /** everything the server sent before the connection closed */
  readonly received: Buffer
  readonly status: number
  readonly contentType: string | undefined
  readonly body: string
}

const parse = (received: Buffer): Exchange => {
  const split = received.indexOf("\r\n\r\n")
  const head = received.subarray(0, split < 0 ? received.length : split).toString("latin1")
  const contentType = /^content-type:\s*(.*)$/im.exec(head)?.[1]?.trim()
  return { received, status: Number(head.split(" ")[1]), contentType, body: split < 0 ? "" : received.subarray(split + 4).toString("utf8") }
}

/**
 * Opens a connection, writes each step's bytes (a number waits that many ms), then waits until
 * the server closes the connection: the tests' own time-out fails one that never closes.
 */
const converse = (base: string, steps: ReadonlyArray<Buffer | string | number>) =>
  new Promise<Exchange>((resolve, reject) => {
    const url = new URL(base)
    const socket = net.connect(Number(url.port), url.hostname)
    const chunks: Array<Buffer> = []
    socket.on("data", (c: Buffer) => chunks.push(c))
    socket.on("error", (e: NodeJS.ErrnoException) => (e.code === "ECONNRESET" || e.code === "EPIPE" ? undefined : reject(e)))
    socket.on("close", () => resolve(parse(Buffer.concat(chunks))))
    socket.once("connect", async () => {
      for (const step of steps) {
        if (typeof step === "number") await new Promise((r) => setTimeout(r, step))
        else if (!socket.destroyed) socket.write(step)
      }
    })
  })

const healthy = async (server: { url: string }) => {
  const res = await fetch(`${server.url}/healthz`)
  expect(res.status).toBe(200)
}

const rowsIn = <T>(server: TestServer, sql: string, ...args: Array<unknown>) => {
  const d = new Database(path.join(server.dataDir, "bridge.db"), { readonly: true })
  try {
    return d.prepare(sql).all(...args) as Array<T>
  } finally {
    d.close()
  }
}
const eventsOfCall = (server: TestServer, cdrId: number) =>
  rowsIn<{ data: string }>(server, "SELECT data FROM events WHERE json_extract(data, '$.cdrId') = ?", cdrId).map(
    (r) => JSON.parse(r.data) as { memo: { exteName?: string } }
  )

describe("a path that does not decode", () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startTestServer()
  })
  afterAll(() => server.close())

  const expectCoded = (res: { status: number; contentType: string | undefined; body: string }) => {
    expect(res.status).toBe(400)
    expect(res.contentType).toMatch(/^application\/json/)
    expect(JSON.parse(res.body)).toEqual({ code: -14, message: "malformed path" })
    expect(res.body).not.toMatch(/\bat /)
    expect(res.body).not.toContain("node_modules")
    expect(res.body).not.toContain("/")
  }

  it.each(["/voip/record/%zz", "/admin/api/targets/%zz", "/voip/record/%E4%B8", "/admin/api/targets/%E4%B8", "/voip/record/%c0%ae", "/admin/api/targets/%c0%ae"])(
    "answers %s with a coded 400 and no stack",
    async (target) => {
      const res = await rawRequest(server.url, "GET", target)
      expectCoded({ status: res.status, contentType: /^content-type:\s*(.*)$/im.exec(res.headers)?.[1], body: res.body.toString("utf8") })
      await healthy(server)
    }
  )

  it("answers a raw 0xFF byte in the path (repaired to %FF) with a coded 400 and no stack", async () => {
    for (const prefix of ["/voip/record/", "/admin/api/targets/"]) {
      const res = await converse(server.url, [Buffer.concat([Buffer.from(`GET ${prefix}`), Buffer.from([0xff]), Buffer.from(" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")])])
      expectCoded(res)
    }
    await healthy(server)
  })
})

describe("requests that arrive too slowly", () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startTestServer({ http: { headersTimeoutMs: 300, requestTimeoutMs: 600, keepAliveTimeoutMs: 1000 } })
  })
  afterAll(() => server.close())

  const timedOut = (res: Exchange) => {
    expect(res.status).toBe(408)
    expect(res.contentType).toMatch(/^application\/json/)
    expect(JSON.parse(res.body)).toEqual({ code: -1, message: "the request did not arrive in time" })
  }

  it("answers headers that stop half-way with 408 and closes the connection", async () => {
    timedOut(await converse(server.url, ["GET /healthz HTTP/1.1\r\nHost: x\r\n"]))
    await healthy(server)
  })

  it("answers headers that keep trickling in, a byte at a time, with 408", async () => {
    const trickle = [...Array.from({ length: 30 }, () => ["X", 100] as const).flat()]
    timedOut(await converse(server.url, ["GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ", ...trickle]))
    // the same for the next request on a kept-alive connection
    const res = await converse(server.url, ["GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 100, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ", ...trickle])
    const text = res.received.toString("latin1")
    expect(text.indexOf("HTTP/1.1 200")).toBe(0)
    expect(text).toContain("HTTP/1.1 408")
    expect(text.slice(text.indexOf("HTTP/1.1 408"))).toContain('{"code":-1,"message":"the request did not arrive in time"}')
  })

  it("answers a body that stalls with 408 and stores nothing of it", async () => {
    const body = Buffer.from(`type=1&peer=1&phone=13800000099&memo=${encodeURIComponent('{"cdrId":829001,"cdrExtension":"100008800"}')}`)
    const head = `POST /api/voip.json HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\n\r\n`
    const res = await converse(server.url, [head, body.subarray(0, body.length - 5)])
    timedOut(res)
    await healthy(server)
    expect(eventsOfCall(server, 829001)).toEqual([])
    // nor one that keeps coming, a byte at a time, for longer than the request time-out
    const trickle = [...body].flatMap((b) => [Buffer.from([b]), 100])
    timedOut(await converse(server.url, [head, ...trickle]))
    expect(eventsOfCall(server, 829001)).toEqual([])
  })

  it("still serves requests that arrive in time, keep-alive ones included, and closes an idle connection without a 408", async () => {
    await healthy(server)
    const push = await fetch(`${server.url}/api/voip.json`, { method: "POST", body: new URLSearchParams({ type: "1", peer: "1", phone: "13800000098", memo: '{"cdrId":829002,"cdrExtension":"100008800"}' }) })
    expect(await push.json()).toEqual({ code: 0, message: "OK" })
    // idle longer than the headers time-out between two requests: idle is not slow
    const get = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    const res = await converse(server.url, [get, 700, get])
    const text = res.received.toString("latin1")
    expect(text.match(/HTTP\/1\.1 200/g)).toHaveLength(2)
    expect(text).not.toContain("408")
  })

  it("keeps the raw UTF-8 request line repair working", async () => {
    const memo = '{"cdrId":829003,"cdrExtension":"100008800","exteName":"张三"}'
    const res = await rawRequest(server.url, "GET", `/api/voip.json?type=1&peer=1&phone=13800000097&memo=${memo}`)
    expect(JSON.parse(res.body.toString("utf8"))).toEqual({ code: 0, message: "OK" })
    expect(eventsOfCall(server, 829003).map((e) => e.memo.exteName)).toEqual(["张三"])
  })

  it("refuses a request time-out shorter than the headers time-out", async () => {
    const exit = await Effect.runPromiseExit(loadConfig({ env: {}, overrides: { http: { headersTimeoutMs: 5000, requestTimeoutMs: 1000 } } }))
    expect(exit._tag).toBe("Failure")
    expect(JSON.stringify(exit)).toContain("requestTimeoutMs")
  })
})

/** GBK bytes of `text`, from the decoder's own table (Node has no GBK encoder). */
const gbk = (() => {
  let table: Map<string, Buffer> | undefined
  return (text: string) => {
    if (!table) {
      table = new Map()
      const decoder = new TextDecoder("gbk", { fatal: true })
      for (let lead = 0x81; lead <= 0xfe; lead++)
        for (let trail = 0x40; trail <= 0xfe; trail++) {
          const bytes = Buffer.from([lead, trail])
          try {
            const ch = decoder.decode(bytes)
            if (!table.has(ch)) table.set(ch, bytes)
          } catch {
            // not a GBK pair
          }
        }
    }
    return Buffer.concat([...text].map((ch) => (ch.charCodeAt(0) < 0x80 ? Buffer.from(ch) : table!.get(ch)!)))
  }
})()
/** Percent-encodes every byte outside the unreserved set, as a form would. */
const escape = (bytes: Buffer) => [...bytes].map((b) => (/[A-Za-z0-9_.~-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, "0")}`)).join("")

describe("bodies in a declared charset", () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startTestServer()
  })
  afterAll(() => server.close())

  const push = async (contentType: string | undefined, body: Buffer) => {
    const res = await rawRequest(server.url, "POST", "/api/voip.json", contentType ? { "Content-Type": contentType } : {}, body)
    return { status: res.status, body: JSON.parse(res.body.toString("utf8")) as { code: number; message: string } }
  }
  const memo = (cdrId: number) => `{"cdrId":${cdrId},"cdrExtension":"100008800","exteName":"张三丰"}`
  const fields = (_cdrId: number) => "type=1&peer=1&phone=13800000001&memo="
  const OK = { status: 200, body: { code: 0, message: "OK" } }

  it.each([
    ["gbk", 830001],
    ["GB2312", 830002],
    ["gb18030", 830003],
    ['"gbk"', 830004]
  ] as const)("reads a percent-encoded form in charset=%s", async (charset, cdrId) => {
    expect(await push(`application/x-www-form-urlencoded; charset=${charset}`, Buffer.from(fields(cdrId) + escape(gbk(memo(cdrId)))))).toEqual(OK)
    expect(eventsOfCall(server, cdrId).map((e) => e.memo.exteName)).toEqual(["张三丰"])
  })

  it("reads a form of raw GBK bytes (not percent-encoded)", async () => {
    expect(await push("application/x-www-form-urlencoded; charset=gbk", Buffer.concat([Buffer.from(fields(830101)), gbk(memo(830101))]))).toEqual(OK)
    expect(eventsOfCall(server, 830101).map((e) => e.memo.exteName)).toEqual(["张三丰"])
  })

  it("reads a JSON body in GB18030", async () => {
    const body = gbk(JSON.stringify({ type: "1", peer: "1", phone: "13800000001", memo: memo(830102) }))
    expect(await push("application/json; charset=GB18030", body)).toEqual(OK)
    expect(eventsOfCall(server, 830102).map((e) => e.memo.exteName)).toEqual(["张三丰"])
  })

  it("reads UTF-8 forms and queries: + is a space, %2B a plus, a stray % stays, raw UTF-8 beside it intact", async () => {
    // URLSearchParams turned 三 into a tab here: a stray % made it decode the whole value byte-wise as latin1
    const m = (cdrId: number) => `{"cdrId":${cdrId},"cdrExtension":"100008800","exteName":"${encodeURIComponent("张")}+三%2B丰%zz"}`
    expect(await push("application/x-www-form-urlencoded", Buffer.from(fields(830103) + m(830103)))).toEqual(OK)
    expect(eventsOfCall(server, 830103).map((e) => e.memo.exteName)).toEqual(["张 三+丰%zz"])
    const res = await rawRequest(server.url, "GET", `/api/voip.json?${fields(830104)}${m(830104)}`)
    expect(JSON.parse(res.body.toString("utf8"))).toEqual({ code: 0, message: "OK" })
    expect(eventsOfCall(server, 830104).map((e) => e.memo.exteName)).toEqual(["张 三+丰%zz"])
  })

  it.each([
    ["GBK bytes with no charset", undefined, (id: number) => Buffer.from(fields(id) + escape(gbk(memo(id)))), "body is not valid utf-8", 830201],
    ["GBK bytes declared UTF-8", "application/x-www-form-urlencoded; charset=utf-8", (id: number) => Buffer.concat([Buffer.from(fields(id)), gbk(memo(id))]), "body is not valid utf-8", 830202],
    ["a GBK character cut in half", "application/x-www-form-urlencoded; charset=gbk", (id: number) => Buffer.from(`${fields(id)}${escape(gbk(memo(id)))}&x=%D5`), "body is not valid gbk", 830203],
    ["invalid GB18030 in JSON", "application/json; charset=gb18030", (id: number) => Buffer.concat([gbk(`{"type":"1","peer":"1","memo":"{\\"cdrId\\":${id}}","x":"`), Buffer.from([0x81, 0x30, 0x22, 0x7d])]), "body is not valid gb18030", 830204]
  ] as const)("refuses %s with 400 -14 and stores nothing", async (_, contentType, body, message, cdrId) => {
    expect(await push(contentType, body(cdrId))).toEqual({ status: 400, body: { code: -14, message } })
    expect(eventsOfCall(server, cdrId)).toEqual([])
    await healthy(server)
  })

  it("refuses a charset it does not know with 415, naming it, and stores nothing", async () => {
    expect(await push("application/x-www-form-urlencoded; charset=x-klingon", Buffer.from(fields(830301) + escape(Buffer.from(memo(830301)))))).toEqual({
      status: 415,
      body: { code: -14, message: 'unsupported charset "x-klingon"' }
    })
    expect(eventsOfCall(server, 830301)).toEqual([])
  })
})

describe("a push sent in GBK, passed on", () => {
  it("reaches 800ing and json targets as UTF-8, its content type saying so", async () => {
    const receiver = await startReceiver()
    const server = await startTestServer({
      targets: [
        { name: "passthrough", url: receiver.url, events: ["call.*"], format: "800ing" },
        { name: "envelope", url: receiver.url, events: ["call.*"] }
      ]
    })
    try {
      const memo = `{"cdrId":830401,"cdrExtension":"100008800","exteName":"张三丰"}`
      const body = Buffer.concat([Buffer.from("type=1&peer=1&phone=13800000001&memo="), gbk(memo)])
      const res = await rawRequest(server.url, "POST", "/api/voip.json", { "Content-Type": "application/x-www-form-urlencoded; charset=gbk" }, body)
      expect(JSON.parse(res.body.toString("utf8"))).toEqual({ code: 0, message: "OK" })
      await eventually(() => receiver.received.length >= 2)
      const passthrough = receiver.received.find((r) => !String(r.headers["content-type"]).includes("json"))!
      expect(String(passthrough.headers["content-type"])).toMatch(/charset=utf-8/i)
      expect(new URLSearchParams(passthrough.body).get("memo")).toContain("张三丰")
      const envelope = receiver.received.find((r) => String(r.headers["content-type"]).includes("json"))!
      const { raw } = JSON.parse(envelope.body) as { raw: { body: string; contentType: string } }
      expect(new URLSearchParams(raw.body).get("memo")).toContain("张三丰")
      expect(raw.contentType).toMatch(/charset=utf-8/i)
    } finally {
      await server.close()
      await receiver.close()
    }
  })
})
