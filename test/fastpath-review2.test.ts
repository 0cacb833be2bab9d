/**
 * Second review of the plain-path shortcut (9baa60b, 4648ef0): a plain path keeps Node's own
 * request and response (express's prototypes only when an answer needs them), learns the handler
 * express chooses from the path's first request, and takes a body that arrived whole at once
 * (`req.read()`). Each case below is a request whose answer must be what express's routing and the
 * stream-event body reading gave: keep-alive reuse, pipelining, chunked and split bodies, a body
 * over the limit, `Expect: 100-continue`, an empty body, HEAD before GET, a captured request.
 */
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import Database from "better-sqlite3"
import { Option, Schema } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { datetime } from "../schemas/Param.js"
import { parseLocal, pushedInstant } from "../src/shared/Time.js"
import { startTestServer, tempDir, type TestServer } from "./support/TestServer.js"

const push = (cdrId: number) =>
  new URLSearchParams({ type: "3", peer: "1", phone: "13700000009", memo: JSON.stringify({ cdrId, cdrExtension: "100008800" }) }).toString()

interface Answer {
  readonly status: number
  readonly head: string
  readonly body: string
}

/**
 * One keep-alive connection: `send` writes raw bytes, `answers(n, heads)` reads n answers in order
 * (by Content-Length; `heads[i]` true for an answer to HEAD, which has none).
 */
const connection = async (server: TestServer) => {
  const socket = net.connect(server.port, "127.0.0.1")
  await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject))
  let buffer = Buffer.alloc(0)
  let closed = false
  const waiters: Array<() => void> = []
  socket.on("data", (c: Buffer) => {
    buffer = Buffer.concat([buffer, c])
    for (const w of waiters.splice(0)) w()
  })
  socket.on("close", () => {
    closed = true
    for (const w of waiters.splice(0)) w()
  })
  const more = () => new Promise<void>((resolve) => waiters.push(resolve))
  const next = async (head: boolean): Promise<Answer> => {
    for (;;) {
      const split = buffer.indexOf("\r\n\r\n")
      if (split >= 0) {
        const text = buffer.subarray(0, split).toString("latin1")
        const status = Number(text.split(" ")[1])
        // an interim 100 Continue carries no body
        if (status === 100) {
          buffer = buffer.subarray(split + 4)
          continue
        }
        const length = head ? 0 : Number(/content-length: (\d+)/i.exec(text)?.[1] ?? "0")
        if (buffer.length >= split + 4 + length) {
          const body = buffer.subarray(split + 4, split + 4 + length).toString("utf8")
          buffer = buffer.subarray(split + 4 + length)
          return { status, head: text, body }
        }
      }
      if (closed) throw new Error(`connection closed with ${JSON.stringify(buffer.toString("latin1"))} unread`)
      await more()
    }
  }
  return {
    send: (bytes: string | Buffer) => socket.write(bytes),
    next,
    isClosed: () => closed,
    /** what arrived and was not read as an answer */
    pending: () => buffer.length,
    close: () => socket.destroy()
  }
}

const request = (method: string, p: string, headers: Record<string, string>, body = "") =>
  `${method} ${p} HTTP/1.1\r\nHost: x\r\n${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join("")}\r\n${body}`
const form = (body: string) => request("POST", "/api/voip.json", { "Content-Type": "application/x-www-form-urlencoded", "Content-Length": String(Buffer.byteLength(body)) }, body)
const chunked = (chunks: ReadonlyArray<string>) =>
  request("POST", "/api/voip.json", { "Content-Type": "application/x-www-form-urlencoded", "Transfer-Encoding": "chunked" }) +
  chunks.map((c) => `${Buffer.byteLength(c).toString(16)}\r\n${c}\r\n`).join("") +
  "0\r\n\r\n"

