/**
 * findDialrecord's total for talk time with a time range, summed from cdr_hour_talk_counts
 * (migration 0030) where the talk time is a bucket bound: the counts stay exact per bucket through
 * inserts, deletes and updates of talk time, start, direction and enterprise; totals equal a plain
 * COUNT(*) for talk times on and off the bounds, ranges with partial hours at either end, with and
 * without direction; and a database at the migration before, calls in it, is filled by the migration.
 */
import * as path from "node:path"
import { Migrator } from "@effect/sql"
import Database from "better-sqlite3"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { loadConfig } from "../src/config/AppConfig.js"
import { migrations } from "../src/db/migrations.js"
import * as Sqlite from "../src/db/Sqlite.js"
import { startServer } from "../src/http/Server.js"
import { TALK_BOUNDS, talkBucketSql } from "../src/records/TalkBuckets.js"
import { parseLocal } from "../src/shared/Time.js"
import { callApi, creds, startTestServer, tempDir, type TestServer } from "./support/TestServer.js"

const COMP = "100008"
const OTHER = "200008"
const HOUR = 3_600_000
const lcg = (seed: number) => () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 16
const pick = <A>(next: () => number, xs: ReadonlyArray<A>): A => xs[next() % xs.length]!

/** the bucket as TalkBuckets.ts defines it, computed here from the bounds rather than by its SQL */
const bucketOf = (t: number) => {
  if (t < 0) return -1
  let b = 2 * TALK_BOUNDS.length - 1
  for (let i = TALK_BOUNDS.length - 1; i >= 0; i--) {
    if (t === TALK_BOUNDS[i]) return 2 * i
    if (t < TALK_BOUNDS[i]!) b = 2 * i - 1
  }
  return b
}

/** talk times on the bounds, next to them, between them, and odd ones a hand edit may leave */
const talkOf = (next: () => number) =>
  pick(next, [...TALK_BOUNDS, ...TALK_BOUNDS.map((b) => b + 1), ...TALK_BOUNDS.map((b) => b - 1), next() % 4000, next() % 700, 10.5, 5000])

