/** Targets that do not answer: timeouts, refused connections and endless answers are retried per the schedule, then dead-lettered with what happened. */
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startTestServer, type TestServer } from "./support/TestServer.js"
import { eventually, startReceiver } from "./support/Receiver.js"

type Rx = Awaited<ReturnType<typeof startReceiver>>
let server: TestServer
let slow: Rx, chatty: Rx
let closedPort: number

const twice = { scheduleMs: [0, 50] }

/** A port nothing listens on: bound once, then released. */
const freedPort = () =>
  new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo
      s.close(() => resolve(port))
    })
  })

interface Dead {
  readonly attempts: ReadonlyArray<{ readonly n: number; readonly status: number | null; readonly error: string | null; readonly response: string | null }>
  readonly reason: string
}

const deadLetters = async (target: string) => {
  const token = fs.readFileSync(path.join(server.dataDir, "admin-token"), "utf8").trim()
  const res = await fetch(`${server.url}/admin/api/dead-letters?target=${target}`, { headers: { authorization: `Bearer ${token}` } })
  return ((await res.json()) as { items: Array<Dead> }).items
}

beforeAll(async () => {
  slow = await startReceiver(() => ({ status: 200, delayMs: 2_000 }))
  // one ASCII byte first: the 2 KB cut falls inside a two-byte character
  chatty = await startReceiver(() => ({ status: 500, body: `x${"é".repeat(5_000)}` }))
  closedPort = await freedPort()
  server = await startTestServer({
    forwarding: { pollIntervalMs: 50, circuitThreshold: 100, retentionDays: 30 },
    targets: [
      { name: "slow", url: slow.url, events: ["callback.*"], timeoutMs: 150, retry: twice },
      { name: "down", url: `http://127.0.0.1:${closedPort}/hook`, events: ["callback.*"], retry: twice },
      { name: "chatty", url: chatty.url, events: ["callback.*"], retry: twice }
    ]
  })
  const res = await fetch(`${server.url}/api/callback.json`, { method: "POST", body: new URLSearchParams({ cbkId: "1", cbkStatus: "1" }) })
  expect(await res.json()).toEqual({ code: 0, message: "OK" })
})
afterAll(async () => {
  await server.close()
  for (const rx of [slow, chatty]) await rx.close()
})

describe("targets that fail to answer", () => {
  it("gives up on an answer after the target's timeoutMs, retries, and dead-letters when the schedule is spent", async () => {
    const [dead] = await eventually(async () => {
      const items = await deadLetters("slow")
      return items.length > 0 && items
    })
    expect(dead!.reason).toBe("exhausted")
    expect(dead!.attempts.map((a) => [a.n, a.status, a.error])).toEqual([
      [1, null, "timed out after 150 ms"],
      [2, null, "timed out after 150 ms"]
    ])
    expect(slow.received.length).toBe(2)
  })

  it("retries a refused connection like any unreachable target", async () => {
    const [dead] = await eventually(async () => {
      const items = await deadLetters("down")
      return items.length > 0 && items
    })
    expect(dead!.reason).toBe("exhausted")
    expect(dead!.attempts).toHaveLength(2)
    for (const a of dead!.attempts) expect(a.error).toMatch(/ECONNREFUSED/)
  })

  it("keeps at most 2 KB of a response", async () => {
    const [dead] = await eventually(async () => {
      const items = await deadLetters("chatty")
      return items.length > 0 && items
    })
    expect(dead!.attempts.map((a) => a.status)).toEqual([500, 500])
    for (const a of dead!.attempts) {
      expect(Buffer.byteLength(a.response ?? "")).toBe(2047)
      expect(a.response).toBe(`x${"é".repeat(1023)}`)
    }
  })
})
