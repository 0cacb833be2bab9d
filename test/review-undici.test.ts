/**
 * Review of a50ca33 (deliveries on undici's dispatcher): what node:http did for a delivery that
 * the undici client no longer does. Real receivers on loopback, the real bridge.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as net from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { send, SendFailed, type Answer } from "../src/forwarding/Send.js"
import { adminApi } from "./support/AdminApi.js"
import { eventually } from "./support/Receiver.js"
import { startTestServer, type TestServer } from "./support/TestServer.js"

/** A raw receiver: `answer` gets the socket once a whole request (headers and content-length body) is in. */
const rawReceiver = (answer: (socket: net.Socket) => void) =>
  new Promise<{ port: number; requests: () => number; close: () => Promise<void> }>((resolve) => {
    let requests = 0
    const sockets = new Set<net.Socket>()
    const server = net.createServer((socket) => {
      sockets.add(socket)
      socket.on("close", () => sockets.delete(socket))
      socket.on("error", () => undefined)
      let buffered = ""
      socket.on("data", (d: Buffer) => {
        buffered += d.toString("latin1")
        const end = buffered.indexOf("\r\n\r\n")
        if (end < 0) return
        const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(buffered.slice(0, end))?.[1] ?? 0)
        if (buffered.length < end + 4 + length) return
        buffered = buffered.slice(end + 4 + length)
        requests++
        answer(socket)
      })
    })
    server.listen(0, "127.0.0.1", () =>
      resolve({
        port: (server.address() as net.AddressInfo).port,
        requests: () => requests,
        close: () =>
          new Promise((done) => {
            for (const s of sockets) s.destroy()
            server.close(() => done())
          })
      })
    )
  })

/**
 * A port whose connects hang: a listener with a backlog of one in a stopped process (it accepts
 * nothing), its accept queue filled, so the kernel drops further SYNs — as an unreachable host does.
 */
const hangingPort = async () => {
  const child = spawn(
    process.execPath,
    ["-e", `const s=require("net").createServer();s.listen({port:0,host:"127.0.0.1",backlog:1},()=>{process.stdout.write(s.address().port+"\\n");process.kill(process.pid,"SIGSTOP")})`],
    { stdio: ["ignore", "pipe", "inherit"] }
  )
  const port = await new Promise<number>((ok) => child.stdout!.once("data", (d: Buffer) => ok(Number(String(d).trim()))))
  await new Promise((r) => setTimeout(r, 100))
  const fillers: Array<net.Socket> = []
  for (let i = 0; i < 4; i++) fillers.push(net.connect(port, "127.0.0.1").on("error", () => undefined))
  await new Promise((r) => setTimeout(r, 300))
  return { port, child, close: () => { for (const s of fillers) s.destroy(); child.kill("SIGKILL") } }
}

let server: TestServer
let continuing: Awaited<ReturnType<typeof rawReceiver>>
let hanging: { port: number; child: ChildProcess; close: () => void }

beforeAll(async () => {
  // an interim 100 before the final answer, which RFC 9110 §15.2 says a client must be able to parse
  continuing = await rawReceiver((socket) => socket.write("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
  hanging = await hangingPort()
  server = await startTestServer({
    forwarding: { pollIntervalMs: 50, circuitThreshold: 100, retentionDays: 30 },
    targets: [
      { name: "continuing", url: `http://127.0.0.1:${continuing.port}/hook`, events: ["callback.*"], retry: { scheduleMs: [0, 50] } },
      { name: "unreachable", url: `http://127.0.0.1:${hanging.port}/hook`, events: ["callback.*"], timeoutMs: 12_000, retry: { scheduleMs: [0] } }
    ]
  })
  const res = await fetch(`${server.url}/api/callback.json`, { method: "POST", body: new URLSearchParams({ cbkId: "1", cbkStatus: "1" }) })
  expect(await res.json()).toEqual({ code: 0, message: "OK" })
})
afterAll(async () => {
  await server?.close()
  await continuing?.close()
  hanging?.close()
})

interface Item {
  readonly status: string
  readonly attempts: ReadonlyArray<{ readonly status: number | null; readonly error: string | null }>
}
const deliveriesOf = async (target: string) => ((await adminApi(server, "GET", `/deliveries?target=${target}`)).body as { items: Array<Item> }).items

describe("deliveries on undici, against what node:http did", () => {
  it("delivers to a receiver that sends a 100 Continue before its answer (undici drops the connection: node:http sends it instead, and that origin's later ones)", async () => {
    const [item] = await eventually(async () => {
      const items = await deliveriesOf("continuing")
      return items.length > 0 && items.every((i) => i.status === "delivered" || i.status === "dead") && items
    })
    expect(item!.attempts.map((a) => [a.status, a.error])).toEqual([[200, null]])
    expect(item!.status).toBe("delivered")
    // undici sent it and dropped the connection at the 100; node:http sent it again at once
    // (same webhook-id): the one delivery the receiver sees twice
    expect(continuing.requests()).toBe(2)
    // that origin's next deliveries go to node:http alone
    const res = await fetch(`${server.url}/api/callback.json`, { method: "POST", body: new URLSearchParams({ cbkId: "2", cbkStatus: "1" }) })
    expect(await res.json()).toEqual({ code: 0, message: "OK" })
    await eventually(async () => (await deliveriesOf("continuing")).filter((i) => i.status === "delivered").length === 2)
    expect(continuing.requests()).toBe(3)
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
  })

  it("a target's timeoutMs bounds a connect that hangs: no undici connect timeout of 10 s cuts it short", async () => {
    const [item] = await eventually(async () => {
      const items = await deliveriesOf("unreachable")
      return items.length > 0 && items.every((i) => i.status === "dead") && items
    }, 20_000)
    expect(item!.attempts.map((a) => [a.status, a.error])).toEqual([[null, "timed out after 12000 ms"]])
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
  }, 25_000)

  it("keeps the first of two Retry-After headers, as node:http did (undici hands both over as an array)", async () => {
    const rx = await rawReceiver((socket) => socket.write("HTTP/1.1 429 Too Many\r\nRetry-After: 5\r\nRetry-After: 6\r\nContent-Length: 0\r\n\r\n"))
    const answer = await new Promise<Answer | SendFailed>((ok) => void send(`http://127.0.0.1:${rx.port}/x`, {}, "{}", { timeoutMs: 2_000, excerptBytes: 10 }, ok))
    await rx.close()
    expect(answer).toEqual({ status: 429, retryAfter: "5", excerpt: "" })
  })
})
