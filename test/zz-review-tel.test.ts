/**
 * Fresh-eyes review of issue 13's last parts (box-driver ends, upstream callback links, tasks
 * relayed upstream). Each test is a defect found in review and fails until it is fixed. Fake
 * platform over real HTTP, a real server, its SQLite file.
 */
import * as path from "node:path"
import Database from "better-sqlite3"
import { describe, expect, it } from "vitest"
import { addEnterpriseAdmin } from "./support/Enterprises.js"
import { eventually } from "./support/Receiver.js"
import { adminApi } from "./support/AdminApi.js"
import { asAdmin, startTestServer, type TestServer } from "./support/TestServer.js"

const query = <A>(s: TestServer, sql: string, ...params: ReadonlyArray<unknown>): Array<A> => {
  const db = new Database(path.join(s.dataDir, "bridge.db"), { readonly: true })
  try {
    return db.prepare(sql).all(...params) as Array<A>
  } finally {
    db.close()
  }
}

// Finding 4: a box given to another enterprise forgets its waiting dials (DevicesStore
// FORGET_DIALS), but not box_dial_calls: a dial it had already taken is still matched by MAC,
// so the new owner's call ends the former owner's callback with the new owner's call record.
describe("review: box driver", () => {
  it("a box given to another enterprise: its new owner's call does not end the former owner's callback", async () => {
    const MAC = "00:1A:2B:3C:4D:9E"
    const server = await startTestServer({
      box: { diskAlertPercent: 90, dialTtlMs: 60_000, messageWaitMs: 0, offlineAfterMs: 90_000 },
      telephony: { driver: "box", box: { reportWithinMs: 60_000 } }
    })
    try {
      await addEnterpriseAdmin(server, "200002800", "other-pw")
      expect((await adminApi(server, "POST", "/devices", { mac: MAC, enterprise: "100008", channels: { "2": "100008800" } })).status).toBe(201)
      const cb = await asAdmin(server, "callbackPhone", { sourcePhone: "02367073578", descPhone: "13800138000" })
      expect(cb.code).toBe(0)
      const box = (params: Record<string, string>) =>
        fetch(`${server.url}/voip/upload_record`, { method: "POST", body: new URLSearchParams({ satellite: MAC, ...params }) }).then((r) => r.json() as Promise<{ status: number; data?: unknown[] }>)
      expect((await box({ cmd: "getCallList" })).data).toHaveLength(1)
      await eventually(() => query<{ status: number }>(server, "SELECT status FROM callbacks WHERE cbk_id = ?", cb.id)[0]?.status === 1)
      // the box changes hands
      expect((await adminApi(server, "PATCH", `/devices/${MAC}`, { enterprise: "200002", channels: { "2": "200002800" } })).status).toBe(200)
      // the new owner's agent calls the same customer on that channel
      const start = Math.floor(Date.now() / 1000)
      const up = await box({ cmd: "upload", channel: "2", direction: "out", callid_dialed: "13800138000", start_time_secs: String(start), start_time_hangup: String(start + 25),
        duration_secs: "20", recorded: "0", callid: "9301" })
      expect(up.status).toBe(0)
      expect(query<{ comp_number: string }>(server, "SELECT comp_number FROM cdrs WHERE platform_cdr_id = '9301'").map((r) => r.comp_number)).toEqual(["200002"])
      await new Promise((r) => setTimeout(r, 500))
      const [row] = query<{ cdr_id: string | null; times: number }>(server, "SELECT cdr_id, times FROM callbacks WHERE cbk_id = ?", cb.id)
      expect(row!.cdr_id).not.toBe("9301")
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
    } finally {
      await server.close()
    }
  }, 20_000)
})
