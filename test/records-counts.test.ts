/**
 * findDialrecord's totals summed from cdr_talk_counts (migration 0028) against a plain COUNT(*):
 * the counts stay exact through every writer of call records (clients, pushes, the box, rows
 * written, rewritten and deleted by hand), the migration fills them from the calls already
 * stored, and every filter mix answers the same total, rows and order as the plain query.
 */
import * as path from "node:path"
import Database from "better-sqlite3"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { loadConfig } from "../src/config/AppConfig.js"
import { startServer } from "../src/http/Server.js"
import { lastPhoneOf } from "../src/records/CdrStore.js"
import { parseLocal } from "../src/shared/Time.js"
import { asAdmin, callApi, creds, startTestServer, tempDir, type TestServer } from "./support/TestServer.js"

const MAC = "00:1A:2B:3C:4D:7A"
const COMP = "100008"
const EXTENSIONS = ["100008800", "100008401", "100008402"]
// the high half of a 32-bit LCG: its low bits repeat with short periods
const lcg = (seed: number) => () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 16
const pick = <A>(next: () => number, xs: ReadonlyArray<A>): A => xs[next() % xs.length]!
const day = (d: number) => `2026-10-${String(1 + d).padStart(2, "0")}`

/** the counts as the tables hold them, and as a COUNT(*) over the calls finds them */
const countsOf = (db: Database.Database) => ({
  kept: {
    talk: db.prepare(`SELECT comp_number, peer, talk_secs, n FROM cdr_talk_counts WHERE n <> 0 ORDER BY 1, 2, 3`).all(),
    // 0030 splits each hour's count by talk-time bucket (its own test checks the buckets)
    hour: db.prepare(`SELECT comp_number, hour, peer, sum(n) AS n FROM cdr_hour_talk_counts GROUP BY 1, 2, 3 HAVING sum(n) <> 0 ORDER BY 1, 2, 3`).all()
  },
  counted: {
    talk: db.prepare(`SELECT comp_number, coalesce(peer, 0) AS peer, talk_secs, count(*) AS n FROM cdrs GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`).all(),
    hour: db.prepare(`SELECT comp_number, CAST(floor(start_ms / 3600000.0) AS INTEGER) AS hour, coalesce(peer, 0) AS peer, count(*) AS n FROM cdrs GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`).all()
  }
})

/** 0003's per-enterprise count, which 0028's trigger keeps now */
const enterprisesOf = (db: Database.Database) => db.prepare(`SELECT comp_number, n FROM cdr_counts WHERE n <> 0 ORDER BY 1`).all()
const enterprisesCounted = (db: Database.Database) => db.prepare(`SELECT comp_number, count(*) AS n FROM cdrs GROUP BY 1 ORDER BY 1`).all()

