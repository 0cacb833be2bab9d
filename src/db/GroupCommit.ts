/**
 * Group commit. With synchronous=FULL every commit waits for the disk; committing each push
 * on its own would cap ingest at the disk's flush rate (and a commit's CPU cost is paid per
 * transaction, not per row). Writers hand their (synchronous) unit of work here instead:
 * while one batch is being committed, the next ones queue up, and each batch runs in ONE
 * transaction. Each caller resumes once the batch holding its write is on disk.
 *
 * A batch is optimistic: no savepoint per writer (they cost more than the writes). If any
 * writer throws, the batch is rolled back and every writer of it runs again in its own
 * transaction, so one bad write fails only itself. Writers must therefore be re-runnable:
 * database writes, and nothing else that would matter if done twice (waking the delivery
 * worker is harmless; metrics and answers belong after `submit`).
 *
 * Another process holding the database's lock fails the batch's BEGIN at once (SQLite does
 * not wait: see Sqlite.ts). Nothing of it happened, so the batch is tried again after a
 * sleep (Sqlite's backoff), with the writers that arrived meanwhile; a writer that met the
 * lock for `db.busyTimeoutMs` fails with it (a push answers -6, "send it again").
 */
import type { SqlError } from "@effect/sql/SqlError"
import { SqlError as SqlErrorClass } from "@effect/sql/SqlError"
import { Deferred, Duration, Effect, Exit, FiberId, Option, Queue, Schedule } from "effect"
import { busyBackoff, isBusy, Sqlite, type SyncWork } from "./Sqlite.js"

const MAX_BATCH = 256
const WINDOW_MS = 1

/** One turn of the event loop: the I/O already arrived is read before we go on. */
const nextTurn = Effect.async<void>((resume) => {
  const handle = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(handle))
})

interface Pending {
  readonly work: SyncWork<unknown>
  readonly done: Deferred.Deferred<unknown, SqlError>
  /** when this write first met another process's lock */
  busySince?: number
}

/** The outcome of a write that met another process's lock: not run, to be tried again. */
const BUSY = Symbol("busy")
type Outcome = Exit.Exit<unknown, SqlError> | typeof BUSY

const failure = (cause: unknown) => Exit.fail(new SqlErrorClass({ cause, message: "Failed to execute statement" }))

export class GroupCommit extends Effect.Service<GroupCommit>()("GroupCommit", {
  scoped: Effect.gen(function* () {
    const sqlite = yield* Sqlite
    const { db, prepared } = sqlite
    const queue = yield* Queue.unbounded<Pending>()

    /** SQLite's last "database is locked", the cause a writer out of time fails with */
    let lastBusy: unknown = undefined
    const busy = (cause: unknown): typeof BUSY => {
      lastBusy = cause
      return BUSY
    }

    const runBatch = (batch: ReadonlyArray<Pending>): ReadonlyArray<Outcome> => {
      try {
        prepared("BEGIN IMMEDIATE").run()
        const values = batch.map((p) => p.work(db, prepared))
        prepared("COMMIT").run()
        return values.map((v) => Exit.succeed(v))
      } catch (cause) {
        if (db.inTransaction) prepared("ROLLBACK").run()
        if (isBusy(cause)) return batch.map(() => busy(cause))
        return batch.map((p) => {
          try {
            return Exit.succeed(db.transaction(() => p.work(db, prepared)).immediate())
          } catch (cause) {
            return isBusy(cause) ? busy(cause) : failure(cause)
          }
        })
      }
    }

    /** Since when writes wait for another process's lock (null: they do not), for /readyz. */
    let busySince: number | null = null

    /** Commits what it can of `batch`; settles each writer done or out of time; answers those to try again. */
    const attempt = (batch: ReadonlyArray<Pending>) =>
      Effect.map(
        sqlite.withPermit(Effect.sync(() => runBatch(batch))),
        (outcomes) => {
          const now = Date.now()
          const waiting: Array<Pending> = []
          for (const [i, outcome] of outcomes.entries()) {
            const p = batch[i]!
            if (outcome !== BUSY) Deferred.unsafeDone(p.done, outcome)
            else if (now - (p.busySince ??= now) < sqlite.busyTimeoutMs) waiting.push(p)
            else Deferred.unsafeDone(p.done, Exit.fail(new SqlErrorClass({ cause: lastBusy, message: `waited ${sqlite.busyTimeoutMs} ms for the database lock` })))
          }
          // locked while writers wait for the lock right now: not until some write gets through,
          // which with every writer out of time (and no new one) would be never
          busySince = waiting.length > 0 ? (busySince ?? now) : null
          return waiting
        }
      )

    const commitBatch = Effect.gen(function* () {
      const first = yield* queue.take
      // a short window lets the writers already being parsed join this commit instead of paying
      // for their own: event-loop turns while more keep arriving, at most WINDOW_MS
      const until = performance.now() + WINDOW_MS
      let size = -1
      while (size !== (size = queue.unsafeSize().pipe(Option.getOrElse(() => 0))) && size < MAX_BATCH && performance.now() < until)
        yield* nextTurn
      const rest = yield* queue.takeUpTo(MAX_BATCH - 1)
      let waiting = yield* attempt([first, ...rest])
      if (waiting.length === 0) return
      yield* Effect.logWarning("the database is locked by another process: writes wait for it").pipe(Effect.annotateLogs({ writers: waiting.length }))
      const backoff = yield* Schedule.driver(busyBackoff)
      while (waiting.length > 0) {
        // the schedule never ends; were it to, its longest wait
        yield* backoff.next(undefined).pipe(Effect.catchAll(() => Effect.sleep(Duration.millis(100))))
        // writers that arrived meanwhile wait with these rather than behind them
        const more = yield* queue.takeUpTo(Math.max(0, MAX_BATCH - waiting.length))
        waiting = yield* attempt([...waiting, ...more])
      }
    })
    yield* Effect.forkScoped(Effect.forever(commitBatch))

    /** Runs `work` in a transaction shared with concurrent writers; resumes after the commit. */
    const submit = <A>(work: SyncWork<A>): Effect.Effect<A, SqlError> =>
      Effect.suspend(() => {
        const done = Deferred.unsafeMake<unknown, SqlError>(FiberId.none)
        queue.unsafeOffer({ work, done })
        // the write was handed over: its outcome is awaited even if this request is interrupted
        return Effect.uninterruptible(Deferred.await(done)) as Effect.Effect<A, SqlError>
      })

    return { submit, busySince: () => busySince } as const
  })
}) {}
