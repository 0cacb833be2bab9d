/**
 * A target's circuit, seen and handled by an operator: GET /admin/api/targets shows it, and a
 * redrive into an open circuit probes the target at once instead of waiting out the cool-down.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { adminApi } from "./support/AdminApi.js"
import { eventually, startReceiver } from "./support/Receiver.js"
import { startTestServer, type TestServer } from "./support/TestServer.js"

let server: TestServer
let crm: Awaited<ReturnType<typeof startReceiver>>

beforeAll(async () => {
  crm = await startReceiver(() => ({ status: 503 }))
  server = await startTestServer({
    // a long cool-down: a delivery within seconds can only be the redrive's probe
    forwarding: { pollIntervalMs: 50, circuitThreshold: 2, circuitCooldownMs: 120_000, retentionDays: 30 },
    targets: [{ name: "crm", url: crm.url, events: ["call.*"], retry: { scheduleMs: [0] } }]
  })
})
afterAll(async () => {
  await server.close()
  await crm.close()
})

const push = (cdrId: number) =>
  fetch(`${server.url}/api/voip.json`, { method: "POST", body: new URLSearchParams({ type: "3", phone: "13688888888", peer: "1", memo: JSON.stringify({ cdrId, cdrExtension: "100008800" }) }) })

describe("a target's circuit", () => {
  it("is shown by the admin API, closed, then open with when it lets a probe through", async () => {
    const closed = await adminApi(server, "GET", "/targets/crm")
    expect(closed).toMatchObject({ status: 200, body: { name: "crm", circuit: { state: "closed", openUntil: null, failures: 0 } } })
    for (const id of [7001, 7002]) expect((await push(id)).status).toBe(200)
    const dead = await eventually(async () => {
      const d = await adminApi(server, "GET", "/dead-letters?target=crm")
      const items = (d.body as { items: Array<unknown> }).items
      return items.length === 2 && items
    })
    expect(dead).toHaveLength(2)
    const open = await adminApi(server, "GET", "/targets")
    const crmItem = (open.body as { items: Array<{ name: string; circuit: { state: string; openUntil: number | null; failures: number } }> }).items.find((t) => t.name === "crm")!
    expect(crmItem.circuit.state).toBe("open")
    expect(crmItem.circuit.openUntil).toBeGreaterThan(Date.now() + 60_000)
    expect(crmItem.circuit.failures).toBeGreaterThanOrEqual(2)
  })

  it("is graphed: /metrics has the dead letters per target, the circuit, attempts that made a dead letter, events by type, the database's size", async () => {
    const text = await (await fetch(`${server.url}/metrics`)).text()
    const value = (line: RegExp) => Number(line.exec(text)?.[1])
    expect(value(/^bridge_deliveries\{target="crm",state="dead"\} (\d+)$/m)).toBe(2)
    expect(value(/^bridge_deliveries\{target="crm",state="pending"\} (\d+)$/m)).toBe(0)
    expect(value(/^bridge_target_circuit\{target="crm"\} (\d+)$/m)).toBe(2)
    expect(value(/^bridge_delivery_attempts_total\{target="crm",outcome="dead"\} (\d+)$/m)).toBe(2)
    expect(text).not.toMatch(/^bridge_delivery_attempts_total\{target="crm",outcome="retry"\}/m)
    expect(value(/^bridge_events_total\{type="call.hangup"\} (\d+)$/m)).toBe(2)
    expect(value(/^bridge_delivery_oldest_pending_seconds (\S+)$/m)).toBe(0)
    expect(value(/^bridge_sqlite_bytes (\d+)$/m)).toBeGreaterThan(4096)
    expect(text).toMatch(/^bridge_nodejs_eventloop_lag_seconds /m)
  })

  it("a redrive into the open circuit probes at once: fixed, the dead letters are delivered long before the cool-down ends", async () => {
    crm.setAnswer(() => ({ status: 200 }))
    const before = crm.received.length
    const redriven = await adminApi(server, "POST", "/dead-letters/redrive", { target: "crm" })
    expect(redriven).toMatchObject({ status: 200, body: { redriven: 2 } })
    await eventually(() => crm.received.slice(before).filter((r) => r.body.includes("700")).length >= 2)
    expect((await adminApi(server, "GET", "/targets/crm")).body).toMatchObject({ circuit: { state: "closed", failures: 0 } })
  })

  it("a target of the config file is marked so, and is not changed or deleted through the admin API (409 naming the file)", async () => {
    expect((await adminApi(server, "GET", "/targets/crm")).body).toMatchObject({ origin: "config" })
    for (const [method, body] of [["PATCH", { url: "http://127.0.0.1:9/elsewhere" }], ["PATCH", { enabled: false, concurrency: 2 }], ["DELETE", undefined]] as const) {
      const refused = await adminApi(server, method, "/targets/crm", body)
      expect(refused, method).toMatchObject({ status: 409, body: { code: -10, message: expect.stringContaining("config file") } })
    }
    // pausing and resuming it is operating it, not configuring it (autoDisable may have paused it)
    expect(await adminApi(server, "PATCH", "/targets/crm", { enabled: false })).toMatchObject({ status: 200, body: { target: { enabled: false } } })
    expect(await adminApi(server, "PATCH", "/targets/crm", { enabled: true })).toMatchObject({ status: 200, body: { target: { enabled: true } } })
    expect(await adminApi(server, "POST", "/targets", { name: "mine", url: "http://127.0.0.1:9/x" })).toMatchObject({ status: 201 })
    expect((await adminApi(server, "GET", "/targets/mine")).body).toMatchObject({ origin: "api" })
    expect(await adminApi(server, "PATCH", "/targets/mine", { enabled: false })).toMatchObject({ status: 200 })
    expect(await adminApi(server, "DELETE", "/targets/mine")).toMatchObject({ status: 200 })
  })
})