/** Calls written through every path the bridge has, then rewritten and deleted by hand. */
const writeCalls = async (server: TestServer, next: () => number) => {
  const talk = () => String(next() % 700)
  const peer = () => String(1 + (next() % 5))
  const start = () => `${day(next() % 20)} ${String(next() % 24).padStart(2, "0")}:${String(next() % 60).padStart(2, "0")}:00`
  // clients: a dialId sent again updates its call (talk time and direction change, or stay)
  for (let i = 0; i < 90; i++) {
    const who = pick(next, [creds(), creds("100008401", "agent-pw"), creds("100008402", "other-pw")])
    const fields: Record<string, string> = { dialId: String(4000 + (next() % 40)), dialPhoneNum: `1380000${String(next() % 30).padStart(4, "0")}`, dialStartTime: start() }
    if (next() % 4 !== 0) fields.dialTalktime = talk()
    if (next() % 4 !== 0) fields.dialPeer = peer()
    expect((await callApi(server, { ...who, method: "addCdrRecord", ...fields }, "form")).code).toBe(0)
  }
  // the platform's pushes: a cdrId pushed again updates its call
  for (let i = 0; i < 90; i++) {
    const memo: Record<string, unknown> = { cdrId: 880_000 + (next() % 40), cdrExtension: pick(next, EXTENSIONS), cdrStartTime: start() }
    if (next() % 4 !== 0) memo.cdrTalktime = Number(talk())
    if (next() % 4 !== 0) memo.cdrPeer = Number(peer())
    const res = await fetch(`${server.url}/api/voip.json`, {
      method: "POST",
      body: new URLSearchParams({ type: "3", peer: String(1 + (next() % 4)), phone: `1370000${String(next() % 30).padStart(4, "0")}`, memo: JSON.stringify(memo) })
    })
    expect({ memo, answer: await res.json() }).toMatchObject({ memo, answer: { code: 0 } })
  }
  // the box's uploads
  for (let i = 0; i < 12; i++) {
    const fd = new FormData()
    const secs = String(Math.floor(parseLocal(start(), server.config.tz) / 1000))
    const fields = { cmd: "upload", satellite: MAC, channel: "1", start_time_secs: secs, start_time_hangup: secs, direction: pick(next, ["in", "out"]) }
    for (const [k, v] of Object.entries({ ...fields, callid_dialed: "013800138000", duration_secs: talk(), id: "1", recorded: "1", callid: `77${i}` })) fd.append(k, v)
    fd.append("file", new Blob([Buffer.from(`box call ${i}`)]), "rec.wav")
    const res = await fetch(`${server.url}/voip/upload_record`, { method: "POST", body: fd })
    expect(await res.json()).toMatchObject({ status: 0 })
  }
  // by hand, as a retention job or an operator would: inserts (some without a direction, some
  // with one no filter names), then rewrites and deletes of any of the calls
  const db = new Database(path.join(server.dataDir, "bridge.db"))
  try {
    const insert = db.prepare(`INSERT INTO cdrs (cdr_id, comp_number, extension, dial_id, phone, last_phone, start_ms, talk_secs, peer, fields, source, created_at, updated_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, '{}', 'client', 0, 0)`)
    db.transaction(() => {
      for (let i = 0; i < 3000; i++) {
        const phone = `1360000${String(next() % 50).padStart(4, "0")}`
        const p = pick(next, [1, 1, 2, 2, 3, 4, 5, null, 0, 7])
        insert.run(9_000_000 + i, i % 10 === 0 ? "200008" : COMP, pick(next, EXTENSIONS), `h${i}`, phone, phone, i % 97 === 0 ? -5_000_000_000 - next() * 1000 : parseLocal(start(), server.config.tz), next() % 700, p)
      }
    })()
    const ids = (db.prepare(`SELECT cdr_id FROM cdrs`).all() as Array<{ cdr_id: number }>).map((r) => r.cdr_id)
    const retalk = db.prepare(`UPDATE cdrs SET talk_secs = ? WHERE cdr_id = ?`)
    const redirect = db.prepare(`UPDATE cdrs SET peer = ? WHERE cdr_id = ?`)
    const both = db.prepare(`UPDATE cdrs SET talk_secs = ?, peer = ?, phone = phone WHERE cdr_id = ?`)
    const remove = db.prepare(`DELETE FROM cdrs WHERE cdr_id = ?`)
    db.transaction(() => {
      for (let i = 0; i < 300; i++) retalk.run(next() % 700, pick(next, ids))
      for (let i = 0; i < 300; i++) redirect.run(pick(next, [1, 2, 5, null]), pick(next, ids))
      for (let i = 0; i < 300; i++) both.run(next() % 700, pick(next, [1, 2, 3, null]), pick(next, ids))
      for (let i = 0; i < 400; i++) remove.run(pick(next, ids))
    })()
  } finally {
    db.close()
  }
}

const addAgents = async (server: TestServer) => {
  await asAdmin(server, "addExtension", { exteExtension: "401", extePassword: "agent-pw", exteName: "坐席401" })
  await asAdmin(server, "addExtension", { exteExtension: "402", extePassword: "other-pw", exteName: "坐席402" })
}

