/**
 * The SQLite connection: one better-sqlite3 handle, shared by two ways in.
 *
 * - `SqlClient` (@effect/sql) for everything that is not hot: queries, admin, migrations.
 *   Adapted from @effect/sql-sqlite-node's client (same compiler, same one-permit lock).
 * - `Sqlite.exclusive(f)`: runs a synchronous function on the handle itself, with prepared
 *   statements. The push ingest, the outbox and the delivery worker write this way: each
 *   @effect/sql statement costs ~20 µs of Effect machinery besides SQLite's own few µs, and
 *   a push writes half a dozen rows (docs/decisions.md, "Throughput").
 *
 * Both take the same permit, so `exclusive` never runs inside somebody else's open
 * transaction; called from inside the caller's own @effect/sql transaction it runs at once,
 * as part of that transaction.
 */
import { SqlClient, type SqlConnection } from "@effect/sql"
import { SqlError } from "@effect/sql/SqlError"
import * as Statement from "@effect/sql/Statement"
import * as Reactivity from "@effect/experimental/Reactivity"
import Database from "better-sqlite3"
import { Context, Effect, Layer, Option, Scope, Stream } from "effect"

export type Db = Database.Database

/** The cached prepared statement for a SQL text. */
export type Prepared = (sql: string) => Database.Statement

/** A synchronous unit of work on the handle: it may throw; it must not keep `db` beyond its return. */
export type SyncWork<A> = (db: Db, prepared: Prepared) => A

export interface SqliteShape {
  readonly exclusive: <A>(work: SyncWork<A>) => Effect.Effect<A, SqlError>
  /** Runs an effect holding the connection's one permit (the group commit's loop: never inside a transaction of its own). */
  readonly withPermit: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  readonly prepared: Prepared
  readonly db: Db
}

export class Sqlite extends Context.Tag("Sqlite")<Sqlite, SqliteShape>() {}

const PREPARED_CACHE = 500

const failed = (message: string) => (cause: unknown) => new SqlError({ cause, message })

const make = (filename: string) =>
  Effect.gen(function* () {
    const db = yield* Effect.acquireRelease(
      Effect.try({ try: () => new Database(filename), catch: failed(`cannot open the database ${filename}`) }),
      (db) => Effect.sync(() => db.close())
    )
    db.pragma("journal_mode = WAL")
    // statement journals (every insert that fires a trigger inside a batch has one) in memory,
    // not in a temporary file: ~5 µs less per pushed call record
    db.pragma("temp_store = MEMORY")

    /** COMMIT failures, told apart from every other defect by identity */
    const failedCommits = new WeakSet<SqlError>()

    // Map keeps insertion order: evicting the first key drops the least recently added statement
    const cache = new Map<string, Database.Statement>()
    const prepared = (sql: string) => {
      let statement = cache.get(sql)
      if (statement === undefined) {
        statement = db.prepare(sql)
        if (cache.size >= PREPARED_CACHE) cache.delete(cache.keys().next().value!)
        cache.set(sql, statement)
      }
      return statement
    }

    const run = (sql: string, params: ReadonlyArray<unknown>, raw: boolean) =>
      Effect.try({
        try: () => {
          const statement = prepared(sql)
          if (statement.reader) return statement.all(...params) as ReadonlyArray<object>
          const result = statement.run(...params)
          return raw ? (result as unknown as ReadonlyArray<object>) : []
        },
        catch: failed("Failed to execute statement")
      })

    const connection: SqlConnection.Connection = {
      execute: (sql, params, transformRows) => (transformRows ? Effect.map(run(sql, params, false), transformRows) : run(sql, params, false)),
      executeRaw: (sql, params) => run(sql, params, true),
      executeValues: (sql, params) =>
        Effect.try({
          try: () => {
            const statement = prepared(sql)
            if (!statement.reader) {
              statement.run(...params)
              return []
            }
            statement.raw(true)
            try {
              return statement.all(...params) as ReadonlyArray<ReadonlyArray<unknown>>
            } finally {
              statement.raw(false)
            }
          },
          catch: failed("Failed to execute statement")
        }),
      executeUnprepared: (sql, params, transformRows) => {
        const effect = Effect.try({
          try: () => {
            const statement = db.prepare(sql)
            if (statement.reader) return statement.all(...params) as ReadonlyArray<object>
            statement.run(...params)
            return []
          },
          catch: (cause) => {
            if (sql !== "COMMIT") return new SqlError({ cause, message: "Failed to execute statement" })
            // SQLite may keep the transaction open after a failed COMMIT (a full disk): end it here
            if (db.inTransaction) db.exec("ROLLBACK")
            const e = new SqlError({ cause, message: "Failed to commit the transaction" })
            failedCommits.add(e)
            return e
          }
        })
        return transformRows ? Effect.map(effect, transformRows) : effect
      },
      executeStream: () => Stream.dieMessage("executeStream not implemented")
    }

    const semaphore = yield* Effect.makeSemaphore(1)
    const acquirer = semaphore.withPermits(1)(Effect.succeed(connection))
    const transactionAcquirer = Effect.uninterruptibleMask((restore) =>
      Effect.as(
        Effect.zipRight(
          restore(semaphore.take(1)),
          Effect.tap(Effect.scope, (scope) => Scope.addFinalizer(scope, semaphore.release(1)))
        ),
        connection
      )
    )
    const made = yield* SqlClient.make({
      acquirer,
      compiler: Statement.makeCompilerSqlite(),
      transactionAcquirer,
      spanAttributes: [["db.system.name", "sqlite"]]
    })
    // @effect/sql turns a failed COMMIT into a defect: a full disk then answered "internal error"
    // (-3) and skipped every clean-up keyed to failure. It is the storage failure it is (-6).
    const withTransaction = made.withTransaction
    const client: SqlClient.SqlClient = Object.assign(made, {
      withTransaction: <R, E, A>(effect: Effect.Effect<A, E, R>) =>
        withTransaction(effect).pipe(
          Effect.catchSomeDefect((defect) => (defect instanceof SqlError && failedCommits.has(defect) ? Option.some(Effect.fail(defect)) : Option.none()))
        )
    })

    const direct = <A>(work: SyncWork<A>) => Effect.try({ try: () => work(db, prepared), catch: failed("Failed to execute statement") })
    const exclusive = <A>(work: SyncWork<A>) =>
      Effect.flatMap(Effect.serviceOption(SqlClient.TransactionConnection), (inTransaction) =>
        // inside our own transaction the permit is already ours
        Option.isSome(inTransaction) ? direct(work) : semaphore.withPermits(1)(direct(work))
      )
    const sqlite: SqliteShape = { exclusive, withPermit: semaphore.withPermits(1), prepared, db }
    return Context.make(SqlClient.SqlClient, client).pipe(Context.add(Sqlite, sqlite))
  })

export const layer = (filename: string) => Layer.scopedContext(make(filename)).pipe(Layer.provide(Reactivity.layer))
