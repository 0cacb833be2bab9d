/** Per-target concurrency, rate limit and the opt-in automatic disabling of a failing target. */
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startTestServer, type TestServer } from "./support/TestServer.js"
import { eventually, startReceiver } from "./support/Receiver.js"

type Rx = Awaited<ReturnType<typeof startReceiver>>
let server: TestServer
let serial: Rx, limited: Rx, dying: Rx

const push = (cbkId: number) =>
  fetch(`${server.url}/api/callback.json`, { method: "POST", body: new URLSearchParams({ cbkId: String(cbkId), cbkStatus: "1" }) }).then((r) => r.json() as Promise<{ code: number }>)

beforeAll(async () => {
  serial = await startReceiver(() => ({ status: 200, delayMs: 50 }))
  limited = await startReceiver(() => ({ status: 200 }))
  dying = await startReceiver(() => ({ status: 503 }))
  server = await startTestServer({
    forwarding: { pollIntervalMs: 50, circuitThreshold: 3, circuitCooldownMs: 60_000, retentionDays: 30 },
    targets: [
      { name: "serial", url: serial.url, events: ["callback.*"], concurrency: 1 },
      { name: "limited", url: limited.url, events: ["callback.*"], rateLimit: 5 },
      { name: "dying", url: dying.url, events: ["callback.*"], autoDisable: true, retry: { scheduleMs: [0, 20, 20, 20, 20] } }
    ]
  })
})
afterAll(async () => {
  await server.close()
  for (const rx of [serial, limited, dying]) await rx.close()
})

describe("per-target limits", () => {
  it("never has more requests in flight to a target than its concurrency, and keeps to its rate", async () => {
    const answers = await Promise.all(Array.from({ length: 6 }, (_, i) => push(100 + i)))
    expect(answers.every((a) => a.code === 0)).toBe(true)
    await eventually(() => serial.received.length === 6 && limited.received.length === 6)
    expect(serial.maxInFlight()).toBe(1)
    // 5 per second: six sends span about a second; unlimited they would land within a few ms.
    // Only a loose lower bound, since arrival times jitter on a busy machine.
    const times = limited.received.map((r) => r.at)
    expect(Math.max(...times) - Math.min(...times)).toBeGreaterThanOrEqual(500)
  })

  it("disables a target whose circuit opens when autoDisable is set", async () => {
    await eventually(() => dying.received.length >= 3)
    const token = fs.readFileSync(path.join(server.dataDir, "admin-token"), "utf8").trim()
    const target = await eventually(async () => {
      const t = (await (await fetch(`${server.url}/admin/api/targets/dying`, { headers: { authorization: `Bearer ${token}` } })).json()) as { enabled: boolean }
      return t.enabled === false && t
    })
    expect(target.enabled).toBe(false)
    const before = dying.received.length
    await push(200)
    await new Promise((r) => setTimeout(r, 300))
    expect(dying.received.length).toBe(before)
  })
})
