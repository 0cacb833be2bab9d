/** The HTTP client deliveries go through (src/forwarding/Send.ts), against real receivers on loopback. */
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Answer, send, SendFailed } from "../src/forwarding/Send.js"
import { type Answer as ReceiverAnswer, startReceiver } from "./support/Receiver.js"

const sent = (url: string, headers: Record<string, string> = {}, body = "{}", options: { timeoutMs?: number; excerptBytes?: number; method?: "GET" | "POST" | "PATCH" } = {}) =>
  new Promise<Answer | SendFailed>((resolve) => void send(url, headers, body, { timeoutMs: options.timeoutMs ?? 5_000, excerptBytes: options.excerptBytes ?? 1_024, ...(options.method ? { method: options.method } : {}) }, resolve))

let receiver: Awaited<ReturnType<typeof startReceiver>>
/** the receiver's origin (its url names a path) */
let origin = ""
beforeAll(async () => {
  receiver = await startReceiver((req): ReceiverAnswer =>
    req.url === "/moved"
      ? { status: 302, headers: { location: "/elsewhere" } }
      : req.url === "/busy"
        ? { status: 503, headers: { "retry-after": "7" }, body: "try later" }
        : req.url === "/slow"
          ? { status: 200, delayMs: 1_500 }
          : { status: 200, body: "é".repeat(10) }
  )
  origin = new URL(receiver.url).origin
})
afterAll(() => receiver.close())

describe("send", () => {
  it("posts the body with its headers and answers the status, retry-after and an excerpt cut on a character", async () => {
    const answer = await sent(`${origin}/hook?x=1`, { "content-type": "application/json", "x-one": "1" }, '{"a":"é"}', { excerptBytes: 5 })
    expect(answer).toEqual({ status: 200, retryAfter: null, excerpt: "éé" })
    const got = receiver.received.at(-1)!
    expect(got).toMatchObject({ method: "POST", url: "/hook?x=1", body: '{"a":"é"}' })
    expect(got.headers).toMatchObject({ "content-type": "application/json", "x-one": "1", "content-length": String(Buffer.byteLength('{"a":"é"}')) })
    expect(await sent(`${origin}/busy`)).toEqual({ status: 503, retryAfter: "7", excerpt: "try later" })
  })

  it("does not follow a redirect: a 3xx is the answer", async () => {
    const before = receiver.received.length
    expect(await sent(`${origin}/moved`)).toMatchObject({ status: 302 })
    expect(receiver.received.slice(before).map((r) => r.url)).toEqual(["/moved"])
  })

  it("sends a URL's user and password as Basic authorization, unless the request names its own", async () => {
    const withUser = origin.replace("http://", "http://crm%40user:p%C3%A4ss@")
    await sent(`${withUser}/auth`)
    expect(receiver.received.at(-1)!.headers.authorization).toBe(`Basic ${Buffer.from("crm@user:päss").toString("base64")}`)
    await sent(`${withUser}/auth`, { Authorization: "Bearer t" })
    expect(receiver.received.at(-1)!.headers.authorization).toBe("Bearer t")
  })

  it("fails a request with no answer in time (not for good), and one refused at the door with the system's code", async () => {
    const slow = await sent(`${origin}/slow`, {}, "{}", { timeoutMs: 200 })
    expect(slow).toBeInstanceOf(SendFailed)
    expect(slow).toMatchObject({ message: "timed out after 200 ms", permanent: false })
    // a port nothing listens on: found free by listening, then closed
    const probe = http.createServer()
    await new Promise<void>((ok) => probe.listen(0, "127.0.0.1", ok))
    const port = (probe.address() as AddressInfo).port
    await new Promise((ok) => probe.close(ok))
    const refused = await sent(`http://127.0.0.1:${port}/x`)
    expect(refused).toMatchObject({ permanent: false, message: expect.stringMatching(/^ECONNREFUSED: /) })
  })

  it("sends by node:http what undici will not (an Expect header); fails for good what neither will (a line break in a value, another protocol)", async () => {
    const before = receiver.received.length
    expect(await sent(`${origin}/expecting`, { expect: "100-continue" })).toMatchObject({ status: 200 })
    expect(receiver.received.at(-1)).toMatchObject({ url: "/expecting", headers: { expect: "100-continue" } })
    expect(await sent(`${origin}/x`, { "x-bad": "a\nb" })).toMatchObject({ permanent: true, message: expect.stringMatching(/^the request could not be sent: /) })
    expect(await sent("ftp://127.0.0.1/x")).toMatchObject({ message: "unsupported protocol ftp:" })
    expect(receiver.received.length).toBe(before + 1)
  })

  it("a cancelled request answers nothing", async () => {
    let answered = false
    const cancel = send(`${origin}/slow`, {}, "{}", { timeoutMs: 5_000, excerptBytes: 10 }, () => (answered = true))
    await new Promise((r) => setTimeout(r, 100))
    cancel()
    await new Promise((r) => setTimeout(r, 1_800))
    expect(answered).toBe(false)
  })

  it("reaches an IPv6 literal", async () => {
    const server = http.createServer((_, res) => res.end("v6"))
    const listening = await new Promise<boolean>((ok) => {
      server.once("error", () => ok(false))
      server.listen(0, "::1", () => ok(true))
    })
    // a machine without IPv6 loopback cannot take part; the bracketed origin is what is tested
    if (!listening) return expect(listening).toBe(false)
    const answer = await sent(`http://[::1]:${(server.address() as AddressInfo).port}/`)
    await new Promise((ok) => server.close(ok))
    expect(answer).toEqual({ status: 200, retryAfter: null, excerpt: "v6" })
  })
})
