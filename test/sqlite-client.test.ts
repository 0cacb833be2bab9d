/** Our SQLite client (src/db/Sqlite.ts) as @effect/sql sees it, on a real file. */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Stream } from "effect"
import * as Sqlite from "../src/db/Sqlite.js"

const sourcesUnder = (dir: string): Array<string> =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sourcesUnder(path.join(dir, e.name)) : e.name.endsWith(".ts") ? [path.join(dir, e.name)] : []))

describe("the SQLite client", () => {
  it.effect("streams a query's rows in order, as stored", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      yield* sql`CREATE TABLE t (id INTEGER PRIMARY KEY, some_name TEXT NOT NULL)`
      for (let i = 1; i <= 5; i++) yield* sql`INSERT INTO t ${sql.insert({ id: i, some_name: `n${i}` })}`
      const rows = yield* Stream.runCollect(sql<{ id: number; some_name: string }>`SELECT id, some_name FROM t WHERE id > ${1} ORDER BY id`.stream)
      expect(Chunk.toReadonlyArray(rows)).toEqual([2, 3, 4, 5].map((id) => ({ id, some_name: `n${id}` })))
      // a statement that is wrong fails the stream with the client's error, not a defect
      const wrong = yield* Effect.either(Stream.runCollect(sql`SELECT nothing FROM t`.stream))
      expect(wrong._tag).toBe("Left")
    }).pipe(Effect.provide(Sqlite.layer(path.join(fs.mkdtempSync(path.join(os.tmpdir(), "vb-sql-")), "t.db"), 1000)))
  )

  it.effect("fires a table's delete triggers for a row a REPLACE removes (the call counts depend on it)", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      yield* sql`CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)`
      yield* sql`CREATE TABLE counts (n INTEGER NOT NULL)`
      yield* sql`INSERT INTO counts (n) VALUES (0)`
      yield* sql`CREATE TRIGGER t_in AFTER INSERT ON t BEGIN UPDATE counts SET n = n + 1; END`
      yield* sql`CREATE TRIGGER t_out AFTER DELETE ON t BEGIN UPDATE counts SET n = n - 1; END`
      yield* sql`INSERT INTO t (id, v) VALUES (1, 'a'), (2, 'b')`
      yield* sql`INSERT OR REPLACE INTO t (id, v) VALUES (1, 'c')`
      expect(yield* sql<{ n: number }>`SELECT n FROM counts`).toEqual([{ n: 2 }])
    }).pipe(Effect.provide(Sqlite.layer(path.join(fs.mkdtempSync(path.join(os.tmpdir(), "vb-sql-")), "t.db"), 1000)))
  )

  it.effect("a LIMIT given as CAST(? AS INTEGER) limits as a bare parameter does: none, some, all", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      yield* sql`CREATE TABLE t (id INTEGER PRIMARY KEY)`
      for (let i = 1; i <= 5; i++) yield* sql`INSERT INTO t (id) VALUES (${i})`
      for (const [limit, offset, ids] of [[0, 0, []], [2, 0, [1, 2]], [2, 3, [4, 5]], [-1, 1, [2, 3, 4, 5]], [9, 0, [1, 2, 3, 4, 5]]] as const) {
        const rows = yield* sql<{ id: number }>`SELECT id FROM t ORDER BY id LIMIT CAST(${limit} AS INTEGER) OFFSET ${offset}`
        expect(rows.map((r) => r.id)).toEqual(ids)
      }
    }).pipe(Effect.provide(Sqlite.layer(path.join(fs.mkdtempSync(path.join(os.tmpdir(), "vb-sql-")), "t.db"), 1000)))
  )

  // SQLite (3.47 on, as better-sqlite3 builds it) reads the value bound to a bare `LIMIT ?`
  // while planning and marks the statement to be planned again whenever that parameter is bound,
  // i.e. at every run: a cached statement is compiled anew each time (a delivery claim 170 µs
  // instead of 70, an empty one 120 µs instead of 13). A CAST is not read while planning.
  it("no statement of the bridge binds a bare LIMIT parameter", () => {
    const bare = /\bLIMIT\s+(\?|\$\{)/
    const found = sourcesUnder(path.join(import.meta.dirname, "..", "src")).flatMap((file) =>
      fs.readFileSync(file, "utf8").split("\n").flatMap((line, i) => (bare.test(line) ? [`${path.relative(process.cwd(), file)}:${i + 1}: ${line.trim()}`] : []))
    )
    expect(found).toEqual([])
  })
})
