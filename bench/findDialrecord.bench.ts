/**
 * findDialrecord at 10k and 1M call records: latency over real HTTP (auth, decode, query,
 * encode) against the same SQL run directly on SQLite in the same process (the ratio), and
 * the growth from 10k to 1M rows, for each filter combination.
 */
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import Database from "better-sqlite3"
import { Effect } from "effect"
import { loadConfig } from "../src/config/AppConfig.js"
import { startServer } from "../src/http/Server.js"
import { lastPhoneOf } from "../src/records/CdrStore.js"
import { parseLocal } from "../src/shared/Time.js"

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 40)
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
}

const combos = (tz: string): ReadonlyArray<Combo> => {
  const from = parseLocal("2026-03-01 00:00:00", tz)
  const to = parseLocal("2026-03-01 23:59:59", tz)
  return [
    { name: "no filter, first page", params: {}, where: "c.comp_number = ?", args: [COMP], counted: true },
    { name: "one extension", params: { extension: `${COMP}807` }, where: "c.comp_number = ? AND c.extension = ?", args: [COMP, `${COMP}807`] },
    { name: "phone number", params: { phoneNum: "13800012345" }, where: "c.comp_number = ? AND c.last_phone = ?", args: [COMP, lastPhoneOf("13800012345")] },
    { name: "one day", params: { startTime: "2026-03-01 00:00:00", endTime: "2026-03-01 23:59:59" }, where: "c.comp_number = ? AND c.start_ms >= ? AND c.start_ms <= ?", args: [COMP, from, to] },
    {
      name: "extension + talk > 300 + outbound",
      params: { extension: `${COMP}807`, talktimeSql: "0", talktime: "300", cdrPeer: "1" },
      where: "c.comp_number = ? AND c.extension = ? AND c.talk_secs > ? AND c.peer = ?",
      args: [COMP, `${COMP}807`, 300, 1]
    },
    { name: "page 500 (start 10000)", params: { start: "10000" }, where: "c.comp_number = ?", args: [COMP], start: 10_000, counted: true }
  ]
}

const fill = (db: Database.Database, from: number, to: number) => {
  const insert = db.prepare(`INSERT INTO cdrs (cdr_id, comp_number, extension, dial_id, phone, last_phone, start_ms, hangup_ms, talk_secs, peer, record_file, fields, source, created_at, updated_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', '{}', 'client', ?, ?)`)
  const rnd = crypto.randomBytes(20 * (to - from))
  db.transaction(() => {
    for (let i = from; i < to; i++) {
      const o = (i - from) * 20
      const ext = `${COMP}${400 + (rnd.readUInt32LE(o) % 500)}`
      const phone = `138000${String(rnd.readUInt32LE(o + 4) % 20_000).padStart(5, "0")}`
      const start = T0 + (rnd.readUInt32LE(o + 8) % 365) * DAY + (rnd.readUInt32LE(o + 16) % DAY)
      const talk = rnd.readUInt32LE(o + 12) % 600
      insert.run(1_000_000_000 + i, COMP, ext, String(i), phone, phone, start, start + talk * 1000, talk, (i % 2) + 1, start, start)
    }
  })()
}

const percentile = (xs: ReadonlyArray<number>, p: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!
}

const time = async (f: () => unknown) => {
  const samples: Array<number> = []
  for (let i = 0; i < ROUNDS; i++) {
    const t = performance.now()
    await f()
    samples.push(performance.now() - t)
  }
  return { p50: percentile(samples, 50), p99: percentile(samples, 99) }
}

export const run = async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "vb-bench-cdr-"))
  // filling 1M rows blocks this process for seconds: a short keep-alive would close the client's idle connection under it
  const config = await Effect.runPromise(loadConfig({ env: {}, overrides: { port: 0, host: "127.0.0.1", dataDir, logLevel: "error", http: { keepAliveTimeoutMs: 120_000 } } }))
  const server = await startServer(config)
  const db = new Database(path.join(dataDir, "bridge.db"))
  const auth = `sa_user=${COMP}800&sa_password=${crypto.createHash("md5").update("02367073578").digest("hex")}`
  const out: Array<string> = []
  const results = new Map<string, { http: number; direct: number }>()
  let filled = 0
  try {
    for (const size of [10_000, 1_000_000]) {
      const t = performance.now()
      fill(db, filled, size)
      filled = size
      db.pragma("optimize")
      out.push(`${size.toLocaleString("en")} records (filled in ${((performance.now() - t) / 1000).toFixed(1)} s)`)
      for (const combo of combos(config.tz)) {
        const count = combo.counted
          ? db.prepare(`SELECT n FROM cdr_counts WHERE comp_number = ?`)
          : db.prepare(`SELECT count(*) AS n FROM cdrs c WHERE ${combo.where}`)
        const page = db.prepare(`SELECT c.*, e.name AS exte_name, r.rel_path FROM cdrs c
          LEFT JOIN extensions e ON e.extension = c.extension
          LEFT JOIN recordings r ON c.record_file <> '' AND r.comp_number = c.comp_number AND r.file_name = c.record_file
          WHERE ${combo.where} ORDER BY c.start_ms DESC, c.cdr_id DESC LIMIT 20 OFFSET ${combo.start ?? 0}`)
        const url = `${server.url}/voip/api/jsondata.html?${auth}&method=findDialrecord&${new URLSearchParams(combo.params)}`
        const check = (await (await fetch(url)).json()) as { code: number; total: number }
        if (check.code !== 0) throw new Error(`${combo.name}: ${JSON.stringify(check)}`)
        const direct = await time(() => {
          count.get(...(combo.counted ? [COMP] : combo.args))
          return page.all(...combo.args)
        })
        const http = await time(async () => (await fetch(url)).json())
        results.set(`${size}:${combo.name}`, { http: http.p50, direct: direct.p50 })
        out.push(
          `  ${combo.name.padEnd(36)} total ${String(check.total).padStart(7)}  http p50 ${http.p50.toFixed(2)} ms p99 ${http.p99.toFixed(2)} ms | sqlite p50 ${direct.p50.toFixed(2)} ms | ratio ${(http.p50 / direct.p50).toFixed(1)}x`
        )
      }
    }
    out.push("growth 10k → 1M (http p50):")
    for (const combo of combos(config.tz)) {
      const small = results.get(`10000:${combo.name}`)!
      const large = results.get(`1000000:${combo.name}`)!
      out.push(`  ${combo.name.padEnd(36)} ${small.http.toFixed(2)} ms → ${large.http.toFixed(2)} ms (${(large.http / small.http).toFixed(1)}x)`)
    }
  } finally {
    db.close()
    await server.close()
    fs.rmSync(dataDir, { recursive: true, force: true })
  }
  return out
}
