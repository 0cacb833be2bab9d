/**
 * Plain deliveries (a target without a transform, OAuth2, rate limit or template requests: the
 * common webhook) are sent in plain code and their outcomes written many to a transaction
 * (Worker.ts). What that must not change: an outcome that cannot be written fails alone, and a
 * send cut short by shutdown is sent again at the next start, with the same webhook-id.
 */
import * as path from "node:path"
import Database from "better-sqlite3"
import { describe, expect, it } from "vitest"
import { startServer } from "../src/http/Server.js"
import { tempDir, testConfig } from "./support/TestServer.js"
import { eventually, type Received, startReceiver } from "./support/Receiver.js"

const configFor = (dataDir: string, url: string) =>
  testConfig(dataDir, { forwarding: { pollIntervalMs: 50 }, targets: [{ name: "hooks", url, events: ["callback.*"], concurrency: 16, retry: { scheduleMs: [0, 50] } }] })

const POISON = "424242"

/** Each delivery's status and attempts written, by the callback's cbkId. */
const statuses = (dataDir: string) => {
  const r = new Database(path.join(dataDir, "bridge.db"), { readonly: true })
  try {
    const rows = r
      .prepare(
        `SELECT json_extract(e.data, '$.cbkId') AS cbk, d.status, (SELECT count(*) FROM attempts a WHERE a.delivery_id = d.id) AS attempts
         FROM deliveries d JOIN events e ON e.id = d.event_id WHERE d.target = 'hooks'`
      )
      .all() as Array<{ cbk: string | number; status: string; attempts: number }>
    return new Map(rows.map((row) => [String(row.cbk), row]))
  } finally {
    r.close()
  }
}

const callback = (url: string, cbkId: string) => fetch(`${url}/api/callback.json?cbkId=${cbkId}&cbkStatus=1`).then((r) => r.json())

describe("plain deliveries' outcomes written together", () => {
  it("an outcome that cannot be written fails alone; its delivery is sent again at the next start, with the same webhook-id", { timeout: 30_000 }, async () => {
    const ids = ["11", "12", "13", "14", "15", "16", "17", POISON]
    // every request answered at one moment, 1 s after the first came: the outcomes arrive together
    let answerAt = 0
    const barrier = await startReceiver(() => {
      if (answerAt === 0) answerAt = Date.now() + 1_000
      return { status: 200, delayMs: Math.max(0, answerAt - Date.now()) }
    })
    const rx = await startReceiver()
    const dataDir = tempDir()
    let bridge = await startServer(await configFor(dataDir, barrier.url))
    try {
      const w = new Database(path.join(dataDir, "bridge.db"))
      w.pragma("busy_timeout = 5000")
      // a write one outcome cannot make (the store refuses its attempt's row)
      w.exec(`CREATE TRIGGER poison BEFORE INSERT ON attempts
        WHEN (SELECT CAST(json_extract(e.data, '$.cbkId') AS TEXT) FROM deliveries d JOIN events e ON e.id = d.event_id WHERE d.id = NEW.delivery_id) = '${POISON}'
        BEGIN SELECT RAISE(ABORT, 'poisoned outcome'); END`)
      for (const id of ids) expect(await callback(bridge.url, id)).toEqual({ code: 0, message: "OK" })
      // the others are written; the poisoned one is left in flight (its outcome not written), not retried unseen
      const after = await eventually(() => {
        const s = statuses(dataDir)
        return ids.slice(0, -1).every((id) => s.get(id)?.status === "delivered") && s.get(POISON)?.status === "in_flight" && s
      })
      expect(after.get(POISON)!.attempts).toBe(0)
      expect(ids.slice(0, -1).map((id) => after.get(id)!.attempts)).toEqual(ids.slice(0, -1).map(() => 1))
      expect(barrier.received).toHaveLength(ids.length)
      await bridge.close()
      w.exec("DROP TRIGGER poison")
      w.close()
      // the next start: what was in flight is due again, and goes
      bridge = await startServer(await configFor(dataDir, rx.url))
      await eventually(() => statuses(dataDir).get(POISON)?.status === "delivered")
      const first = barrier.received.find((r: Received) => r.body.includes(POISON))!
      expect(rx.received).toHaveLength(1)
      expect(rx.received[0]!.headers["webhook-id"]).toBe(first.headers["webhook-id"])
    } finally {
      await bridge.close()
      await rx.close()
      await barrier.close()
    }
  })

  it("a send not answered by shutdown is cut short after the grace, and sent again at the next start", { timeout: 40_000 }, async () => {
    const silent = await startReceiver(() => ({ status: 200, delayMs: 60_000 }))
    const rx = await startReceiver()
    const dataDir = tempDir()
    let bridge = await startServer(await configFor(dataDir, silent.url))
    try {
      expect(await callback(bridge.url, "21")).toEqual({ code: 0, message: "OK" })
      await eventually(() => silent.received.length === 1)
      const closing = Date.now()
      await bridge.close()
      // the grace (5 s), not the receiver's minute
      expect(Date.now() - closing).toBeLessThan(30_000)
      expect(statuses(dataDir).get("21")).toMatchObject({ status: "in_flight", attempts: 0 })
      bridge = await startServer(await configFor(dataDir, rx.url))
      await eventually(() => statuses(dataDir).get("21")?.status === "delivered")
      expect(rx.received).toHaveLength(1)
      expect(rx.received[0]!.headers["webhook-id"]).toBe(silent.received[0]!.headers["webhook-id"])
    } finally {
      await bridge.close()
      await silent.close()
      await rx.close()
    }
  })
})
