/**
 * What the call counts of migration 0028 (cdr_talk_counts, cdr_hour_counts, kept by triggers)
 * cost a write of cdrs: the push's own INSERT and UPDATE statements, one call each, with 0028's
 * triggers and with the triggers before it (0003's per-enterprise count), in alternating rounds
 * on the same file (100k calls in it). The durable ingest bench cannot show a few µs under its
 * fsync; this isolates them.
 */
import { benchServer, percentile } from "./support/measure.js"

const COMP = "100008"
const CALLS = 5_000
const ROUNDS = Number(process.env.BENCH_COUNT_ROUNDS ?? 8)
const TRIGGERS = ["cdrs_summed", "cdrs_unsummed", "cdrs_talk_resummed", "cdrs_hour_resummed"]
/** as migration 0003 created them */
const BEFORE = {
  cdrs_counted: `CREATE TRIGGER cdrs_counted AFTER INSERT ON cdrs BEGIN
    INSERT OR IGNORE INTO cdr_counts (comp_number, n) VALUES (NEW.comp_number, 0);
    UPDATE cdr_counts SET n = n + 1 WHERE comp_number = NEW.comp_number;
  END`,
  cdrs_uncounted: `CREATE TRIGGER cdrs_uncounted AFTER DELETE ON cdrs BEGIN
    UPDATE cdr_counts SET n = n - 1 WHERE comp_number = OLD.comp_number;
  END`
}

export const run = async () => {
  const bench = await benchServer("vb-bench-counts-", COMP)
  const { db } = bench
  try {
    const triggers = TRIGGERS.map((name) => (db.prepare(`SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?`).get(name) as { sql: string }).sql)
    // the statements the push path runs (src/records/CdrStore.ts INSERT_PLATFORM, UPDATE_PLATFORM)
    const insert = db.prepare(`INSERT INTO cdrs (cdr_id, comp_number, platform_cdr_id, source, created_at, extension, phone, last_phone, start_ms,
      hangup_ms, talk_secs, peer, record_file, fields, updated_at) VALUES (?, ?, ?, 'platform', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
    const update = db.prepare(`UPDATE cdrs SET extension = ?, phone = ?, last_phone = ?, start_ms = ?, hangup_ms = ?, talk_secs = ?, peer = ?,
      record_file = ?, fields = ?, updated_at = ? WHERE cdr_id = ?`)
    const fields = JSON.stringify({ cdrCalledName: "x".repeat(200) })
    let id = 1
    const T0 = Date.UTC(2026, 0, 1)
    const round = () => {
      const first = id
      const t0 = performance.now()
      db.transaction(() => {
        for (let i = 0; i < CALLS; i++, id++)
          insert.run(id, COMP, String(id), T0, `${COMP}${400 + (id % 500)}`, "13800000000", "13800000000", T0 + id * 30_000, null, 0, (id % 2) + 1, "", fields, T0)
      })()
      const t1 = performance.now()
      // the answered/hangup push: talk time and hangup filled in, start unchanged
      db.transaction(() => {
        for (let c = first; c < id; c++)
          update.run(`${COMP}${400 + (c % 500)}`, "13800000000", "13800000000", T0 + c * 30_000, T0 + c * 30_000 + 60_000, c % 600, (c % 2) + 1, "", fields, T0, c)
      })()
      const t2 = performance.now()
      return { insert: ((t1 - t0) * 1000) / CALLS, update: ((t2 - t1) * 1000) / CALLS }
    }
    while (id <= 100_000) round()
    const withCounts: Array<{ insert: number; update: number }> = []
    const without: Array<{ insert: number; update: number }> = []
    for (let r = 0; r < ROUNDS; r++) {
      withCounts.push(round())
      for (const name of TRIGGERS) db.exec(`DROP TRIGGER ${name}`)
      for (const sql of Object.values(BEFORE)) db.exec(sql)
      without.push(round())
      for (const name of Object.keys(BEFORE)) db.exec(`DROP TRIGGER ${name}`)
      for (const sql of triggers) db.exec(sql)
    }
    const median = (xs: ReadonlyArray<{ insert: number; update: number }>, k: "insert" | "update") => percentile(xs.map((x) => x[k]), 50)
    const line = (k: "insert" | "update") => {
      const a = median(withCounts, k)
      const b = median(without, k)
      return `  ${k.padEnd(6)} one call: ${a.toFixed(1)} µs with 0028's counts, ${b.toFixed(1)} µs with 0003's only (+${(a - b).toFixed(1)} µs, ${((a / b - 1) * 100).toFixed(0)}%)`
    }
    return [`write cost of the call counts (0028), median of ${ROUNDS} alternating rounds of ${CALLS.toLocaleString("en")} calls, 100k+ stored:`, line("insert"), line("update")]
  } finally {
    await bench.close()
  }
}