describe("call counts by talk time, direction and hour", () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startTestServer({ devices: [{ mac: MAC, enterprise: COMP, channels: { "1": "100008800" } }] })
    await addAgents(server)
    await writeCalls(server, lcg(29))
  }, 60_000)
  afterAll(() => server.close())

  it("agree with a COUNT(*) over the calls after inserts, updates and deletes through every writer", () => {
    const db = new Database(path.join(server.dataDir, "bridge.db"), { readonly: true })
    try {
      const { kept, counted } = countsOf(db)
      expect(counted.talk.length).toBeGreaterThan(1000)
      expect(counted.hour.length).toBeGreaterThan(1000)
      expect(kept).toEqual(counted)
      expect(enterprisesOf(db)).toEqual(enterprisesCounted(db))
      // every writer took part
      const sources = db.prepare(`SELECT DISTINCT source FROM cdrs ORDER BY 1`).all() as Array<{ source: string }>
      expect(sources.map((s) => s.source)).toEqual(["box", "client", "platform"])
    } finally {
      db.close()
    }
  })

  it("answer the same total, rows and order as the plain query for 400 filter mixes, at every depth", { timeout: 60_000 }, async () => {
    const db = new Database(path.join(server.dataDir, "bridge.db"), { readonly: true })
    const next = lcg(101)
    const summed = { talk: 0, time: 0 }
    const local = () => `${day(next() % 21)} ${String(next() % 24).padStart(2, "0")}:${pick(next, ["00:00", "59:59", "30:00", `${String(next() % 60).padStart(2, "0")}:${String(next() % 60).padStart(2, "0")}`])}`
    try {
      for (let i = 0; i < 400; i++) {
        const params: Record<string, string> = {}
        const where = ["comp_number = ?"]
        const args: Array<unknown> = [COMP]
        // a third name only talk time and direction, a third only time and direction (the totals
        // summed from the counts), a third anything
        const mode = pick(next, ["talk", "time", "any"] as const)
        if (mode !== "time" && next() % 3 !== 0) {
          const op = next() % 2
          const secs = pick(next, [0, 1, 60, 300, 599, 699, 700, next() % 700])
          Object.assign(params, { talktimeSql: String(op), talktime: String(secs) })
          where.push(op === 0 ? "talk_secs > ?" : "talk_secs < ?")
          args.push(secs)
        }
        if (next() % 3 !== 0) {
          const peer = 1 + (next() % 5)
          params.cdrPeer = String(peer)
          where.push("peer = ?")
          args.push(peer)
        }
        if (mode === "any" && next() % 2 === 0) {
          // one extension, or a list (a page merged from each one's own range)
          const exts = [...new Set(Array.from({ length: 1 + (next() % 3) }, () => pick(next, EXTENSIONS)))]
          params.extension = exts.join(",")
          where.push(`extension IN (${exts.map(() => "?").join(", ")})`)
          args.push(...exts)
        }
        if (mode === "any" && next() % 3 === 0) {
          const phone = `1360000${String(next() % 50).padStart(4, "0")}`
          params.phoneNum = phone
          where.push("last_phone = ?")
          args.push(lastPhoneOf(phone))
        }
        if (mode === "time" || (mode === "any" && next() % 2 === 0)) {
          // whole days, hours, a few minutes, one end open, within one hour
          const [from, to] = [local(), local()].sort() as [string, string]
          const ends = pick(next, ["both", "both", "from", "to", "days", "hour"] as const)
          const [f, t] =
            ends === "days" ? [`${from.slice(0, 10)} 00:00:00`, `${to.slice(0, 10)} 23:59:59`] : ends === "hour" ? [`${from.slice(0, 13)}:10:00`, `${from.slice(0, 13)}:50:00`] : [from, to]
          if (ends !== "to") {
            params.startTime = f
            where.push("start_ms >= ?")
            args.push(parseLocal(f, server.config.tz))
          }
          if (ends !== "from") {
            params.endTime = t
            where.push("start_ms <= ?")
            args.push(parseLocal(t, server.config.tz))
          }
        }
        const total = (db.prepare(`SELECT count(*) AS n FROM cdrs WHERE ${where.join(" AND ")}`).get(...args) as { n: number }).n
        const start = pick(next, [0, 0, 3, Math.floor(total / 2), Math.max(0, total - 4), total])
        const limit = pick(next, [1, 7, 20, 100])
        const want = (
          db.prepare(`SELECT cdr_id, platform_cdr_id FROM cdrs WHERE ${where.join(" AND ")} ORDER BY start_ms DESC, cdr_id DESC LIMIT ? OFFSET ?`).all(...args, limit, start) as Array<{
            cdr_id: number
            platform_cdr_id: string | null
          }>
        ).map((r) => (r.platform_cdr_id === null ? r.cdr_id : Number(r.platform_cdr_id)))
        const body = await callApi(server, { ...creds(), method: "findDialrecord", ...params, start: String(start), limit: String(limit) })
        expect({ params, code: body.code, total: body.total, recordTotal: body.recordTotal }).toEqual({ params, code: 0, total, recordTotal: total })
        expect((body.rows as Array<{ cdrId: number }>).map((r) => r.cdrId)).toEqual(want)
        if (where.length > 1 && !params.extension && !params.phoneNum) {
          if (params.startTime === undefined && params.endTime === undefined) summed.talk++
          else if (params.talktime === undefined) summed.time++
        }
      }
      expect(summed.talk).toBeGreaterThan(80)
      expect(summed.time).toBeGreaterThan(80)
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
    } finally {
      db.close()
    }
  })
  it("pages several extensions the same whether merged per extension (rare ones) or walked (a list covering most calls)", { timeout: 60_000 }, async () => {
    const db = new Database(path.join(server.dataDir, "bridge.db"))
    try {
      // forty extensions with a few dozen calls each: rare against the thousands the others hold
      const insert = db.prepare(`INSERT INTO cdrs (cdr_id, comp_number, extension, dial_id, phone, last_phone, start_ms, talk_secs, peer, fields, source, created_at, updated_at)
        VALUES (?, ?, ?, ?, '', '', ?, ?, ?, '{}', 'client', 0, 0)`)
      const next = lcg(7)
      const rare = Array.from({ length: 40 }, (_, i) => `100008${String(500 + i)}`)
      db.transaction(() => {
        for (let i = 0; i < 1200; i++) insert.run(8_000_000 + i, COMP, rare[i % 40]!, `r${i}`, Date.UTC(2026, 9, 1 + (next() % 28), next() % 24, next() % 60), next() % 700, 1 + (next() % 2))
      })()
      const lists = [rare.slice(0, 2), rare.slice(3, 8), [rare[9]!, rare[10]!, rare[11]!], [...EXTENSIONS], [EXTENSIONS[0]!, rare[12]!], rare]
      for (const list of lists)
        for (const [start, limit] of [[0, 20], [7, 5], [25, 20], [100, 100], [2000, 20]] as const) {
          for (const extra of [{}, { cdrPeer: "1" }, { talktimeSql: "0", talktime: "300" }] as ReadonlyArray<Record<string, string>>) {
            const where = [`comp_number = ?`, `extension IN (${list.map(() => "?").join(", ")})`]
            const args: Array<unknown> = [COMP, ...list]
            if ("cdrPeer" in extra) (where.push("peer = ?"), args.push(1))
            if ("talktime" in extra) (where.push("talk_secs > ?"), args.push(300))
            const total = (db.prepare(`SELECT count(*) AS n FROM cdrs WHERE ${where.join(" AND ")}`).get(...args) as { n: number }).n
            const want = (
              db.prepare(`SELECT cdr_id, platform_cdr_id FROM cdrs WHERE ${where.join(" AND ")} ORDER BY start_ms DESC, cdr_id DESC LIMIT ? OFFSET ?`).all(...args, limit, start) as Array<{
                cdr_id: number
                platform_cdr_id: string | null
              }>
            ).map((r) => (r.platform_cdr_id === null ? r.cdr_id : Number(r.platform_cdr_id)))
            const body = await callApi(server, { ...creds(), method: "findDialrecord", extension: list.join(","), ...extra, start: String(start), limit: String(limit) })
            expect({ list: list.length, start, extra, total: body.total }).toEqual({ list: list.length, start, extra, total })
            expect((body.rows as Array<{ cdrId: number }>).map((r) => r.cdrId)).toEqual(want)
          }
        }
    } finally {
      db.close()
    }
  })
})

