/**
 * Receivers that break the conversation — cut the connection, answer something that is not
 * HTTP, stop half-way through an answer, or trickle it past the timeout — are retried as
 * unreachable targets, never counted as delivered; once the receiver behaves, every event
 * reaches it.
 */
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { eventually } from "./support/Receiver.js"
import { startTestServer, type TestServer } from "./support/TestServer.js"

type Misbehaviour = "cut" | "garbled" | "half" | "trickle"

/** A raw TCP receiver: misbehaves as told until `heal()`, then answers 200 and records the event ids. */
const rawReceiver = (how: Misbehaviour) =>
  new Promise<{ url: string; tries: () => number; delivered: Set<string>; heal: () => void; close: () => void }>((resolve) => {
    let healed = false
    let tries = 0
    const delivered = new Set<string>()
    const sockets = new Set<net.Socket>()
    const server = net.createServer((socket) => {
      sockets.add(socket)
      socket.on("close", () => sockets.delete(socket))
      socket.on("error", () => socket.destroy())
      let data = ""
      socket.on("data", (c: Buffer) => {
        data += c.toString("utf8")
        const head = data.indexOf("\r\n\r\n")
        if (head < 0) return
        const length = Number(/content-length: (\d+)/i.exec(data.slice(0, head))?.[1] ?? 0)
        if (data.length < head + 4 + length) return
        const body = data.slice(head + 4, head + 4 + length)
        data = ""
        tries++
        if (healed) {
          delivered.add((JSON.parse(body) as { id: string }).id)
          socket.end("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
          return
        }
        if (how === "cut") socket.destroy()
        else if (how === "garbled") socket.end("HELLO THERE \u0000\u0001\u0002\r\n\r\n")
        else if (how === "half") {
          socket.write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b")
          setTimeout(() => socket.destroy(), 20)
        } else {
          // a status line, then a byte now and then, past the target's timeout
          socket.write("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
          const drip = setInterval(() => (socket.writable ? socket.write("x") : clearInterval(drip)), 50)
          socket.on("close", () => clearInterval(drip))
        }
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo
      resolve({
        url: `http://127.0.0.1:${port}/hook`,
        tries: () => tries,
        delivered,
        heal: () => (healed = true),
        close: () => {
          for (const s of sockets) s.destroy()
          server.close()
        }
      })
    })
  })

const kinds: ReadonlyArray<Misbehaviour> = ["cut", "garbled", "half", "trickle"]
const servers: Array<TestServer> = []
const receivers: Array<{ close: () => void }> = []
afterAll(async () => {
  for (const s of servers) await s.close()
  for (const r of receivers) r.close()
})

const deliveries = (server: TestServer) => {
  const token = fs.readFileSync(path.join(server.dataDir, "admin-token"), "utf8").trim()
  return fetch(`${server.url}/admin/api/deliveries`, { headers: { authorization: `Bearer ${token}` } }).then(
    async (r) => ((await r.json()) as { items: Array<{ status: string; attempts: number }> }).items
  )
}

describe("receivers that break the conversation", () => {
  it.each(kinds)("%s: retried, never counted delivered while it misbehaves, delivered once it answers", { timeout: 30_000 }, async (kind) => {
    const receiver = await rawReceiver(kind)
    receivers.push(receiver)
    const server = await startTestServer({
      forwarding: { pollIntervalMs: 50, circuitThreshold: 1000, retentionDays: 30, circuitCooldownMs: 100 },
      targets: [{ name: kind, url: receiver.url, events: ["callback.*"], timeoutMs: 300, retry: { scheduleMs: [0, ...Array.from({ length: 40 }, () => 100)] } }]
    })
    servers.push(server)
    for (let i = 1; i <= 3; i++) {
      const res = await fetch(`${server.url}/api/callback.json`, { method: "POST", body: new URLSearchParams({ cbkId: String(i), cbkStatus: "1" }) })
      expect(await res.json()).toEqual({ code: 0, message: "OK" })
    }
    await eventually(() => receiver.tries() >= 6, 10_000)
    const during = await deliveries(server)
    expect(during.filter((d) => d.status === "delivered")).toEqual([])
    expect(during.every((d) => d.status === "pending" || d.status === "in_flight")).toBe(true)
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200)

    receiver.heal()
    const all = await eventually(async () => {
      const now = await deliveries(server)
      return now.length === 3 && now.every((d) => d.status === "delivered") ? now : undefined
    }, 20_000, () => deliveries(server))
    expect(all).toHaveLength(3)
    expect(receiver.delivered.size).toBe(3)
  })
})
