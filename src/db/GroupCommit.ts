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
 */
import type { SqlError } from "@effect/sql/SqlError"
import { SqlError as SqlErrorClass } from "@effect/sql/SqlError"
import { Deferred, Effect, Exit, FiberId, Option, Queue } from "effect"
import { Sqlite, type SyncWork } from "./Sqlite.js"

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
}

const failure = (cause: unknown) => Exit.fail(new SqlErrorClass({ cause, message: "Failed to execute statement" }))

export class GroupCommit extends Effect.Service<GroupCommit>()("GroupCommit", {
  scoped: Effect.gen(function* () {
    const sqlite = yield* Sqlite
    const { db, prepared } = sqlite
    const queue = yield* Queue.unbounded<Pending>()

    const runBatch = (batch: ReadonlyArray<Pending>): ReadonlyArray<Exit.Exit<unknown, SqlError>> => {
      try {
        prepared("BEGIN IMMEDIATE").run()
        const values = batch.map((p) => p.work(db, prepared))
        prepared("COMMIT").run()
        return values.map((v) => Exit.succeed(v))
      } catch {
        if (db.inTransaction) prepared("ROLLBACK").run()
        return batch.map((p) => {
          try {
            return Exit.succeed(db.transaction(() => p.work(db, prepared)).immediate())
          } catch (cause) {
            return failure(cause)
          }
        })
      }
    }

    const commitBatch = Effect.gen(function* () {
      const first = yield* queue.take
      // a short window lets the writers already being parsed join this commit instead of paying
      // for their own: event-loop turns while more keep arriving, at most WINDOW_MS
      const until = performance.now() + WINDOW_MS
      let size = -1
      while (size !== (size = queue.unsafeSize().pipe(Option.getOrElse(() => 0))) && size < MAX_BATCH && performance.now() < until)
        yield* nextTurn
      const rest = yield* queue.takeUpTo(MAX_BATCH - 1)
      const batch = [first, ...rest]
      const outcomes = yield* sqlite.withPermit(Effect.sync(() => runBatch(batch)))
      for (const [i, exit] of outcomes.entries()) Deferred.unsafeDone(batch[i]!.done, exit)
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

    return { submit } as const
  })
}) {}