describe("migration 0028", () => {
  it("fills the counts from the calls stored before it, and keeps them from then on", { timeout: 60_000 }, async () => {
    const dataDir = tempDir()
    // two bridges, one after the other, on the same data directory
    const boot = async (): Promise<TestServer> => {
      const overrides = { port: 0, host: "127.0.0.1", dataDir, logLevel: "none", devices: [{ mac: MAC, enterprise: COMP, channels: { "1": "100008800" } }] }
      const config = await Effect.runPromise(loadConfig({ env: {}, overrides }))
      return { ...(await startServer(config)), dataDir, config }
    }
    const first = await boot()
    const db = () => new Database(path.join(dataDir, "bridge.db"))
    try {
      await addAgents(first)
      await writeCalls(first, lcg(7))
    } finally {
      await first.close()
    }
    // as a database the migration has not run on: its calls, 0003's count of them, neither the
    // tables nor the triggers of 0028
    const before = db()
    try {
      // (cdrs_enterprise_moved: 0031's, made again with the migrations after 0028)
      for (const t of ["cdrs_summed", "cdrs_unsummed", "cdrs_talk_resummed", "cdrs_hour_resummed", "cdrs_enterprise_moved"]) before.exec(`DROP TRIGGER ${t}`)
      before.exec(`CREATE TRIGGER cdrs_counted AFTER INSERT ON cdrs BEGIN
        INSERT OR IGNORE INTO cdr_counts (comp_number, n) VALUES (NEW.comp_number, 0);
        UPDATE cdr_counts SET n = n + 1 WHERE comp_number = NEW.comp_number;
      END`)
      before.exec(`CREATE TRIGGER cdrs_uncounted AFTER DELETE ON cdrs BEGIN UPDATE cdr_counts SET n = n - 1 WHERE comp_number = OLD.comp_number; END`)
      before.exec(`DROP TABLE cdr_talk_counts`)
      // 0030's, which replaced 0028's hour counts (undone below with the migrations after 0028)
      before.exec(`DROP TABLE cdr_hour_talk_counts`)
      const own = before.prepare(`SELECT migration_id AS id FROM schema_migrations WHERE name = 'call_counts'`).get() as { id: number }
      // and the migrations after it, undone (0029: two columns of box_dial_calls; 0030: its table, above; 0031: its trigger, above), to be run again after it
      before.exec(`ALTER TABLE box_dial_calls DROP COLUMN comp_number`)
      before.exec(`ALTER TABLE box_dial_calls DROP COLUMN behind`)
      before.prepare(`DELETE FROM schema_migrations WHERE migration_id >= ?`).run(own.id)
      // the migrator runs only ids above the highest applied: this one must be the last
      expect((before.prepare(`SELECT max(migration_id) AS id FROM schema_migrations`).get() as { id: number }).id).toBeLessThan(own.id)
    } finally {
      before.close()
    }
    const second = await boot()
    try {
      const after = db()
      try {
        const { kept, counted } = countsOf(after)
        expect(counted.hour.length).toBeGreaterThan(1000)
        expect(kept).toEqual(counted)
        expect(enterprisesOf(after)).toEqual(enterprisesCounted(after))
      } finally {
        after.close()
      }
      // and a call written after it is counted
      const body = await callApi(second, { ...creds(), method: "findDialrecord", talktimeSql: "0", talktime: "699", cdrPeer: "4" })
      const memo = JSON.stringify({ cdrId: 990_001, cdrExtension: "100008800", cdrTalktime: 5000, cdrPeer: 4 })
      await fetch(`${second.url}/api/voip.json`, { method: "POST", body: new URLSearchParams({ type: "3", peer: "1", phone: "13800138000", memo }) })
      expect(await callApi(second, { ...creds(), method: "findDialrecord", talktimeSql: "0", talktime: "699", cdrPeer: "4" })).toMatchObject({ code: 0, total: Number(body.total) + 1 })
    } finally {
      await second.close()
    }
  })
})