const stored = (server: TestServer, cdrId: number) => {
  const d = new Database(path.join(server.dataDir, "bridge.db"), { readonly: true })
  try {
    return (d.prepare("SELECT count(*) AS n FROM events WHERE json_extract(data, '$.cdrId') = ?").get(cdrId) as { n: number }).n
  } finally {
    d.close()
  }
}
const OK = JSON.stringify({ code: 0, message: "OK" })
const healthy = async (server: TestServer) => expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe("a body taken at once on a plain path (readBody's fast path)", () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startTestServer({ http: { bodyLimitBytes: 2048, keepAliveTimeoutMs: 5000, headersTimeoutMs: 20_000, requestTimeoutMs: 120_000 } })
  })
  afterAll(() => server.close())

  it("answers pipelined pushes on one keep-alive connection in order, and the connection is reused after", async () => {
    const c = await connection(server)
    c.send(form(push(990101)) + form(push(990102)) + request("GET", "/healthz", {}) + form(push(990103)))
    const answers = [await c.next(false), await c.next(false), await c.next(false), await c.next(false)]
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200])
    expect([answers[0]!.body, answers[1]!.body, answers[3]!.body]).toEqual([OK, OK, OK])
    // then one more on the same connection, sent after the others were answered
    c.send(form(push(990104)))
    expect((await c.next(false)).body).toBe(OK)
    expect(c.isClosed()).toBe(false)
    c.close()
    expect([990101, 990102, 990103, 990104].map((id) => stored(server, id))).toEqual([1, 1, 1, 1])
  })

  it("reads a chunked body whole, sent at once or chunk by chunk", async () => {
    const body = push(990111)
    const c = await connection(server)
    c.send(chunked([body.slice(0, 10), body.slice(10, 40), body.slice(40)]))
    expect((await c.next(false)).body).toBe(OK)
    const slow = push(990112)
    const head = chunked([slow.slice(0, 7), slow.slice(7)])
    // the same request, its bytes a few at a time: the body is not complete when the handler runs
    for (let i = 0; i < head.length; i += 25) {
      c.send(head.slice(i, i + 25))
      await sleep(5)
    }
    expect((await c.next(false)).body).toBe(OK)
    c.send(form(push(990113)))
    expect((await c.next(false)).body).toBe(OK)
    c.close()
    expect([990111, 990112, 990113].map((id) => stored(server, id))).toEqual([1, 1, 1])
  })

  it("refuses a chunked body over the limit that arrived whole (413, -12), stores nothing, and still serves", async () => {
    const big = `${push(990121)}&pad=${"x".repeat(3000)}`
    const c = await connection(server)
    c.send(chunked([big.slice(0, 1000), big.slice(1000, 2000), big.slice(2000)]))
    const a = await c.next(false)
    expect(a.status).toBe(413)
    expect(JSON.parse(a.body)).toMatchObject({ code: -12 })
    // read through before the answer: the connection is kept, and serves the next request
    c.send(form(push(990122)))
    expect((await c.next(false)).body).toBe(OK)
    c.close()
    expect(stored(server, 990121)).toBe(0)
    expect(stored(server, 990122)).toBe(1)
    await healthy(server)
  })

  it("reads the body sent after 100 Continue, and an empty body", async () => {
    const body = push(990131)
    const c = await connection(server)
    c.send(request("POST", "/api/voip.json", { "Content-Type": "application/x-www-form-urlencoded", "Content-Length": String(body.length), Expect: "100-continue" }))
    // the interim answer comes before any body byte is sent
    for (let i = 0; i < 100 && c.pending() === 0; i++) await sleep(10)
    c.send(body)
    expect((await c.next(false)).body).toBe(OK)
    // a push with no body: a coded refusal, as the streamed reading gave, and the connection goes on
    c.send(form(""))
    const empty = await c.next(false)
    expect(empty.status).toBe(200)
    expect((JSON.parse(empty.body) as { code: number }).code).toBe(-14)
    c.send(request("POST", "/voip/api/jsondata.html", { "Content-Type": "application/x-www-form-urlencoded", "Content-Length": "0" }))
    const jsondata = await c.next(false)
    expect(jsondata.status).toBe(200)
    expect(typeof (JSON.parse(jsondata.body) as { code: number }).code).toBe("number")
    c.send(request("GET", "/healthz", {}))
    expect((await c.next(false)).status).toBe(200)
    c.close()
    expect(stored(server, 990131)).toBe(1)
  })

  it("a client that sends a whole push and goes away leaves the bridge serving", async () => {
    const c = await connection(server)
    c.send(form(push(990141)))
    c.close()
    await sleep(50)
    await healthy(server)
  })
})

describe("HEAD and GET on plain paths answered with Node's own response", () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startTestServer()
  })
  afterAll(() => server.close())

  it("a HEAD before any GET gets GET's headers and no body, for a JSON and an express-sent answer", async () => {
    const c = await connection(server)
    c.send(request("HEAD", "/healthz", {}) + request("HEAD", "/admin", {}) + request("GET", "/healthz", {}) + request("GET", "/admin", {}) + request("HEAD", "/healthz", {}))
    const [hHealth, hAdmin, gHealth, gAdmin, hHealth2] = [await c.next(true), await c.next(true), await c.next(false), await c.next(false), await c.next(true)]
    expect(hHealth!.status).toBe(200)
    expect(gHealth!.status).toBe(200)
    expect(/content-length: (\d+)/i.exec(hHealth!.head)?.[1]).toBe(String(Buffer.byteLength(gHealth!.body)))
    expect(hHealth2!.head).toBe(hHealth!.head.replace(/date: [^\r]*/i, /date: [^\r]*/i.exec(hHealth2!.head)![0]))
    expect(hAdmin!.status).toBe(gAdmin!.status)
    expect(/content-type: [^\r]*/i.exec(hAdmin!.head)?.[0]).toBe(/content-type: [^\r]*/i.exec(gAdmin!.head)?.[0])
    // nothing after the last answer: no HEAD answer carried a body
    await sleep(50)
    expect(c.pending()).toBe(0)
    c.close()
  })
})

