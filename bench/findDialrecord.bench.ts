/**
 * findDialrecord at 10k and 1M call records (and 10M with BENCH_CDR_10M=1): latency over real
 * HTTP (auth, decode, query, encode) against the same SQL run directly on SQLite in the same
 * process (the ratio), and the growth from each size to the next, for each filter combination.
 */
import type Database from "better-sqlite3"
import { lastPhoneOf } from "../src/records/CdrStore.js"
import { boundBucket } from "../src/records/TalkBuckets.js"
import { parseLocal } from "../src/shared/Time.js"
import { benchServer, time } from "./support/measure.js"

/** BENCH_CDR_10M=1 adds a 10M point (~2.6 GB on disk, minutes to fill) */
const SIZES = process.env.BENCH_CDR_10M === "1" ? [10_000, 1_000_000, 10_000_000] : [10_000, 1_000_000]
const label = (n: number) => (n >= 1_000_000 ? `${n / 1_000_000}M` : `${n / 1000}k`)
const COMP = "100008"
const DAY = 86_400_000
const T0 = Date.UTC(2025, 10, 24)

interface Combo {
  readonly name: string
  readonly params: Record<string, string>
  /** the WHERE clause and arguments our store builds for these params */
  readonly where: string
  readonly args: ReadonlyArray<unknown>
  readonly start?: number
  /** unfiltered: the total comes from the per-enterprise counter, as in the store */
  readonly counted?: boolean
  /** talk time, direction or time only (talk time with time: on a bucket bound): the total is summed from cdr_talk_counts or cdr_hour_talk_counts, as in the store */
  readonly summed?: { readonly table?: "cdr_hour_talk_counts"; readonly where: string; readonly args: ReadonlyArray<unknown> }
}

