/**
 * getCustomersPage at 100k and 1M customers (BENCH_CUSTOMERS_SIZES=100000 for the first only,
 * or any list): latency over real HTTP (auth, decode, query, encode) against the same SQL run
 * directly on SQLite in the same process (the ratio), and the growth from each size to the
 * next, for each filter.
 */
import type Database from "better-sqlite3"
import { parseLocal } from "../src/shared/Time.js"
import { benchServer, time } from "./support/measure.js"

const SIZES = (process.env.BENCH_CUSTOMERS_SIZES ?? "100000,1000000").split(",").map(Number)
const label = (n: number) => (n >= 1_000_000 ? `${n / 1_000_000}M` : `${n / 1000}k`)
const COMP = "100008"
const DAY = 86_400_000
const T0 = Date.UTC(2025, 10, 24)
const STATUSES = ["潜在", "意向", "成交", "流失", "其它"]
const TYPES = ["A", "B", "C", "VIP"]

interface Combo {
  readonly name: string
  readonly params: Record<string, string>
  /** the WHERE clause and arguments our store builds for these params */
  readonly where: string
  readonly args: ReadonlyArray<unknown>
  readonly order?: string
  readonly start?: number
}

/** What the store writes for a prefix: an index range and the LIKE (see CustomersStore.startsWith). */
const prefix = (col: string, value: string) => {
  const chars = Array.from(value)
  const after = chars.slice(0, -1).join("") + String.fromCodePoint(chars.at(-1)!.codePointAt(0)! + 1)
  return { where: `${col} >= ? AND ${col} < ? AND ${col} LIKE ? ESCAPE '\\'`, args: [value, after, `${value}%`] }
}

const combos = (tz: string): ReadonlyArray<Combo> => {
  const day = (d: string) => [parseLocal(`${d} 00:00:00`, tz), parseLocal(`${d} 23:59:59`, tz)]
  const name = prefix("c.name", "客户12345")
  const corp = prefix("c.corp_name", "公司4321")
  const phone = prefix("p.norm", "13900012345")
  const phones = prefix("p.norm", "1390001")
  const inPhones = (p: { where: string; args: ReadonlyArray<unknown> }) => ({
    where: `c.comp_number = ? AND c.cust_id IN (SELECT p.cust_id FROM customer_phones p WHERE p.comp_number = ? AND ${p.where})`,
    args: [COMP, COMP, ...p.args]
  })
  return [
    { name: "no filter, first page", params: {}, where: "c.comp_number = ?", args: [COMP] },
    { name: "custStatus", params: { custStatus: "成交" }, where: "c.comp_number = ? AND c.status = ?", args: [COMP, "成交"] },
    { name: "custType", params: { custType: "VIP" }, where: "c.comp_number = ? AND c.type = ?", args: [COMP, "VIP"] },
    { name: "custIsLock=1", params: { custIsLock: "1" }, where: "c.comp_number = ? AND c.is_lock = ?", args: [COMP, 1] },
    { name: "custName starts with", params: { findType: "custName", sqlwhere: "客户12345" }, where: `c.comp_number = ? AND ${name.where}`, args: [COMP, ...name.args] },
    { name: "custCorpName starts with", params: { findType: "custCorpName", sqlwhere: "公司4321" }, where: `c.comp_number = ? AND ${corp.where}`, args: [COMP, ...corp.args] },
    { name: "cpPhone, whole number", params: { findType: "cpPhone", sqlwhere: "139-0001-2345" }, ...inPhones(phone) },
    { name: "cpPhone, first 7 digits", params: { findType: "cpPhone", sqlwhere: "1390001" }, ...inPhones(phones) },
    { name: "dateOpt=1 last call, one day", params: { dateOpt: "1", startTime: "2026-03-01 00:00:00", endTime: "2026-03-01 23:59:59" }, where: "c.comp_number = ? AND c.last_call_ms >= ? AND c.last_call_ms <= ?", args: [COMP, ...day("2026-03-01")] },
    { name: "dateOpt=2 birthday, one month", params: { dateOpt: "2", startTime: "1980-05-01", endTime: "1980-05-31 23:59:59" }, where: "c.comp_number = ? AND c.birthday >= ? AND c.birthday <= ? AND c.birthday <> ''", args: [COMP, "1980-05-01", "1980-05-31"] },
    { name: "dateOpt=3 created, one day", params: { dateOpt: "3", startTime: "2026-03-01 00:00:00", endTime: "2026-03-01 23:59:59" }, where: "c.comp_number = ? AND c.created_ms >= ? AND c.created_ms <= ?", args: [COMP, ...day("2026-03-01")] },
    { name: "custStatus + custType", params: { custStatus: "成交", custType: "VIP" }, where: "c.comp_number = ? AND c.status = ? AND c.type = ?", args: [COMP, "成交", "VIP"] },
    { name: "sortfield custName", params: { sortfield: "custName" }, where: "c.comp_number = ?", args: [COMP], order: "c.name ASC, c.cust_id ASC" },
    { name: "page 500 (start 10000)", params: { start: "10000" }, where: "c.comp_number = ?", args: [COMP], start: 10_000 }
  ]
}

/**
 * Customers `from`..`to` (exclusive) in one statement, one phone each (139 and 8 digits):
 * 5 statuses, 4 types, 1% locked, a corporate name shared by 20, half called in the last year.
 */
