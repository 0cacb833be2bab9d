/**
 * Review of migration 0030 (findDialrecord's totals from hour × talk-bucket counts): cases where
 * the total answered over HTTP differs from `SELECT count(*) FROM cdrs WHERE <the same filter>`.
 * Calls are written through addCdrRecord, then edited by hand the way 0028's decision says the
 * triggers keep up with ("every writer of cdrs … a row edited by hand").
 */
import * as path from "node:path"
import Database from "better-sqlite3"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { formatLocal, parseLocal } from "../src/shared/Time.js"
import { callApi, creds, startTestServer, type TestServer } from "./support/TestServer.js"

const COMP = "100008"
const OTHER = "200008"
const HOUR = 3_600_000

/** findDialrecord over HTTP as the enterprise's admin: its code, total and how many rows it listed */
const find = async (server: TestServer, params: Record<string, string>) => {
  const body = await callApi(server, { ...creds(), method: "findDialrecord", limit: "100", ...params })
  return { code: body.code, total: body.total, listed: Array.isArray(body.rows) ? body.rows.length : undefined }
}

/** the same filter as a plain COUNT(*) over the calls */
const countOf = (db: Database.Database, params: Record<string, string>, tz: string) => {
  const where = ["comp_number = ?"]
  const args: Array<unknown> = [COMP]
  if (params.talktime !== undefined) {
    where.push(params.talktimeSql === "1" ? "talk_secs < ?" : "talk_secs > ?")
    args.push(Number(params.talktime))
  }
  if (params.startTime !== undefined) {
    where.push("start_ms >= ?")
    args.push(parseLocal(params.startTime, tz))
  }
  if (params.endTime !== undefined) {
    where.push("start_ms <= ?")
    args.push(parseLocal(params.endTime, tz))
  }
  return (db.prepare(`SELECT count(*) AS n FROM cdrs WHERE ${where.join(" AND ")}`).get(...args) as { n: number }).n
}

const addCall = async (server: TestServer, dialId: string, start: string, talk: number) =>
  expect((await callApi(server, { ...creds(), method: "addCdrRecord", dialId, dialStartTime: start, dialTalktime: String(talk), dialPeer: "1" }, "form")).code).toBe(0)

const healthy = async (server: TestServer) => expect((await fetch(`${server.url}/healthz`)).status).toBe(200)

describe("review 0030: totals against COUNT(*) after hand edits the triggers should follow", () => {
  let server: TestServer
  let db: Database.Database
  beforeEach(async () => {
    server = await startTestServer()
    db = new Database(path.join(server.dataDir, "bridge.db"))
  })
  afterEach(async () => {
    db.close()
    await server.close()
  })

  it("INSERT OR REPLACE of a stored call takes the replaced call out of the counts", async () => {
    for (const [id, start] of [["7001", "2026-10-02 10:15:00"], ["7002", "2026-10-02 11:20:00"], ["7003", "2026-10-02 12:25:00"]] as const)
      await addCall(server, id, start, 120)
    // a hand repair rewrites one call whole: REPLACE deletes the old row, and fires AFTER DELETE
    // only with recursive_triggers on — as the bridge's own connection has it, and as a hand edit
    // must (docs/decisions.md); the triggers then keep every count
    db.pragma("recursive_triggers = ON")
    const { cdr_id } = db.prepare(`SELECT cdr_id FROM cdrs WHERE dial_id = '7002'`).get() as { cdr_id: number }
    db.prepare(`INSERT OR REPLACE INTO cdrs (cdr_id, comp_number, extension, dial_id, phone, last_phone, start_ms, talk_secs, peer, fields, source, created_at, updated_at)
      SELECT cdr_id, comp_number, extension, dial_id, phone, last_phone, start_ms, 700, peer, fields, source, created_at, updated_at FROM cdrs WHERE cdr_id = ?`).run(cdr_id)
    const tz = server.config.tz
    // talk time on a bound with a day: whole hours from cdr_hour_talk_counts; then talk time alone; then nothing
    for (const params of [
      { talktimeSql: "0", talktime: "60", startTime: "2026-10-02 00:00:00", endTime: "2026-10-02 23:59:59" },
      { talktimeSql: "0", talktime: "60" },
      {}
    ] as Array<Record<string, string>>) {
      const n = countOf(db, params, tz)
      expect(n).toBe(3)
      expect({ params, ...(await find(server, params)) }).toEqual({ params, code: 0, total: n, listed: n })
    }
    await healthy(server)
  })

  it("an UPDATE of comp_number moves the call out of its old enterprise's count (cdr_counts)", async () => {
    for (const [id, start] of [["7101", "2026-10-03 09:00:00"], ["7102", "2026-10-03 10:00:00"], ["7103", "2026-10-03 11:00:00"]] as const)
      await addCall(server, id, start, 30)
    // filed under the wrong enterprise, moved by hand: 0028's talk and hour triggers follow comp_number, cdr_counts' does not
    db.prepare(`UPDATE cdrs SET comp_number = ? WHERE dial_id = '7103'`).run(OTHER)
    const tz = server.config.tz
    // the filtered totals move with the call; the unfiltered one (cdr_counts) does not
    for (const params of [{ talktimeSql: "1", talktime: "60", startTime: "2026-10-03 00:00:00" }, {}] as Array<Record<string, string>>) {
      const n = countOf(db, params, tz)
      expect(n).toBe(2)
      expect({ params, ...(await find(server, params)) }).toEqual({ params, code: 0, total: n, listed: n })
    }
    await healthy(server)
  })

  it("a call before 1970 whose start has a fraction of a millisecond is counted in its own hour", async () => {
    const tz = server.config.tz
    await addCall(server, "7201", formatLocal(-2 * HOUR, tz), 120)
    // a start_ms a hand edit (or an import) left fractional: `%` truncates a REAL toward zero, so for a
    // negative one HOUR_OF gives -1.00000014 for hour -1, and `hour >= -1` leaves the call out
    db.prepare(`INSERT INTO cdrs (cdr_id, comp_number, extension, dial_id, phone, last_phone, start_ms, talk_secs, peer, fields, source, created_at, updated_at)
      VALUES (990001, ?, '100008800', '7202', '', '', ?, 120, 1, '{}', 'client', 0, 0)`).run(COMP, -HOUR + 0.5)
    expect(db.prepare(`SELECT typeof(start_ms) AS t FROM cdrs WHERE dial_id = '7202'`).pluck().get()).toBe("real")
    // from the start of its hour over two whole hours, summed from the counts; talk time on a bound, then time alone
    const hour = { startTime: formatLocal(-HOUR, tz), endTime: formatLocal(HOUR, tz) }
    for (const params of [{ talktimeSql: "0", talktime: "60", ...hour }, hour] as Array<Record<string, string>>) {
      const n = countOf(db, params, tz)
      expect(n).toBe(1)
      expect({ params, ...(await find(server, params)) }).toEqual({ params, code: 0, total: n, listed: n })
    }
    await healthy(server)
  })
})
