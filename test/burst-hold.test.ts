/**
 * While pushes arrive in a burst the configured targets' deliveries wait (acknowledging comes
 * first), and they go as soon as the burst is over — not at the next poll, which is a minute
 * away here. Over real HTTP against a real server, its SQLite file and a real receiver.
 */
import { describe, expect, it } from "vitest"
import { eventually, startReceiver } from "./support/Receiver.js"
import { startTestServer } from "./support/TestServer.js"

const CALLS = 600
const PUSHES = 2 * CALLS
const CONNECTIONS = 32

describe("deliveries held during a burst of pushes", () => {
  it("go once the burst is over, every one, in order per call, while the poll is a minute away", async () => {
    const crm = await startReceiver()
    const server = await startTestServer({ forwarding: { pollIntervalMs: 60_000 }, targets: [{ name: "crm", url: crm.url, events: ["call.*"], retry: { scheduleMs: [0] } }] })
    try {
      let next = 0
      let lastAck = 0
      const push = async (cdrId: number, type: string) => {
        const memo = JSON.stringify({ cdrId, cdrExtension: "100008801", cdrStartTime: "2026-11-24 10:00:00" })
        const res = await fetch(`${server.url}/api/voip.json`, { method: "POST", body: new URLSearchParams({ type, peer: "1", memo }) })
        expect(await res.json()).toMatchObject({ code: 0 })
        lastAck = Date.now()
      }
      const client = async () => {
        // two pushes per call, the hang-up acknowledged after the dialling: it must reach the CRM after it too
        for (let i = next++; i < CALLS; i = next++) {
          await push(50_000 + i, "1")
          await push(50_000 + i, "3")
        }
      }
      await Promise.all(Array.from({ length: CONNECTIONS }, client))
      const duringBurst = crm.received.filter((r) => r.at <= lastAck).length
      await eventually(() => (crm.received.length >= PUSHES ? true : undefined), 10_000)
      expect(crm.received).toHaveLength(PUSHES)
      // held: what went meanwhile left before the burst was seen (its first batches). With a
      // quarter of the target's slots during a burst, as before, ~60 of the 1,200 went meanwhile
      expect(duringBurst).toBeLessThan(CONNECTIONS)
      const seen = new Map<number, Array<string>>()
      for (const r of crm.received) {
        const cdrId = Number(/"cdrId":(\d+)/.exec(r.body)?.[1])
        seen.set(cdrId, [...(seen.get(cdrId) ?? []), (JSON.parse(r.body) as { type: string }).type])
      }
      expect(seen.size).toBe(CALLS)
      for (const types of seen.values()) expect(types).toEqual(["call.dialing", "call.hangup"])
      // an operator sees how long deliveries waited for bursts
      const metrics = await (await fetch(`${server.url}/metrics`)).text()
      expect(Number(/^bridge_delivery_held_for_bursts_seconds_total ([\d.e+-]+)$/m.exec(metrics)?.[1])).toBeGreaterThan(0)
    } finally {
      await server.close()
      await crm.close()
    }
  }, 60_000)
})