const fill = (db: Database.Database, from: number, to: number) => {
  db.exec(`INSERT INTO customers (cust_id, comp_number, name, corp_name, status, type, birthday_type, birthday, is_lock, created_ms, updated_ms, last_call_ms)
    WITH RECURSIVE s(i) AS (SELECT ${from} UNION ALL SELECT i + 1 FROM s WHERE i < ${to - 1}),
      r AS (SELECT i, abs(random()) AS x, ${T0} + (abs(random()) % 365) * ${DAY} + abs(random()) % ${DAY} AS created FROM s)
    SELECT 1000000000 + i, '${COMP}', '客户' || i, '公司' || (i % 50000),
      CASE i % 5 ${STATUSES.map((s, k) => `WHEN ${k} THEN '${s}'`).join(" ")} END,
      CASE (i / 5) % 4 ${TYPES.map((t, k) => `WHEN ${k} THEN '${t}'`).join(" ")} END,
      1, printf('%04d-%02d-%02d', 1950 + x % 55, 1 + (x / 55) % 12, 1 + (x / 660) % 28),
      CASE WHEN i % 100 = 0 THEN 1 ELSE 0 END, created, created,
      CASE WHEN i % 2 = 0 THEN ${T0} + (abs(random()) % 365) * ${DAY} + abs(random()) % ${DAY} END FROM r`)
  db.exec(`INSERT INTO customer_phones (cp_id, cust_id, comp_number, seq, phone, norm, type, link_man)
    WITH RECURSIVE s(i) AS (SELECT ${from} UNION ALL SELECT i + 1 FROM s WHERE i < ${to - 1})
    SELECT 1000000000 + i, 1000000000 + i, '${COMP}', 0, '139-' || printf('%08d', i), '139' || printf('%08d', i), '常用电话', '' FROM s`)
}

export const run = async () => {
  const bench = await benchServer("vb-bench-cust-", COMP)
  const { config, server, db, auth } = bench
  const out: Array<string> = []
  const results = new Map<string, { http: number; direct: number }>()
  let filled = 0
  try {
    for (const size of SIZES) {
      const t = performance.now()
      db.pragma("cache_size = -2000000")
      fill(db, filled, size)
      db.pragma("cache_size = -2000")
      filled = size
      db.pragma("optimize")
      db.pragma("wal_checkpoint(TRUNCATE)")
      out.push(`${size.toLocaleString("en")} customers (filled in ${((performance.now() - t) / 1000).toFixed(1)} s)`)
      for (const combo of combos(config.tz)) {
        const order = combo.order ?? "c.cust_id DESC, c.cust_id DESC"
        // unfiltered: the total comes from the per-enterprise counter, as in the store
        const counted = combo.where === "c.comp_number = ?"
        const count = db.prepare(counted ? "SELECT n FROM customer_counts WHERE comp_number = ?" : `SELECT count(*) AS n FROM customers c WHERE ${combo.where}`)
        // as the store pages: the page's ids first, then their rows, then their phones
        const page = db.prepare(`SELECT c.* FROM customers c WHERE c.cust_id IN
          (SELECT c.cust_id FROM customers c WHERE ${combo.where} ORDER BY ${order} LIMIT 20 OFFSET ${combo.start ?? 0}) ORDER BY ${order}`)
        const url = `${server.url}/voip/api/jsondata.html?${auth}&method=getCustomersPage&${new URLSearchParams(combo.params)}`
        const check = (await (await fetch(url)).json()) as { code: number; recordTotal: number }
        if (check.code !== 0) throw new Error(`${combo.name}: ${JSON.stringify(check)}`)
        const direct = await time(() => {
          count.get(...combo.args)
          const rows = page.all(...combo.args) as Array<{ cust_id: number }>
          if (rows.length > 0) db.prepare(`SELECT * FROM customer_phones WHERE cust_id IN (${rows.map(() => "?").join(",")}) ORDER BY cust_id, seq`).all(...rows.map((r) => r.cust_id))
          return rows
        })
        const http = await time(async () => (await fetch(url)).json())
        results.set(`${size}:${combo.name}`, { http: http.p50, direct: direct.p50 })
        // the evidence that the filter is an index range: the count's plan, once
        if (size === SIZES[0])
          out.push(`    plan: ${(db.prepare(`EXPLAIN QUERY PLAN SELECT count(*) AS n FROM customers c WHERE ${combo.where}`).all(...combo.args) as Array<{ detail: string }>).map((r) => r.detail).join("; ")}`)
        out.push(
          `  ${combo.name.padEnd(32)} total ${String(check.recordTotal).padStart(7)}  http p50 ${http.p50.toFixed(2)} ms p99 ${http.p99.toFixed(2)} ms | sqlite p50 ${direct.p50.toFixed(2)} ms | ratio ${(http.p50 / direct.p50).toFixed(1)}x`
        )
      }
    }
    for (const [a, b] of SIZES.slice(1).map((size, i) => [SIZES[i]!, size] as const)) {
      out.push(`growth ${label(a)} → ${label(b)} (http p50):`)
      for (const combo of combos(config.tz)) {
        const small = results.get(`${a}:${combo.name}`)!
        const large = results.get(`${b}:${combo.name}`)!
        out.push(`  ${combo.name.padEnd(32)} ${small.http.toFixed(2)} ms → ${large.http.toFixed(2)} ms (${(large.http / small.http).toFixed(1)}x)`)
      }
    }
  } finally {
    await bench.close()
  }
  return out
}
