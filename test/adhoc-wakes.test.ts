/**
 * Callbacks' own deliveries ($adhoc) are claimed when something is added for them or once a poll
 * interval has passed, not at every push's wake (an empty claim per push cost ingest ~10 µs).
 * Both ways in, and a look that takes a push's wake after it began (it must claim what is due
 * then, not use the wake up), over real HTTP against a real server, its SQLite file and receivers.
 */
import * as path from "node:path"
import Database from "better-sqlite3"
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

describe("$adhoc deliveries", () => {
  it("a callback's push is sent at once, and one redriven by another process (the dlq CLI) within a poll interval", async () => {
    let up = false
    const cb = await startReceiver(() => ({ status: up ? 200 : 500 }))
    const server = await startTestServer({
      forwarding: { pollIntervalMs: 200, circuitThreshold: 50, circuitCooldownMs: 60_000, retentionDays: 30 },
      telephony: ringing
    })
    const db = new Database(path.join(server.dataDir, "bridge.db"))
    try {
      const r = await asAdmin(server, "callbackPhone", { sourcePhone: "02367073578", descPhone: "13800138001", callbackUrl: b64(`${cb.url}?cbkId={cbkId}`) }, "form")
      expect(r.code).toBe(0)
      // woken by the callback itself: its one attempt goes, fails, and the push is a dead letter
      const dead = await eventually(() => {
        const rows = db.prepare(`SELECT id FROM deliveries WHERE target = '$adhoc' AND status = 'dead'`).all() as Array<{ id: number }>
        return rows.length > 0 ? rows : undefined
      }, 5_000)
      expect(cb.received).toHaveLength(1)
      // pushes of calls meanwhile wake the worker for the configured targets only
      for (let i = 0; i < 20; i++) {
        const memo = JSON.stringify({ cdrId: 9_000 + i, cdrExtension: "100008801", cdrStartTime: "2026-11-24 10:00:00" })
        const res = await fetch(`${server.url}/api/voip.json`, { method: "POST", body: new URLSearchParams({ type: "1", peer: "1", memo }) })
        expect(await res.json()).toMatchObject({ code: 0 })
      }
      // redriven on another connection, as `dlq redrive` does from its own process: no wake reaches this one
      up = true
      const now = Date.now()
      const changed = db.prepare(`UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?, dead_reason = NULL, last_error = NULL, updated_at = ? WHERE target = '$adhoc' AND status = 'dead'`).run(now, now).changes
      expect(changed).toBe(dead.length)
      await eventually(() => (cb.received.length >= 2 ? true : undefined), 3_000)
      expect(cb.received[1]!.url).toContain(`cbkId=${r.id}`)
      await eventually(() => (db.prepare(`SELECT count(*) AS n FROM deliveries WHERE target = '$adhoc' AND status = 'delivered'`).get() as { n: number }).n === dead.length || undefined, 3_000)
    } finally {
      db.close()
      await server.close()
      await cb.close()
    }
  }, 20_000)

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
