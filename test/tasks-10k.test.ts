/**
 * An automatic task of 10,000 numbers (issue 13, "Prove it") dialled to completion on the
 * simulator, in the suite: every number ends, and findTaskMx's groupData, the task.finished
 * event, the numbers' own rows and the call records agree. bench/tasks.bench.ts measures the
 * same run. What made it slow: each answered call's 10 s WAV synthesised afresh (80,000 sines),
 * hashed, and written and fsynced on the event loop — every other call waited for each flush.
 * Now a tone is made once per length, recordings are at most 3 s, written on the thread pool.
 */
import * as path from "node:path"
import Database from "better-sqlite3"
import { describe, expect, it } from "vitest"
import { asAdmin, startTestServer } from "./support/TestServer.js"

const N = 10_000

describe("an automatic task of 10,000 numbers", () => {
  it("runs on the simulator to completion with correct groupData counts", async () => {
    const server = await startTestServer({
      telephony: {
        driver: "simulator",
        simulator: { speed: 100_000, outcomes: { answered: 0.6, noAnswer: 0.25, busy: 0.15 }, ringMs: { min: 1000, max: 1000 }, talkMs: { min: 2000, max: 2000 } }
      }
    })
    const db = new Database(path.join(server.dataDir, "bridge.db"), { readonly: true })
    try {
      const data = JSON.stringify(Array.from({ length: N }, (_, i) => ({ phone: `138${String(i).padStart(8, "0")}` })))
      const added = await asAdmin(server, "addTask", { data, addType: "1", name: "一万个号码", cflName: "示例流程" }, "form")
      expect(added.code).toBe(0)
      // looked at by its key, seldom: the server runs in this process, and a scan of the growing events every 25 ms would be its load
      const isFinished = db.prepare(`SELECT finished_ms FROM call_tasks WHERE ctk_id = ?`)
      const deadline = Date.now() + 100_000
      while ((isFinished.get(added.id) as { finished_ms: number | null }).finished_ms === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250))
      const finished = db.prepare(`SELECT data FROM events WHERE type = 'task.finished'`).get() as { data: string }
      expect(finished, JSON.stringify(db.prepare(`SELECT status, count(*) AS n FROM call_task_numbers GROUP BY status`).all())).toBeDefined()
      const truth = db.prepare(`SELECT status AS ctdStatus, count(*) AS num FROM call_task_numbers WHERE ctk_id = ? GROUP BY status ORDER BY status`).all(added.id) as Array<{ ctdStatus: number; num: number }>
      // every number ended: not answered, answered, or transferred to the agent
      expect(truth.every((g) => g.ctdStatus >= 3 && g.ctdStatus <= 5)).toBe(true)
      expect(truth.reduce((s, g) => s + g.num, 0)).toBe(N)
      // each outcome drawn often enough to be there
      expect(truth.map((g) => g.ctdStatus)).toEqual([3, 4, 5])
      const mx = await asAdmin(server, "findTaskMx", { ctkId: String(added.id), limit: "1" })
      expect(mx.count).toBe(N)
      expect(mx.groupData).toEqual(truth.map((g) => ({ ctkId: added.id, ...g })))
      expect((JSON.parse(finished.data) as { id: number; total: number; groupData: unknown }).groupData).toEqual(truth)
      // one call record a number, each hung up
      expect(db.prepare(`SELECT count(*) AS n, count(hangup_ms) AS ended FROM cdrs`).get()).toEqual({ n: N, ended: N })
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
    } finally {
      db.close()
      await server.close()
    }
  }, 120_000)
})
