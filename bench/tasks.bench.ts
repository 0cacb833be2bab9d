/**
 * An automatic outbound task of 10,000 numbers (issue 13) dialled to completion on the simulator
 * (rings of 1 s and talks of 2 s, simulated 100,000× faster), in-process on a real SQLite file:
 * how long the whole task takes, the calls a second, and whether groupData, the numbers' own
 * statuses and the call records agree. test/tasks-10k.test.ts runs the same task in the suite.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import Database from "better-sqlite3"
import { Effect } from "effect"
import { loadConfig } from "../src/config/AppConfig.js"
import { startServer } from "../src/http/Server.js"

const N = Number(process.env.BENCH_TASK_NUMBERS ?? 10_000)
const AUTH = { sa_user: "100008800", sa_password: "cbca51a420dd10423a9acc4db8041d5a" }

export const run = async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "vb-bench-tasks-"))
  const config = await Effect.runPromise(
    loadConfig({
      env: {},
      overrides: {
        port: 0,
        host: "127.0.0.1",
        dataDir,
        logLevel: "none",
        telephony: { driver: "simulator", simulator: { speed: 100_000, outcomes: { answered: 0.6, noAnswer: 0.25, busy: 0.15 }, ringMs: { min: 1000, max: 1000 }, talkMs: { min: 2000, max: 2000 } } }
      }
    })
  )
  const server = await startServer(config)
  try {
    const data = JSON.stringify(Array.from({ length: N }, (_, i) => ({ phone: `138${String(i).padStart(8, "0")}` })))
    const started = Date.now()
    const res = await fetch(`${server.url}/voip/api/jsondata.html`, {
      method: "POST",
      body: new URLSearchParams({ ...AUTH, method: "addTask", data, addType: "1", name: "bench", cflName: "示例流程", repeatSend: "0", sendInterval: "0" })
    })
    const added = (await res.json()) as { code: number; id: number }
    if (added.code !== 0) return [`addTask refused: ${JSON.stringify(added)}`]
    const storedMs = Date.now() - started
    const db = new Database(path.join(dataDir, "bridge.db"), { readonly: true })
    const finished = () => db.prepare(`SELECT data FROM events WHERE type = 'task.finished' AND data LIKE ?`).get(`%"id":${added.id}%`) as { data: string } | undefined
    const deadline = Date.now() + 10 * 60_000
    while (!finished() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250))
    const doneMs = Date.now() - started
    const event = finished()
    const truth = db.prepare(`SELECT status, count(*) AS n FROM call_task_numbers WHERE ctk_id = ? GROUP BY status ORDER BY status`).all(added.id) as Array<{ status: number; n: number }>
    const calls = (db.prepare(`SELECT count(*) AS n FROM cdrs WHERE hangup_ms IS NOT NULL`).get() as { n: number }).n
    db.close()
    const mx = (await (await fetch(`${server.url}/voip/api/jsondata.html?${new URLSearchParams({ ...AUTH, method: "findTaskMx", ctkId: String(added.id), limit: "1" })}`)).json()) as {
      count: number
      groupData: Array<{ ctdStatus: number; num: number }>
    }
    const eventGroups = event ? (JSON.parse(event.data) as { groupData: Array<{ ctdStatus: number; num: number }> }).groupData : []
    const agree =
      JSON.stringify(mx.groupData.map((g) => [g.ctdStatus, g.num])) === JSON.stringify(truth.map((t) => [t.status, t.n])) &&
      JSON.stringify(eventGroups.map((g) => [g.ctdStatus, g.num])) === JSON.stringify(truth.map((t) => [t.status, t.n])) &&
      truth.reduce((s, t) => s + t.n, 0) === N &&
      calls === N
    return [
      `automatic task of ${N} numbers on the simulator: stored in ${storedMs} ms, finished in ${(doneMs / 1000).toFixed(1)} s (${((N / doneMs) * 1000).toFixed(0)} calls/s)${event ? "" : " — NOT finished within 10 min"}`,
      `  groupData ${truth.map((t) => `${t.status}: ${t.n}`).join(", ")}; ${calls} call records; findTaskMx count ${mx.count}: ${agree ? "groupData, task.finished, the numbers and the call records agree" : "MISMATCH"}`
    ]
  } finally {
    await server.close()
    fs.rmSync(dataDir, { recursive: true, force: true })
  }
}