describe("a captured push taken at once", () => {
  let server: TestServer
  let file: string
  beforeAll(async () => {
    file = path.join(tempDir(), "capture.jsonl")
    server = await startTestServer({ capture: { file, maxBytes: 1024 * 1024, keepCredentials: false, maxBodyBytes: 1024 * 1024 } })
  })
  afterAll(() => server.close())

  it("is recorded with its body", async () => {
    const c = await connection(server)
    c.send(form(push(990151)))
    expect((await c.next(false)).body).toBe(OK)
    c.close()
    let lines: Array<string> = []
    for (let i = 0; i < 300; i++) {
      lines = fs.existsSync(file) ? fs.readFileSync(file, "utf8").split("\n").filter(Boolean) : []
      if (lines.some((l) => l.includes("990151"))) break
      await sleep(10)
    }
    const line = lines.find((l) => l.includes("/api/voip.json"))
    expect(line).toBeDefined()
    expect(line).toContain("990151")
    expect(stored(server, 990151)).toBe(1)
  })
})

// the customer link once read a push's start time by the datetime schema and the call record by
// its own rule; both read it by pushedInstant now, the record's rule, which the schema's reading
// (the old link) matches but for the texts named below
describe("a push's start time (pushedInstant) reads as the datetime schema did, but for the differences named", () => {
  const old = Schema.decodeUnknownOption(datetime)
  const tz = "Asia/Shanghai"
  const oldLink = (v: unknown) => {
    const local = Option.getOrUndefined(old(typeof v === "string" ? v.replace(/\.\d+$/, "") : ""))
    return local === undefined ? undefined : parseLocal(local, tz)
  }
  const now = (v: unknown) => (typeof v === "string" ? pushedInstant(v, tz) : undefined)
  it.each([
    "2024-03-05 10:20:30",
    "2024-03-05 10:20:30.0",
    "2024-3-5 1:2:3.123",
    " 2024-03-05 10:20:30.0",
    "\t2024-03-05 10:20\n",
    "2024-03-05T10:20:30",
    "2024-02-30 10:00:00",
    "2024-13-01",
    "2024-03-05 24:00:00",
    "2024-03-05 10:20:30.",
    "2024-03-05 10:20:30.0.0",
    "",
    "   ",
    "\u00a02024-03-05 10:20:30\u3000",
    "not a date"
  ])("%j", (v) => expect(now(v)).toBe(oldLink(v)))
  it.each([20240305, null, undefined, true, ["2024-03-05 10:20:30"], { a: 1 }])("non-string %j", (v) => expect(now(v)).toBe(oldLink(v)))
  it.each([
    // a date alone was midnight; no time now, as for the call record
    ["2024-03-05", undefined],
    ["2024-03-05.5", undefined],
    // a fraction after the minutes was cut; only one after the seconds is read now
    ["2024-03-05 10:20.5", undefined],
    // a year below 100 was read as 19xx (Date.UTC); no time now
    ["0099-06-01 10:00:00", undefined],
    // spaces after a fraction are trimmed like any others
    ["2024-03-05 10:20:30.0 ", Date.UTC(2024, 2, 5, 2, 20, 30)]
  ] as const)("differs on purpose: %j", (v, expected) => {
    expect(now(v)).toBe(expected)
    expect(oldLink(v)).not.toBe(expected)
  })
})

describe("an admin API body that arrived with its headers", () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startTestServer({ http: { bodyLimitBytes: 2048, keepAliveTimeoutMs: 5000, headersTimeoutMs: 20_000, requestTimeoutMs: 120_000 } })
  })
  afterAll(() => server.close())
  const token = () => fs.readFileSync(path.join(server.dataDir, "admin-token"), "utf8").trim()
  const post = (body: string, extra: Record<string, string> = {}) =>
    request("POST", "/admin/api/targets", { authorization: `Bearer ${token()}`, "content-type": "application/json", "Content-Length": String(Buffer.byteLength(body)), ...extra }, body)

  it("is read whole, over the limit refused, and the connection goes on", async () => {
    const c = await connection(server)
    c.send(post(JSON.stringify({ name: "t1", url: "http://127.0.0.1:9/x" })))
    expect((await c.next(false)).status).toBe(201)
    const big = JSON.stringify({ name: "t2", url: "http://127.0.0.1:9/x", pad: "x".repeat(3000) })
    c.send(
      request("POST", "/admin/api/targets", { authorization: `Bearer ${token()}`, "content-type": "application/json", "Transfer-Encoding": "chunked" }) +
        [big.slice(0, 1500), big.slice(1500)].map((s) => `${s.length.toString(16)}\r\n${s}\r\n`).join("") +
        "0\r\n\r\n"
    )
    const refused = await c.next(false)
    expect(refused.status).toBe(413)
    c.send(post(JSON.stringify({ name: "t3", url: "http://127.0.0.1:9/x" })) + request("GET", "/healthz", {}))
    expect((await c.next(false)).status).toBe(201)
    expect((await c.next(false)).status).toBe(200)
    c.close()
  })
})
