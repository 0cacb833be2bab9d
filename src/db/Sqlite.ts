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
 *
 * Another process holding the database (the CLI, a backup, sqlite3 in a shell) makes SQLite
 * answer SQLITE_BUSY. SQLite's own busy wait (`busy_timeout`) would sleep on the only thread —
 * every request frozen — so it is off: a statement that met the lock and left no transaction
 * open (nothing of it happened) is tried again after a sleep of the Effect runtime, 5 ms
 * doubling to 100 ms apart, for at most `db.busyTimeoutMs`. Transactions begin IMMEDIATE, so
 * the lock is met at BEGIN (retried there) and never half-way through one.
 */
import { SqlClient, type SqlConnection } from "@effect/sql"
import { SqlError } from "@effect/sql/SqlError"
import * as Statement from "@effect/sql/Statement"
import * as Reactivity from "@effect/experimental/Reactivity"
import Database from "better-sqlite3"
import { Context, Duration, Effect, Layer, Option, Schedule, Scope, Stream } from "effect"

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
  /** How long a write waits for a lock another process holds before it fails (`db.busyTimeoutMs`). */
  readonly busyTimeoutMs: number
}

/** Another connection holds the lock this statement needs (SQLITE_BUSY and its extended codes). */
export const isBusy = (cause: unknown): boolean =>
  cause instanceof Database.SqliteError && (cause.code === "SQLITE_BUSY" || cause.code.startsWith("SQLITE_BUSY_"))

/** The waits between tries for a lock another process holds: 5 ms doubling, at most 100 ms apart. */
export const busyBackoff: Schedule.Schedule<unknown> = Schedule.union(Schedule.exponential(Duration.millis(5)), Schedule.spaced(Duration.millis(100)))

/** How a transaction begins: the write lock up front, so SQLITE_BUSY comes at BEGIN (where it can be retried) or not at all. */
const BEGIN = "BEGIN IMMEDIATE"
/** What @effect/sql is told to run to begin: nothing, the transaction acquirer began already. */
const BEGUN = "-- begun by the transaction acquirer"

export class Sqlite extends Context.Tag("Sqlite")<Sqlite, SqliteShape>() {}

const PREPARED_CACHE = 500

const failed = (message: string) => (cause: unknown) => new SqlError({ cause, message })

const make = (filename: string, busyTimeoutMs: number) =>
  Effect.gen(function* () {
    // opening may wait for the lock as SQLite does: nothing is served yet
    const db = yield* Effect.acquireRelease(
      Effect.try({ try: () => new Database(filename, { timeout: busyTimeoutMs }), catch: failed(`cannot open the database ${filename}`) }),
      (db) => Effect.sync(() => db.close())
    )
    db.pragma("journal_mode = WAL")
    // statement journals (every insert that fires a trigger inside a batch has one) in memory,
    // not in a temporary file: ~5 µs less per pushed call record
    db.pragma("temp_store = MEMORY")
    // a REPLACE that removes a row fires its delete triggers (the call counts' among them): off,
    // an INSERT OR REPLACE of a stored call left its old counts behind
    db.pragma("recursive_triggers = ON")
    // from here on a lock is waited for by the runtime, not by SQLite on the only thread
    db.pragma("busy_timeout = 0")

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

    const semaphore = yield* Effect.makeSemaphore(1)
    const retryable = (e: SqlError) => isBusy(e.cause) && !db.inTransaction
    const busySchedule = Schedule.upTo(busyBackoff, Duration.millis(busyTimeoutMs))
    /**
     * Runs a statement, trying again while another process holds the lock. Each later try takes
     * the permit, so it cannot land in a transaction another fiber began meanwhile. Inside a
     * transaction nothing is retried: it began with the lock (see `transactionAcquirer`).
     */
    const tried = <A>(sql: string, attempt: Effect.Effect<A, SqlError>): Effect.Effect<A, SqlError> => {
      if (sql === BEGUN) return Effect.succeed([] as unknown as A)
      return Effect.catchIf(attempt, retryable, (e) =>
        Effect.flatMap(Effect.serviceOption(SqlClient.TransactionConnection), (inTransaction) =>
          // COMMIT and ROLLBACK run outside the transaction's context, still holding its permit
          Option.isSome(inTransaction) || /^\s*(COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b/i.test(sql)
            ? Effect.fail(e)
            : Effect.retry(semaphore.withPermits(1)(attempt), { schedule: busySchedule, while: retryable })
        )
      )
    }

    const run = (sql: string, params: ReadonlyArray<unknown>, raw: boolean) =>
      tried(sql, Effect.try({
        try: () => {
          const statement = prepared(sql)
          if (statement.reader) return statement.all(...params) as ReadonlyArray<object>
          const result = statement.run(...params)
          return raw ? (result as unknown as ReadonlyArray<object>) : []
        },
        catch: failed("Failed to execute statement")
      }))

    const connection: SqlConnection.Connection = {
      execute: (sql, params, transformRows) => (transformRows ? Effect.map(run(sql, params, false), transformRows) : run(sql, params, false)),
      executeRaw: (sql, params) => run(sql, params, true),
      executeValues: (sql, params) =>
        tried(sql, Effect.try({
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
        })),
      executeUnprepared: (sql, params, transformRows) => {
        const effect = tried(sql, Effect.try({
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
        }))
        return transformRows ? Effect.map(effect, transformRows) : effect
      },
      // better-sqlite3's iterator keeps the connection busy until it ends, and a stream's reader
      // may pause between chunks while other fibers use the connection: the rows are read whole
      // (as `execute` does), then streamed
      executeStream: (sql, params, transformRows) =>
        Stream.flatMap(Stream.fromEffect(run(sql, params, false)), (rows) => Stream.fromIterable(transformRows ? transformRows(rows) : rows))
    }

    const acquirer = semaphore.withPermits(1)(Effect.succeed(connection))
    // a transaction takes the permit and the write lock together; while another process holds
    // the lock the permit is given back between tries, so reads go on meanwhile
    const begun = (scope: Scope.Scope) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.zipRight(
          restore(semaphore.take(1)),
          Effect.try({ try: () => void prepared(BEGIN).run(), catch: failed("Failed to begin a transaction") }).pipe(
            Effect.tapError(() => semaphore.release(1)),
            Effect.zipRight(Scope.addFinalizer(scope, semaphore.release(1)))
          )
        )
      )
    const transactionAcquirer = Effect.flatMap(Effect.scope, (scope) =>
      Effect.as(Effect.retry(begun(scope), { schedule: busySchedule, while: retryable }), connection)
    )
    const made = yield* SqlClient.make({
      acquirer,
      beginTransaction: BEGUN,
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
    // on its own, work that met the lock is run again (after its own transaction rolled back):
    // work that writes more than one statement must therefore be a transaction
    const exclusive = <A>(work: SyncWork<A>) =>
      Effect.flatMap(Effect.serviceOption(SqlClient.TransactionConnection), (inTransaction) =>
        // inside our own transaction the permit is already ours; the transaction as a whole began with the lock
        Option.isSome(inTransaction)
          ? direct(work)
          : Effect.retry(semaphore.withPermits(1)(direct(work)), { schedule: busySchedule, while: retryable })
      )
    const sqlite: SqliteShape = { exclusive, withPermit: semaphore.withPermits(1), prepared, db, busyTimeoutMs }
    return Context.make(SqlClient.SqlClient, client).pipe(Context.add(Sqlite, sqlite))
  })

export const layer = (filename: string, busyTimeoutMs: number) => Layer.scopedContext(make(filename, busyTimeoutMs)).pipe(Layer.provide(Reactivity.layer))
