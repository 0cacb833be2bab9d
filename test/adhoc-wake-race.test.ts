/**
 * A callback's push is claimed at once even when the worker's look that takes its wake began
 * before the push was written: that look claims what was due when it began, so it must not use up
 * the wake (the next look, at the next push's wake, skipped $adhoc until the poll, here a minute).
 * Over real HTTP against a real server, its SQLite file and real receivers.
 */
import { describe, expect, it } from "vitest"
import { eventually, startReceiver } from "./support/Receiver.js"
import { asAdmin, startTestServer } from "./support/TestServer.js"

const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64")
// the call rings for a minute: no later status (and no wake for $adhoc) comes while the test runs
const ringing = {
  driver: "simulator",
  simulator: { speed: 1, outcomes: { answered: 1 }, ringMs: { min: 60_000, max: 60_000 }, talkMs: { min: 1000, max: 1000 } },
  callbackDelivery: { timeoutMs: 1000, scheduleMs: [0] }
}

describe("$adhoc wakes", () => {
  it("every callback's push goes within seconds while pushes of calls keep the worker looking (the poll a minute away)", async () => {
    const crm = await startReceiver(() => ({ status: 200 }))
    const cb = await startReceiver(() => ({ status: 200 }))
    // several configured targets: each of the worker's looks claims for each, one commit apiece
    const targets = Array.from({ length: 6 }, (_, i) => ({ name: `crm-${i}`, url: crm.url, events: ["*"] }))
    const server = await startTestServer({
      forwarding: { pollIntervalMs: 60_000, circuitThreshold: 50, circuitCooldownMs: 60_000, retentionDays: 30 },
      telephony: ringing,
      targets
    })
    let pushing = true
    const pushes = (async () => {
      for (let i = 0; pushing; i++) {
        const memo = JSON.stringify({ cdrId: 20_000 + i, cdrExtension: "100008801", cdrStartTime: "2026-11-24 10:00:00" })
        const res = await fetch(`${server.url}/api/voip.json`, { method: "POST", body: new URLSearchParams({ type: "1", peer: "1", memo }) })
        expect(await res.json()).toMatchObject({ code: 0 })
      }
    })()
    try {
      const late: Array<number> = []
      for (let i = 0; i < 15; i++) {
        const r = await asAdmin(server, "callbackPhone", { sourcePhone: "02367073578", descPhone: "13800138001", callbackUrl: b64(`${cb.url}?cbkId={cbkId}`) }, "form")
        expect(r.code).toBe(0)
        const sent = await eventually(() => (cb.received.some((q) => q.url.includes(`cbkId=${r.id}`)) ? true : undefined), 3_000).catch(() => false)
        if (!sent) {
          late.push(i)
          // what is left for the poll goes with the next callback's claim: wait for it to leave the next one clean
          await eventually(() => (cb.received.some((q) => q.url.includes(`cbkId=${r.id}`)) ? true : undefined), 65_000)
          break
        }
      }
      expect(late).toEqual([])
      // the process still serves
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
    } finally {
      pushing = false
      await pushes
      await server.close()
      await cb.close()
      await crm.close()
    }
  }, 120_000)
})