/** the bucket counts as kept, and as the calls themselves give them */
const bucketCounts = (db: Database.Database) => {
  const calls = db.prepare(`SELECT comp_number, start_ms, coalesce(peer, 0) AS peer, talk_secs FROM cdrs`).all() as Array<{ comp_number: string; start_ms: number; peer: number; talk_secs: number }>
  const counted = new Map<string, number>()
  for (const c of calls) {
    const key = `${c.comp_number}|${Math.floor(c.start_ms / HOUR)}|${c.peer}|${bucketOf(c.talk_secs)}`
    counted.set(key, (counted.get(key) ?? 0) + 1)
  }
  const kept = db.prepare(`SELECT comp_number, hour, peer, talk_bucket, n FROM cdr_hour_talk_counts WHERE n <> 0`).all() as Array<{ comp_number: string; hour: number; peer: number; talk_bucket: number; n: number }>
  const sorted = (m: Iterable<[string, number]>) => [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  return { kept: sorted(kept.map((k) => [`${k.comp_number}|${k.hour}|${k.peer}|${k.talk_bucket}`, k.n] as [string, number])), counted: sorted(counted) }
}

/** Calls written by hand, then rewritten (talk time, start, direction, enterprise) and deleted. */
const writeCalls = (file: string, next: () => number, firstId: number) => {
  const db = new Database(file)
  try {
    const insert = db.prepare(`INSERT INTO cdrs (cdr_id, comp_number, extension, dial_id, phone, last_phone, start_ms, talk_secs, peer, fields, source, created_at, updated_at)
      VALUES (?, ?, '100008800', ?, '', '', ?, ?, ?, '{}', 'client', 0, 0)`)
    // ten days of October 2026, some calls before 1970 (the hour of a negative time)
    const start = () => (next() % 53 === 0 ? -5_000_000_000 - next() * 1000 : Date.UTC(2026, 9, 1) + (next() % 240) * HOUR + (next() % 3600) * 1000 + (next() % 1000))
    const ids: Array<number> = []
    db.transaction(() => {
      for (let i = 0; i < 2500; i++) {
        ids.push(firstId + i)
        insert.run(firstId + i, i % 9 === 0 ? OTHER : COMP, `t${firstId + i}`, start(), talkOf(next), pick(next, [1, 1, 2, 2, 3, null, 0, 7]))
      }
    })()
    const update = (column: string) => db.prepare(`UPDATE cdrs SET ${column} = ? WHERE cdr_id = ?`)
    const [talk, moved, peer, comp] = [update("talk_secs"), update("start_ms"), update("peer"), update("comp_number")]
    // a push rewrites every column, most of them unchanged
    const same = db.prepare(`UPDATE cdrs SET talk_secs = talk_secs, start_ms = start_ms, peer = peer, comp_number = comp_number, phone = phone WHERE cdr_id = ?`)
    const remove = db.prepare(`DELETE FROM cdrs WHERE cdr_id = ?`)
    db.transaction(() => {
      for (let i = 0; i < 300; i++) talk.run(talkOf(next), pick(next, ids))
      // within its hour, or to another one
      for (let i = 0; i < 200; i++) {
        const id = pick(next, ids)
        const row = db.prepare(`SELECT start_ms FROM cdrs WHERE cdr_id = ?`).get(id) as { start_ms: number } | undefined
        if (row) moved.run(next() % 2 === 0 ? row.start_ms + 1000 : start(), id)
      }
      for (let i = 0; i < 200; i++) peer.run(pick(next, [1, 2, 5, null]), pick(next, ids))
      for (let i = 0; i < 100; i++) comp.run(pick(next, [COMP, OTHER]), pick(next, ids))
      for (let i = 0; i < 200; i++) same.run(pick(next, ids))
      for (let i = 0; i < 300; i++) remove.run(pick(next, ids))
    })()
  } finally {
    db.close()
  }
}

/** `count` random filters of talk time with a time range: the total over HTTP against COUNT(*). */
const compareTotals = async (server: TestServer, file: string, next: () => number, count: number) => {
  const db = new Database(file, { readonly: true })
  const tz = server.config.tz
  const two = (n: number) => String(n).padStart(2, "0")
  // whole hours, the last second of one, anywhere
  const local = () => `2026-10-${two(1 + (next() % 11))} ${two(next() % 24)}:${pick(next, ["00:00", "59:59", `${two(next() % 60)}:${two(next() % 60)}`])}`
  let onBound = 0
  try {
    for (let i = 0; i < count; i++) {
      const op = next() % 2
      const secs = pick(next, [...TALK_BOUNDS, ...TALK_BOUNDS, 1, 59, 61, 299, 301, 3601, next() % 4000])
      if (TALK_BOUNDS.includes(secs)) onBound++
      const params: Record<string, string> = { talktimeSql: String(op), talktime: String(secs) }
      const where = ["comp_number = ?", op === 0 ? "talk_secs > ?" : "talk_secs < ?"]
      const args: Array<unknown> = [COMP, secs]
      if (next() % 2 === 0) {
        const peer = 1 + (next() % 5)
        params.cdrPeer = String(peer)
        where.push("peer = ?")
        args.push(peer)
      }
      const [from, to] = [local(), local()].sort() as [string, string]
      const ends = pick(next, ["both", "both", "both", "from", "to", "hour"] as const)
      const [f, t] = ends === "hour" ? [`${from.slice(0, 13)}:10:00`, `${from.slice(0, 13)}:50:00`] : [from, to]
      if (ends !== "to") {
        params.startTime = f
        where.push("start_ms >= ?")
        args.push(parseLocal(f, tz))
      }
      if (ends !== "from") {
        params.endTime = t
        where.push("start_ms <= ?")
        args.push(parseLocal(t, tz))
      }
      const total = (db.prepare(`SELECT count(*) AS n FROM cdrs WHERE ${where.join(" AND ")}`).get(...args) as { n: number }).n
      const body = await callApi(server, { ...creds(), method: "findDialrecord", ...params, limit: "1" })
      expect({ params, code: body.code, total: body.total }).toEqual({ params, code: 0, total })
    }
  } finally {
    db.close()
  }
  expect(onBound).toBeGreaterThan(count / 3)
  expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
}

describe("call counts by hour, direction and talk-time bucket", () => {
  let server: TestServer
  let file: string
  beforeAll(async () => {
    server = await startTestServer()
    file = path.join(server.dataDir, "bridge.db")
    writeCalls(file, lcg(41), 5_000_000)
  }, 60_000)
  afterAll(() => server.close())

  it("puts each bound in a bucket of its own, between the buckets below and above it, in SQL as here", () => {
    expect([-1, 0, 0.5, 9, 10, 11, 3599, 3600, 3601].map(bucketOf)).toEqual([-1, 0, 1, 1, 2, 3, 15, 16, 17])
    const db = new Database(":memory:")
    try {
      const inSql = db.prepare(`SELECT ${talkBucketSql("v.t")} AS b FROM (SELECT ? AS t) v`).pluck()
      const values = [-7, -0.5, ...TALK_BOUNDS.flatMap((b) => [b - 1, b - 0.5, b, b + 0.5, b + 1]), 99_999]
      expect(values.map((t) => inSql.get(t))).toEqual(values.map(bucketOf))
    } finally {
      db.close()
    }
  })

  it("agree bucket by bucket with the calls after inserts, updates and deletes", () => {
    const db = new Database(file, { readonly: true })
    try {
      const { kept, counted } = bucketCounts(db)
      expect(counted.length).toBeGreaterThan(2000)
      expect(kept).toEqual(counted)
    } finally {
      db.close()
    }
  })

  it("answer the same total as COUNT(*) for 400 talk times with a time range", { timeout: 60_000 }, async () => {
    await compareTotals(server, file, lcg(5), 400)
  })

  it("answer a month's talk time on a bound from the counts, its partial hours from the calls", async () => {
    const db = new Database(file)
    try {
      // the range starts and ends inside an hour: both partial hours are read from the calls
      const params = { talktimeSql: "0", talktime: "300", cdrPeer: "1", startTime: "2026-10-02 10:20:00", endTime: "2026-10-08 17:45:10" }
      const first = (await callApi(server, { ...creds(), method: "findDialrecord", ...params, limit: "1" })).total as number
      const [from, to] = [parseLocal(params.startTime, server.config.tz), parseLocal(params.endTime, server.config.tz)]
      expect(first).toBe((db.prepare(`SELECT count(*) AS n FROM cdrs WHERE comp_number = ? AND talk_secs > 300 AND peer = 1 AND start_ms BETWEEN ? AND ?`).get(COMP, from, to) as { n: number }).n)
      // a count the total sums: a whole hour in range, a bucket above 300; then one it must not (bucket of 300 itself)
      const hour = Math.ceil(from / HOUR) + 3
      const bump = db.prepare(`INSERT INTO cdr_hour_talk_counts (comp_number, hour, peer, talk_bucket, n) VALUES (?, ?, 1, ?, 1000) ON CONFLICT DO UPDATE SET n = n + 1000`)
      const unbump = db.prepare(`UPDATE cdr_hour_talk_counts SET n = n - 1000 WHERE comp_number = ? AND hour = ? AND peer = 1 AND talk_bucket = ?`)
      const total = async () => (await callApi(server, { ...creds(), method: "findDialrecord", ...params, limit: "1" })).total
      try {
        bump.run(COMP, hour, bucketOf(301))
        expect(await total()).toBe(first + 1000)
        unbump.run(COMP, hour, bucketOf(301))
        bump.run(COMP, hour, bucketOf(300))
        expect(await total()).toBe(first)
      } finally {
        unbump.run(COMP, hour, bucketOf(300))
      }
      expect(await total()).toBe(first)
    } finally {
      db.close()
    }
  })

  it("answer a range over most of the hours as all the calls less the hours outside it", async () => {
    const db = new Database(file)
    try {
      // open at its start: every hour from the first call (before 1970) to the end is inside
      const params = { talktimeSql: "1", talktime: "60", endTime: "2026-10-05 12:30:00" }
      const total = async () => (await callApi(server, { ...creds(), method: "findDialrecord", ...params, limit: "1" })).total as number
      const first = await total()
      const to = parseLocal(params.endTime, server.config.tz)
      expect(first).toBe((db.prepare(`SELECT count(*) AS n FROM cdrs WHERE comp_number = ? AND talk_secs < 60 AND start_ms <= ?`).get(COMP, to) as { n: number }).n)
      // a count after the range moves the total (the other way): it is read, as the outside
      const after = Math.floor(to / HOUR) + 24
      db.prepare(`INSERT INTO cdr_hour_talk_counts (comp_number, hour, peer, talk_bucket, n) VALUES (?, ?, 1, ?, 1000) ON CONFLICT DO UPDATE SET n = n + 1000`).run(COMP, after, bucketOf(0))
      try {
        expect(await total()).toBe(first - 1000)
      } finally {
        db.prepare(`UPDATE cdr_hour_talk_counts SET n = n - 1000 WHERE comp_number = ? AND hour = ? AND peer = 1 AND talk_bucket = ?`).run(COMP, after, bucketOf(0))
      }
      expect(await total()).toBe(first)
    } finally {
      db.close()
    }
  })
})

describe("migration 0030", () => {
  it("fills the bucket counts from the calls a database at the migration before holds, and keeps them from then on", { timeout: 60_000 }, async () => {
    const dataDir = tempDir()
    const file = path.join(dataDir, "bridge.db")
    // every migration before this one (ids are renumbered at merge: found by name)
    const ids = Object.keys(migrations).sort()
    const own = ids.findIndex((id) => id.endsWith("_talk_hour_counts"))
    expect(own).toBeGreaterThan(0)
    const earlier = Object.fromEntries(ids.slice(0, own).map((id) => [id, migrations[id]!]))
    await Effect.runPromise(
      Migrator.make({})({ loader: Migrator.fromRecord(earlier), table: "schema_migrations" }).pipe(Effect.provide(Sqlite.layer(file, 5_000)), Effect.scoped)
    )
    {
      const db = new Database(file, { readonly: true })
      try {
        expect(db.prepare(`SELECT name FROM sqlite_master WHERE name IN ('cdr_hour_counts', 'cdr_hour_talk_counts')`).all()).toEqual([{ name: "cdr_hour_counts" }])
      } finally {
        db.close()
      }
    }
    // the calls, kept by the triggers before it
    writeCalls(file, lcg(77), 6_000_000)
    const config = await Effect.runPromise(loadConfig({ env: {}, overrides: { port: 0, host: "127.0.0.1", dataDir, logLevel: "none" } }))
    const server: TestServer = { ...(await startServer(config)), dataDir, config }
    try {
      const db = new Database(file, { readonly: true })
      try {
        const { kept, counted } = bucketCounts(db)
        expect(counted.length).toBeGreaterThan(2000)
        expect(kept).toEqual(counted)
        expect(db.prepare(`SELECT name FROM sqlite_master WHERE name IN ('cdr_hour_counts', 'cdr_hour_talk_counts')`).all()).toEqual([{ name: "cdr_hour_talk_counts" }])
      } finally {
        db.close()
      }
      await compareTotals(server, file, lcg(9), 150)
      // and calls written after it are counted
      writeCalls(file, lcg(78), 7_000_000)
      const db2 = new Database(file, { readonly: true })
      try {
        const { kept, counted } = bucketCounts(db2)
        expect(kept).toEqual(counted)
      } finally {
        db2.close()
      }
      await compareTotals(server, file, lcg(10), 100)
    } finally {
      await server.close()
    }
  })
})
