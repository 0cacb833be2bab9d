/**
 * What the call counts (kept by triggers) cost a write of cdrs: the push's own INSERT and UPDATE
 * statements, one call each, with the triggers as migration 0030 left them (hour counts split by
 * talk bucket), as 0028 left them (hour counts without it) and as 0003 left them (the
 * per-enterprise count only), in alternating rounds on the same file (100k calls in it). The
 * durable ingest bench cannot show a few µs under its fsync; this isolates them.
 */
import * as path from "node:path"
import { Migrator } from "@effect/sql"
import Database from "better-sqlite3"
import { Effect } from "effect"
import { migrations } from "../src/db/migrations.js"
import * as Sqlite from "../src/db/Sqlite.js"
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

/** 0028's triggers and hour table, as a database at the migration before 0030 holds them */
const as0028 = async (dir: string) => {
  const file = path.join(dir, "before-0030.db")
  const ids = Object.keys(migrations).sort()
  const own = ids.findIndex((id) => id.endsWith("_talk_hour_counts"))
  const earlier = Object.fromEntries(ids.slice(0, own).map((id) => [id, migrations[id]!]))
  await Effect.runPromise(Migrator.make({})({ loader: Migrator.fromRecord(earlier), table: "schema_migrations" }).pipe(Effect.provide(Sqlite.layer(file, 5_000)), Effect.scoped))
  const db = new Database(file, { readonly: true })
  try {
    const sqlOf = (name: string) => (db.prepare(`SELECT sql FROM sqlite_master WHERE name = ?`).get(name) as { sql: string }).sql
    return { table: sqlOf("cdr_hour_counts"), triggers: TRIGGERS.map(sqlOf) }
  } finally {
    db.close()
  }
}

export const run = async () => {
  const bench = await benchServer("vb-bench-counts-", COMP)
  const { db } = bench
  try {
    const triggers = TRIGGERS.map((name) => (db.prepare(`SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?`).get(name) as { sql: string }).sql)
    const before = await as0028(bench.dataDir)
    db.exec(before.table)
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
    // each variant's triggers in place of the others'
    const variants = [
      { name: "0030's bucketed hour counts", create: triggers, drop: TRIGGERS },
      { name: "0028's hour counts", create: before.triggers, drop: TRIGGERS },
      { name: "0003's per-enterprise count only", create: Object.values(BEFORE), drop: Object.keys(BEFORE) }
    ]
    const samples = variants.map(() => [] as Array<{ insert: number; update: number }>)
    for (const name of TRIGGERS) db.exec(`DROP TRIGGER ${name}`)
    for (let r = 0; r < ROUNDS; r++)
      variants.forEach((v, i) => {
        for (const sql of v.create) db.exec(sql)
        samples[i]!.push(round())
        for (const name of v.drop) db.exec(`DROP TRIGGER ${name}`)
      })
    const median = (xs: ReadonlyArray<{ insert: number; update: number }>, k: "insert" | "update") => percentile(xs.map((x) => x[k]), 50)
    const line = (k: "insert" | "update") => {
      const [now, was, base] = samples.map((xs) => median(xs, k)) as [number, number, number]
      return `  ${k.padEnd(6)} one call: ${now.toFixed(1)} µs with ${variants[0]!.name}, ${was.toFixed(1)} µs with ${variants[1]!.name} (${now - was >= 0 ? "+" : ""}${(now - was).toFixed(1)} µs), ${base.toFixed(1)} µs with ${variants[2]!.name}`
    }
    return [`write cost of the call counts, median of ${ROUNDS} alternating rounds of ${CALLS.toLocaleString("en")} calls, 100k+ stored:`, line("insert"), line("update")]
  } finally {
    await bench.close()
  }
}
