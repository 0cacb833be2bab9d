/**
 * Review of 130cf1e (node:http kept for what undici will not do): the switch between the two
 * transports of src/forwarding/Send.ts — every delivery answered once (or, cancelled, never),
 * across a timeout or a cancel that lands while undici loads or after node:http took over, and
 * an origin sent to node:http only for an unasked 100. Real receivers on loopback; which client
 * sent a request is told by its header case (node:http writes `Host:`, undici `host:`).
 */
import * as net from "node:net"
import { afterAll, describe, expect, it } from "vitest"
import { type Answer, send, SendFailed } from "../src/forwarding/Send.js"
import { eventually } from "./support/Receiver.js"

interface Seen {
  readonly head: string
  readonly socket: net.Socket
}
/** A raw receiver: `answer` gets each whole request (head and content-length body) with its socket. */
const rawReceiver = (answer: (seen: Seen, n: number) => void) =>
  new Promise<{ origin: string; seen: Array<Seen>; closed: () => number; close: () => Promise<void> }>((resolve) => {
    const seen: Array<Seen> = []
    const sockets = new Set<net.Socket>()
    let closed = 0
    const server = net.createServer((socket) => {
      sockets.add(socket)
      socket.on("close", () => {
        sockets.delete(socket)
        closed++
      })
      socket.on("error", () => undefined)
      let buffered = ""
      socket.on("data", (d: Buffer) => {
        buffered += d.toString("latin1")
        for (;;) {
          const end = buffered.indexOf("\r\n\r\n")
          if (end < 0) return
          const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(buffered.slice(0, end))?.[1] ?? 0)
          if (buffered.length < end + 4 + length) return
          const s = { head: buffered.slice(0, end), socket }
          buffered = buffered.slice(end + 4 + length)
          seen.push(s)
          answer(s, seen.length)
        }
      })
    })
    server.listen(0, "127.0.0.1", () =>
      resolve({
        origin: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
        seen,
        closed: () => closed,
        close: () =>
          new Promise((done) => {
            for (const s of sockets) s.destroy()
            server.close(() => done())
          })
      })
    )
  })

const opened: Array<{ close: () => Promise<void> }> = []
const receiver = async (answer: (seen: Seen, n: number) => void) => {
  const r = await rawReceiver(answer)
  opened.push(r)
  return r
}
afterAll(async () => {
  for (const r of opened) await r.close()
})

const OK = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
const CONTINUE = "HTTP/1.1 100 Continue\r\n\r\n"
const byNode = (s: Seen) => /\r\nHost: /.test(s.head)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** every answer `send` gives, in order */
const answers = (url: string, options: { timeoutMs?: number } = {}) => {
  const got: Array<Answer | SendFailed> = []
  const cancel = send(url, {}, "{}", { timeoutMs: options.timeoutMs ?? 5_000, excerptBytes: 100 }, (a) => got.push(a))
  return { got, cancel }
}

describe("the switch from undici to node:http (130cf1e)", () => {
  // first in this file: undici is loaded by the first request of the process
  it("a cancel or a timeout while undici loads: nothing sent for the cancel, one answer for the timeout", async () => {
    const r = await receiver((s) => s.socket.write(OK))
    const cancelled = answers(`${r.origin}/cancelled`)
    cancelled.cancel()
    const timedOut = answers(`${r.origin}/timed-out`, { timeoutMs: 1 })
    await eventually(() => timedOut.got.length > 0)
    // a request after them shows undici loaded and the receiver reached
    const after = answers(`${r.origin}/after`)
    await eventually(() => after.got.length > 0)
    expect(after.got).toEqual([{ status: 200, retryAfter: null, excerpt: "ok" }])
    expect(cancelled.got).toEqual([])
    expect(timedOut.got).toHaveLength(1)
    expect(timedOut.got[0]).toMatchObject({ message: "timed out after 1 ms", permanent: false })
    expect(r.seen.filter((s) => s.head.startsWith("POST /cancelled "))).toEqual([])
  })

  it("a timeout after node:http took over answers once and ends the node:http request", async () => {
    const r = await receiver((s) => s.socket.write(CONTINUE))
    const a = answers(`${r.origin}/x`, { timeoutMs: 500 })
    await eventually(() => a.got.length > 0)
    // both connections end: undici's at the 100, node:http's at the timeout
    await eventually(() => r.closed() === 2)
    expect(r.seen.map(byNode)).toEqual([false, true])
    expect(a.got).toHaveLength(1)
    expect(a.got[0]).toMatchObject({ message: "timed out after 500 ms", permanent: false })
  })

  it("a cancel after node:http took over answers nothing, even when the answer comes after", async () => {
    let late: (() => void) | undefined
    const r = await receiver((s) => {
      s.socket.write(CONTINUE)
      late = () => void (s.socket.destroyed || s.socket.write(OK))
    })
    const a = answers(`${r.origin}/x`)
    await eventually(() => r.seen.length === 2)
    a.cancel()
    late!()
    await eventually(() => r.closed() === 2)
    await sleep(50)
    expect(r.seen.map(byNode)).toEqual([false, true])
    expect(a.got).toEqual([])
  })

  it("many at once to an origin that sends an unasked 100, half cancelled at staggered times: none answered twice, the rest answered 200", async () => {
    const r = await receiver((s) => {
      s.socket.write(CONTINUE)
      setTimeout(() => s.socket.destroyed || s.socket.write(OK), 20)
    })
    const all = Array.from({ length: 30 }, (_, i) => {
      const a = answers(`${r.origin}/x${i}`, { timeoutMs: 3_000 })
      if (i % 2 === 1) setTimeout(a.cancel, i * 2)
      return a
    })
    await eventually(() => all.every((a, i) => i % 2 === 1 || a.got.length > 0))
    await sleep(100)
    all.forEach((a, i) => {
      expect(a.got.length).toBeLessThanOrEqual(1)
      if (i % 2 === 0) expect(a.got).toEqual([{ status: 200, retryAfter: null, excerpt: "ok" }])
    })
  })

  it("only an unasked 100 sends an origin to node:http: a response with no request waiting (an extra one, a stray 100 on an idle connection) does not", async () => {
    // undici raises the same `bad response` for these, but on a socket with no request running,
    // so no delivery sees it (client-h1.js onMessageBegin / onHeadersComplete, kRunning === 0)
    const extra = await receiver((s, n) => s.socket.write(n === 1 ? `${OK}HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n` : OK))
    const stray = await receiver((s, n) => {
      s.socket.write(OK)
      if (n === 1) setTimeout(() => s.socket.write(CONTINUE), 50)
    })
    for (const r of [extra, stray]) {
      const first = answers(`${r.origin}/first`)
      await eventually(() => first.got.length > 0)
      await sleep(150)
      const second = answers(`${r.origin}/second`)
      await eventually(() => second.got.length > 0)
      expect([first.got, second.got]).toEqual([[{ status: 200, retryAfter: null, excerpt: "ok" }], [{ status: 200, retryAfter: null, excerpt: "ok" }]])
      expect(r.seen.map(byNode)).toEqual([false, false])
    }
  })
})