const combos = (tz: string): ReadonlyArray<Combo> => {
  const from = parseLocal("2026-03-01 00:00:00", tz)
  const to = parseLocal("2026-03-01 23:59:59", tz)
  const weekEnd = parseLocal("2026-03-07 23:59:59", tz)
  const monthEnd = parseLocal("2026-03-31 23:59:59", tz)
  // local midnights fall on whole hours (Asia/Shanghai): these ranges have no partial hour to count
  const hours = (a: number, b: number) => ({ table: "cdr_hour_talk_counts" as const, where: "k.comp_number = ? AND k.hour >= ? AND k.hour < ?", args: [COMP, Math.ceil(a / 3_600_000), Math.floor((b + 1) / 3_600_000)] })
  const hoursOf = (a: number, b: number, peer: number) => {
    const h = hours(a, b)
    return { ...h, where: `${h.where} AND k.peer = ?`, args: [...h.args, peer] }
  }
  /** the whole buckets of a talk time on a bound (src/records/TalkBuckets.ts), as the store sums them */
  const talking = <H extends { where: string; args: ReadonlyArray<unknown> }>(h: H, op: ">" | "<", secs: number) => ({
    ...h,
    where: `${h.where} AND k.talk_bucket ${op} ?`,
    args: [...h.args, boundBucket(secs)!]
  })
  return [
    { name: "no filter, first page", params: {}, where: "c.comp_number = ?", args: [COMP], counted: true },
    { name: "one extension", params: { extension: `${COMP}807` }, where: "c.comp_number = ? AND c.extension = ?", args: [COMP, `${COMP}807`] },
    { name: "phone number", params: { phoneNum: "13800012345" }, where: "c.comp_number = ? AND c.last_phone = ?", args: [COMP, lastPhoneOf("13800012345")] },
    {
      name: "one day",
      params: { startTime: "2026-03-01 00:00:00", endTime: "2026-03-01 23:59:59" },
      where: "c.comp_number = ? AND c.start_ms >= ? AND c.start_ms <= ?",
      args: [COMP, from, to],
      summed: hours(from, to)
    },
    {
      name: "extension + talk > 300 + outbound",
      params: { extension: `${COMP}807`, talktimeSql: "0", talktime: "300", cdrPeer: "1" },
      where: "c.comp_number = ? AND c.extension = ? AND c.talk_secs > ? AND c.peer = ?",
      args: [COMP, `${COMP}807`, 300, 1]
    },
    { name: "page 500 (start 10000)", params: { start: "10000" }, where: "c.comp_number = ?", args: [COMP], start: 10_000, counted: true },
    { name: "one extension, page 50 (start 1000)", params: { extension: `${COMP}807`, start: "1000" }, where: "c.comp_number = ? AND c.extension = ?", args: [COMP, `${COMP}807`], start: 1_000 },
    // half the calls match: counted, its total walked half the enterprise's index entries
    {
      name: "outbound, page 500 (start 10000)",
      params: { cdrPeer: "1", start: "10000" },
      where: "c.comp_number = ? AND c.peer = ?",
      args: [COMP, 1],
      start: 10_000,
      summed: { where: "k.comp_number = ? AND k.peer = ?", args: [COMP, 1] }
    },
    {
      name: "inbound",
      params: { cdrPeer: "2" },
      where: "c.comp_number = ? AND c.peer = ?",
      args: [COMP, 2],
      summed: { where: "k.comp_number = ? AND k.peer = ?", args: [COMP, 2] }
    },
    {
      name: "talk > 300",
      params: { talktimeSql: "0", talktime: "300" },
      where: "c.comp_number = ? AND c.talk_secs > ?",
      args: [COMP, 300],
      summed: { where: "k.comp_number = ? AND k.talk_secs > ?", args: [COMP, 300] }
    },
    {
      name: "talk < 60",
      params: { talktimeSql: "1", talktime: "60" },
      where: "c.comp_number = ? AND c.talk_secs < ?",
      args: [COMP, 60],
      summed: { where: "k.comp_number = ? AND k.talk_secs < ?", args: [COMP, 60] }
    },
    {
      name: "talk > 300 + outbound, page 500",
      params: { talktimeSql: "0", talktime: "300", cdrPeer: "1", start: "10000" },
      where: "c.comp_number = ? AND c.talk_secs > ? AND c.peer = ?",
      args: [COMP, 300, 1],
      start: 10_000,
      summed: { where: "k.comp_number = ? AND k.talk_secs > ? AND k.peer = ?", args: [COMP, 300, 1] }
    },
    {
      name: "one day + talk < 60 + inbound",
      params: { startTime: "2026-03-01 00:00:00", endTime: "2026-03-01 23:59:59", talktimeSql: "1", talktime: "60", cdrPeer: "2" },
      where: "c.comp_number = ? AND c.talk_secs < ? AND c.start_ms >= ? AND c.start_ms <= ? AND c.peer = ?",
      args: [COMP, 60, from, to, 2],
      summed: talking(hoursOf(from, to, 2), "<", 60)
    },
    {
      name: "one day, page 50 (start 1000)",
      params: { startTime: "2026-03-01 00:00:00", endTime: "2026-03-01 23:59:59", start: "1000" },
      where: "c.comp_number = ? AND c.start_ms >= ? AND c.start_ms <= ?",
      args: [COMP, from, to],
      start: 1_000,
      summed: hours(from, to)
    },
    {
      name: "one week",
      params: { startTime: "2026-03-01 00:00:00", endTime: "2026-03-07 23:59:59" },
      where: "c.comp_number = ? AND c.start_ms >= ? AND c.start_ms <= ?",
      args: [COMP, from, weekEnd],
      summed: hours(from, weekEnd)
    },
    {
      name: "one month + inbound, page 50",
      params: { startTime: "2026-03-01 00:00:00", endTime: "2026-03-31 23:59:59", cdrPeer: "2", start: "1000" },
      where: "c.comp_number = ? AND c.start_ms >= ? AND c.start_ms <= ? AND c.peer = ?",
      args: [COMP, from, monthEnd, 2],
      start: 1_000,
      summed: hoursOf(from, monthEnd, 2)
    },
    {
      name: "one month + talk > 300",
      params: { startTime: "2026-03-01 00:00:00", endTime: "2026-03-31 23:59:59", talktimeSql: "0", talktime: "300" },
      where: "c.comp_number = ? AND c.talk_secs > ? AND c.start_ms >= ? AND c.start_ms <= ?",
      args: [COMP, 300, from, monthEnd],
      summed: talking(hours(from, monthEnd), ">", 300)
    },
    // between the bounds: counted from the calls, as before 0030
    {
      name: "one month + talk > 45 (no bound)",
      params: { startTime: "2026-03-01 00:00:00", endTime: "2026-03-31 23:59:59", talktimeSql: "0", talktime: "45" },
      where: "c.comp_number = ? AND c.talk_secs > ? AND c.start_ms >= ? AND c.start_ms <= ?",
      args: [COMP, 45, from, monthEnd]
    },
    {
      name: "extension + one day",
      params: { extension: `${COMP}807`, startTime: "2026-03-01 00:00:00", endTime: "2026-03-01 23:59:59" },
      where: "c.comp_number = ? AND c.extension = ? AND c.start_ms >= ? AND c.start_ms <= ?",
      args: [COMP, `${COMP}807`, from, to]
    },
    {
      name: "three extensions",
      params: { extension: `${COMP}807,${COMP}808,${COMP}809` },
      where: "c.comp_number = ? AND c.extension IN (?, ?, ?)",
      args: [COMP, `${COMP}807`, `${COMP}808`, `${COMP}809`]
    },
    {
      name: "phone number + talk > 300",
      params: { phoneNum: "13800012345", talktimeSql: "0", talktime: "300" },
      where: "c.comp_number = ? AND c.last_phone = ? AND c.talk_secs > ?",
      args: [COMP, lastPhoneOf("13800012345"), 300]
    },
    {
      name: "call id",
      params: { scdrId: "1000000777" },
      where: "c.comp_number = ? AND (c.cdr_id = ? OR c.platform_cdr_id = ?)",
      args: [COMP, 1_000_000_777, "1000000777"]
    }
  ]
}

