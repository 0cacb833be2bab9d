/**
 * GetWorkList at 100k work orders (BENCH_WORKORDERS_SIZE for another size) of the seeded type
 * over a year: latency over real HTTP (sessionId auth, decode, query, rows with their JSON
 * fields, encode) against the same SQL run directly on SQLite in the same process (the ratio),
 * for each filter a client uses.
 */
import type Database from "better-sqlite3"
import { parseLocal } from "../src/shared/Time.js"
import { benchServer, time } from "./support/measure.js"

const SIZE = Number(process.env.BENCH_WORKORDERS_SIZE ?? 100_000)
const COMP = "100008"
const DAY = 86_400_000
const T0 = Date.UTC(2025, 10, 24)

interface Combo {
  readonly name: string
  readonly params: Record<string, string>
  readonly where: string
  readonly args: ReadonlyArray<unknown>
}

const combos = (tz: string, wotId: number): ReadonlyArray<Combo> => {
  const range = (from: string, to: string) => ({ params: { startTime: from, endTime: to }, args: [COMP, wotId, parseLocal(from, tz), parseLocal(to, tz)] })
  const base = "w.comp_number = ? AND w.wot_id = ? AND w.created_ms >= ? AND w.created_ms <= ?"
  const year = range("2025-11-24 00:00:00", "2026-11-24 23:59:59")
  const month = range("2026-03-01 00:00:00", "2026-03-31 23:59:59")
  const day = range("2026-03-01 00:00:00", "2026-03-01 23:59:59")
  const text = "咨询人12345"
  return [
    { name: "one day", ...day, where: base },
    { name: "one month", ...month, where: base },
    { name: "the whole year, first page", ...year, where: base },
    { name: "year, stepindex=2", params: { ...year.params, stepindex: "2" }, args: [...year.args, 2], where: `${base} AND w.step = ?` },
    { name: "year, woOther10 phone", params: { ...year.params, woOther10: "139-0001-2345" }, args: [...year.args, "13900012345"], where: `${base} AND w.phone_norm = ?` },
    {
      name: "month, smemo free text",
      params: { ...month.params, smemo: text },
      args: [...month.args, text, text, text, text, text],
      where: `${base} AND (instr(w.code, ?) > 0 OR instr(w.question, ?) > 0 OR instr(w.phone, ?) > 0 OR (instr(w.fields, ?) > 0 AND EXISTS (SELECT 1 FROM json_each(w.fields) j WHERE instr(j.value, ?) > 0)))`
    }
  ]
}

/** Work orders over a year, in three steps, each with a phone, a question and a few fields. */
const fill = (db: Database.Database, wotId: number, size: number) =>
  db.exec(`INSERT INTO work_orders (wo_id, comp_number, wot_id, cust_id, code, phone, phone_norm, step, question, create_exte_id, create_exte_name, assignee, fields, created_ms, updated_ms, end_ms)
    WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < ${size - 1}),
      r AS (SELECT i, ${T0} + (abs(random()) % 365) * ${DAY} + abs(random()) % ${DAY} AS created FROM s)
    SELECT 1000000000 + i, '${COMP}', ${wotId}, NULL, printf('WO%08d', i), '139-' || printf('%08d', i), '139' || printf('%08d', i), 1 + i % 3,
      '问题 ' || i, 1, '管理员', NULL,
      json_object('woOther8', '咨询人' || i, 'woOther10', '139' || printf('%08d', i), 'woOther3', 'B1', 'woStep1_exteId', 1, 'woStep1Time', '2026-01-01 00:00:00'),
      created, created, NULL FROM r`)

export const run = async () => {
  const bench = await benchServer("vb-bench-wo-", COMP)
  const { config, server, db, auth } = bench
  const out: Array<string> = []
  try {
    const login = (await (await fetch(`${server.url}/voip/api/jsondata.html?${auth}&method=getExtension`)).json()) as { sessionId: string }
    const wotId = (db.prepare("SELECT wot_id FROM wo_types WHERE comp_number = ? AND name = '售后工单'").get(COMP) as { wot_id: number }).wot_id
    const t = performance.now()
    fill(db, wotId, SIZE)
    db.pragma("optimize")
    db.pragma("wal_checkpoint(TRUNCATE)")
    out.push(`${SIZE.toLocaleString("en")} work orders (filled in ${((performance.now() - t) / 1000).toFixed(1)} s)`)
    for (const combo of combos(config.tz, wotId)) {
      const count = db.prepare(`SELECT count(*) AS n FROM work_orders w WHERE ${combo.where}`)
      const page = db.prepare(`SELECT w.* FROM work_orders w WHERE ${combo.where} ORDER BY w.created_ms DESC, w.wo_id DESC LIMIT 20 OFFSET 0`)
      const url = `${server.url}/voip/workordermanager/GetWorkList.json?sessionId=${login.sessionId}&wotId=${wotId}&${new URLSearchParams(combo.params)}`
      const check = (await (await fetch(url)).json()) as { code: number; total: number }
      if (check.code !== 0) throw new Error(`${combo.name}: ${JSON.stringify(check)}`)
      const direct = await time(() => {
        count.get(...combo.args)
        return (page.all(...combo.args) as Array<{ fields: string }>).map((r) => JSON.parse(r.fields) as unknown)
      })
      const http = await time(async () => (await fetch(url)).json())
      out.push(`    plan: ${(db.prepare(`EXPLAIN QUERY PLAN SELECT count(*) AS n FROM work_orders w WHERE ${combo.where}`).all(...combo.args) as Array<{ detail: string }>).map((r) => r.detail).join("; ")}`)
      out.push(
        `  ${combo.name.padEnd(30)} total ${String(check.total).padStart(7)}  http p50 ${http.p50.toFixed(2)} ms p99 ${http.p99.toFixed(2)} ms | sqlite p50 ${direct.p50.toFixed(2)} ms | ratio ${(http.p50 / direct.p50).toFixed(1)}x`
      )
    }
  } finally {
    await bench.close()
  }
  return out
}
