/** Our SQLite client (src/db/Sqlite.ts) as @effect/sql sees it, on a real file. */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Stream } from "effect"
import * as Sqlite from "../src/db/Sqlite.js"

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
})