/**
 * Rows `from`..`to` (exclusive) in one statement: a million in seconds, where one INSERT per row
 * took ~50 s. Extensions 400–899, 20,000 phone numbers, a year of start times, talk 0–599 s.
 */
const fill = (db: Database.Database, from: number, to: number) =>
  db.exec(`INSERT INTO cdrs (cdr_id, comp_number, extension, dial_id, phone, last_phone, start_ms, hangup_ms, talk_secs, peer, record_file, fields, source, created_at, updated_at)
    WITH RECURSIVE s(i) AS (SELECT ${from} UNION ALL SELECT i + 1 FROM s WHERE i < ${to - 1}),
      r AS (SELECT i, abs(random()) % 500 AS ext, abs(random()) % 20000 AS phone,
              ${T0} + (abs(random()) % 365) * ${DAY} + abs(random()) % ${DAY} AS start, abs(random()) % 600 AS talk FROM s)
    SELECT 1000000000 + i, '${COMP}', '${COMP}' || (400 + ext), CAST(i AS TEXT), '138000' || printf('%05d', phone), '138000' || printf('%05d', phone),
      start, start + talk * 1000, talk, (i % 2) + 1, '', '{}', 'client', start, start FROM r`)

export const run = async () => {
  const bench = await benchServer("vb-bench-cdr-", COMP)
  const { config, server, db, auth } = bench
  const out: Array<string> = []
  const results = new Map<string, { http: number; direct: number }>()
  let filled = 0
  try {
    for (const size of SIZES) {
      const t = performance.now()
      // a cache the size of the indexes while filling (random-order index inserts), the default again to measure
      db.pragma("cache_size = -2000000")
      fill(db, filled, size)
      db.pragma("cache_size = -2000")
      filled = size
      db.pragma("optimize")
      // as the bridge's own checkpoints would have left it: reads not looked up in a WAL of GBs
      db.pragma("wal_checkpoint(TRUNCATE)")
      out.push(`${size.toLocaleString("en")} records (filled in ${((performance.now() - t) / 1000).toFixed(1)} s)`)
      for (const combo of combos(config.tz)) {
        const count = combo.counted
          ? db.prepare(`SELECT n FROM cdr_counts WHERE comp_number = ?`)
          : combo.summed?.table
            ? // as the store: the hours' sum picked by the enterprise's span of hours (these ranges are
              // short: its other branch, all calls less the hours outside, would not be taken)
              db.prepare(`SELECT CASE WHEN s.first IS NOT NULL AND 2 * (min(coalesce(?, s.last + 1), s.last + 1) - max(coalesce(?, s.first), s.first)) > s.last + 1 - s.first
                  THEN NULL ELSE (SELECT coalesce(sum(k.n), 0) FROM ${combo.summed.table} k WHERE ${combo.summed.where}) END AS n
                FROM (SELECT (SELECT min(hour) FROM ${combo.summed.table} WHERE comp_number = ?) AS first, (SELECT max(hour) FROM ${combo.summed.table} WHERE comp_number = ?) AS last) s`)
            : combo.summed
            ? db.prepare(`SELECT coalesce(sum(k.n), 0) AS n FROM cdr_talk_counts k WHERE ${combo.summed.where}`)
            : db.prepare(`SELECT count(*) AS n FROM cdrs c WHERE ${combo.where}`)
        // an hour range's args: its hours (lo, hi) first, for the span's test
        const countArgs = combo.counted
          ? [COMP]
          : combo.summed?.table
            ? [combo.summed.args[2], combo.summed.args[1], ...combo.summed.args, COMP, COMP]
            : (combo.summed?.args ?? combo.args)
        // as the store pages: the page's ids first, then their rows joined
        const page = db.prepare(`SELECT c.*, e.name AS exte_name, r.rel_path FROM cdrs c
          LEFT JOIN extensions e ON e.extension = c.extension
          LEFT JOIN recordings r ON c.record_file <> '' AND r.comp_number = c.comp_number AND r.file_name = c.record_file
          WHERE c.cdr_id IN (SELECT c.cdr_id FROM cdrs c WHERE ${combo.where} ORDER BY c.start_ms DESC, c.cdr_id DESC LIMIT 20 OFFSET ${combo.start ?? 0})
          ORDER BY c.start_ms DESC, c.cdr_id DESC`)
        const url = `${server.url}/voip/api/jsondata.html?${auth}&method=findDialrecord&${new URLSearchParams(combo.params)}`
        const check = (await (await fetch(url)).json()) as { code: number; total: number }
        if (check.code !== 0) throw new Error(`${combo.name}: ${JSON.stringify(check)}`)
        // a summed total is the plain COUNT(*), whatever it costs
        const plain = (db.prepare(`SELECT count(*) AS n FROM cdrs c WHERE ${combo.where}`).get(...combo.args) as { n: number }).n
        if (plain !== check.total) throw new Error(`${combo.name}: total ${check.total}, COUNT(*) ${plain}`)
        const direct = await time(() => {
          count.get(...countArgs)
          return page.all(...combo.args)
        })
        const http = await time(async () => (await fetch(url)).json())
        results.set(`${size}:${combo.name}`, { http: http.p50, direct: direct.p50 })
        out.push(
          `  ${combo.name.padEnd(36)} total ${String(check.total).padStart(7)}  http p50 ${http.p50.toFixed(2)} ms p99 ${http.p99.toFixed(2)} ms | sqlite p50 ${direct.p50.toFixed(2)} ms | ratio ${(http.p50 / direct.p50).toFixed(1)}x`
        )
      }
    }
    for (const [a, b] of SIZES.slice(1).map((size, i) => [SIZES[i]!, size] as const)) {
      out.push(`growth ${label(a)} → ${label(b)} (http p50):`)
      for (const combo of combos(config.tz)) {
        const small = results.get(`${a}:${combo.name}`)!
        const large = results.get(`${b}:${combo.name}`)!
        out.push(`  ${combo.name.padEnd(36)} ${small.http.toFixed(2)} ms → ${large.http.toFixed(2)} ms (${(large.http / small.http).toFixed(1)}x)`)
      }
    }
  } finally {
    await bench.close()
  }
  return out
}
