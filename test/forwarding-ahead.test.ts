/**
 * Deliveries claimed ahead of a free slot (the worker keeps up to a target's concurrency of them
 * so a freed slot does not wait for a claim's commit): still one request at a time at
 * concurrency 1, and given back — pending, not left in flight, not sent — when the target is
 * paused or its circuit opens; sent once it is enabled or answers again.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { adminApi } from "./support/AdminApi.js"
import { eventually, startReceiver } from "./support/Receiver.js"
import { startTestServer, type TestServer } from "./support/TestServer.js"

type Rx = Awaited<ReturnType<typeof startReceiver>>
let server: TestServer
let slow: Rx, failing: Rx

const push = (cbkId: number) =>
  fetch(`${server.url}/api/callback.json`, { method: "POST", body: new URLSearchParams({ cbkId: String(cbkId), cbkStatus: "1" }) }).then((r) => r.json() as Promise<{ code: number }>)
const deliveriesOf = async (target: string) =>
  ((await adminApi(server, "GET", `/deliveries?target=${target}&limit=100`)).body.items as Array<{ id: number; status: string }>)
const sentCalls = (rx: Rx) => rx.received.map((r) => (JSON.parse(r.body) as { data: { cbkId: string } }).data.cbkId)

beforeAll(async () => {
  slow = await startReceiver(() => ({ status: 200, delayMs: 300 }))
  failing = await startReceiver(() => ({ status: 503 }))
  server = await startTestServer({ forwarding: { pollIntervalMs: 50, circuitThreshold: 1, circuitCooldownMs: 60_000, retentionDays: 30 } })
  for (const [name, rx] of [["slow", slow], ["failing", failing]] as const)
    expect((await adminApi(server, "POST", "/targets", { name, url: rx.url, events: ["callback.*"], concurrency: 1, retry: { scheduleMs: [0, 60_000] } })).body).toMatchObject({ code: 0 })
})
afterAll(async () => {
  await server.close()
  for (const rx of [slow, failing]) await rx.close()
})

describe("deliveries claimed ahead", () => {
  it("go back to pending, unsent, when their target is paused; all go once it is enabled, one at a time", async () => {
    for (const id of [1, 2, 3, 4]) expect((await push(id)).code).toBe(0)
    await eventually(() => slow.received.length === 1)
    expect((await adminApi(server, "PATCH", "/targets/slow", { enabled: false })).body).toMatchObject({ code: 0 })
    // the send under way finishes; nothing else goes, and nothing is left in flight
    const waiting = await eventually(async () => {
      const ds = await deliveriesOf("slow")
      return ds.filter((d) => d.status === "delivered").length === 1 && ds.filter((d) => d.status === "pending").length === 3 && ds
    })
    expect(waiting.map((d) => d.status).sort()).toEqual(["delivered", "pending", "pending", "pending"])
    await new Promise((r) => setTimeout(r, 400))
    expect(slow.received).toHaveLength(1)

    expect((await adminApi(server, "PATCH", "/targets/slow", { enabled: true })).body).toMatchObject({ code: 0 })
    await eventually(async () => (await deliveriesOf("slow")).every((d) => d.status === "delivered"))
    expect(sentCalls(slow).sort()).toEqual(["1", "2", "3", "4"])
    expect(slow.maxInFlight()).toBe(1)
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
  })

  it("go back to pending, unsent, when their target's circuit opens", async () => {
    // pushes 1–4 went to `failing` too: its first failure opened the circuit for a minute
    const ds = await eventually(async () => {
      const all = await deliveriesOf("failing")
      return all.length === 4 && all.every((d) => d.status === "pending") && all
    })
    expect(ds).toHaveLength(4)
    expect(failing.received).toHaveLength(1)
    const circuit = (await adminApi(server, "GET", "/targets/failing")).body.circuit as { state: string }
    expect(circuit.state).toBe("open")
  })
})
