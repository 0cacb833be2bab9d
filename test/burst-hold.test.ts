/**
 * While pushes arrive in a burst the configured targets' deliveries wait (acknowledging comes
 * first), and they go as soon as the burst is over — not at the next poll, which is a minute
 * away here; with `forwarding.holdDuringBursts` false they go meanwhile. Over real HTTP against
 * a real server, its SQLite file and a real receiver.
 */
import { describe, expect, it } from "vitest"
import { eventually, startReceiver } from "./support/Receiver.js"
import { startTestServer } from "./support/TestServer.js"

const CALLS = 600
const PUSHES = 2 * CALLS
const CONNECTIONS = 32

/** 1,200 pushes from 32 connections, two per call (dialling, then hang-up, in that order); answers when the last was acknowledged */
const burst = async (url: string) => {
  let next = 0
  let lastAck = 0
  const push = async (cdrId: number, type: string) => {
    const memo = JSON.stringify({ cdrId, cdrExtension: "100008801", cdrStartTime: "2026-11-24 10:00:00" })
    const res = await fetch(`${url}/api/voip.json`, { method: "POST", body: new URLSearchParams({ type, peer: "1", memo }) })
    expect(await res.json()).toMatchObject({ code: 0 })
    lastAck = Date.now()
  }
  const client = async () => {
    // the hang-up is acknowledged after the dialling: it must reach the CRM after it too
    for (let i = next++; i < CALLS; i = next++) {
      await push(50_000 + i, "1")
      await push(50_000 + i, "3")
    }
  }
  await Promise.all(Array.from({ length: CONNECTIONS }, client))
  return lastAck
}

/** every call reached the receiver once per push, dialling first */
const expectInOrder = (received: ReadonlyArray<{ body: string }>) => {
  const seen = new Map<number, Array<string>>()
  for (const r of received) {
    const cdrId = Number(/"cdrId":(\d+)/.exec(r.body)?.[1])
    seen.set(cdrId, [...(seen.get(cdrId) ?? []), (JSON.parse(r.body) as { type: string }).type])
  }
  expect(seen.size).toBe(CALLS)
  for (const types of seen.values()) expect(types).toEqual(["call.dialing", "call.hangup"])
}

const heldSeconds = async (url: string) =>
  Number(/^bridge_delivery_held_for_bursts_seconds_total ([\d.e+-]+)$/m.exec(await (await fetch(`${url}/metrics`)).text())?.[1])

describe("deliveries held during a burst of pushes", () => {
  it("go once the burst is over, every one, in order per call, while the poll is a minute away", async () => {
    const crm = await startReceiver()
    const started = Date.now()
    const server = await startTestServer({ forwarding: { pollIntervalMs: 60_000 }, targets: [{ name: "crm", url: crm.url, events: ["call.*"], retry: { scheduleMs: [0] } }] })
    try {
      const lastAck = await burst(server.url)
      const duringBurst = crm.received.filter((r) => r.at <= lastAck).length
      await eventually(() => (crm.received.length >= PUSHES ? true : undefined), 10_000)
      expect(crm.received).toHaveLength(PUSHES)
      // held: what went meanwhile left before the burst was seen (its first batches). With a
      // quarter of the target's slots during a burst, as before, ~60 of the 1,200 went meanwhile
      expect(duringBurst).toBeLessThan(CONNECTIONS)
      expectInOrder(crm.received)
      // an operator sees how long deliveries waited for bursts
      const held = await heldSeconds(server.url)
      expect(held).toBeGreaterThan(0)
      // in seconds, and no more than the time the server has been running
      expect(held).toBeLessThanOrEqual((Date.now() - started) / 1000)
    } finally {
      await server.close()
      await crm.close()
    }
  }, 60_000)

  it("go meanwhile, at the target's full concurrency, with forwarding.holdDuringBursts false", async () => {
    const crm = await startReceiver()
    const server = await startTestServer({ forwarding: { pollIntervalMs: 60_000, holdDuringBursts: false }, targets: [{ name: "crm", url: crm.url, events: ["call.*"], concurrency: 16, retry: { scheduleMs: [0] } }] })
    try {
      const lastAck = await burst(server.url)
      const duringBurst = crm.received.filter((r) => r.at <= lastAck).length
      await eventually(() => (crm.received.length >= PUSHES ? true : undefined), 10_000)
      expect(crm.received).toHaveLength(PUSHES)
      // the held case lets fewer than 32 through (4 in a run); here they go as they come
      expect(duringBurst).toBeGreaterThan(4 * CONNECTIONS)
      expectInOrder(crm.received)
      expect(await heldSeconds(server.url)).toBe(0)
    } finally {
      await server.close()
      await crm.close()
    }
  }, 60_000)
})
