/**
 * Group commit. With synchronous=FULL every commit waits for the disk; committing each push
 * on its own would cap ingest at the disk's flush rate. Writers hand their transaction body
 * here instead: while one batch is being committed, the next ones queue up, and each batch
 * runs in ONE transaction with every writer inside its own savepoint — a writer that fails
 * rolls back only itself. Each caller resumes once the batch holding its write is on disk.
 */
import { SqlClient } from "@effect/sql"
import { Deferred, Duration, Effect, Exit, Queue } from "effect"

const MAX_BATCH = 256
const WINDOW = Duration.millis(1)

interface Pending {
  readonly write: Effect.Effect<unknown, unknown>
  readonly done: Deferred.Deferred<unknown, unknown>
}

export class GroupCommit extends Effect.Service<GroupCommit>()("GroupCommit", {
  scoped: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const queue = yield* Queue.unbounded<Pending>()

    const commitBatch = Effect.gen(function* () {
      const first = yield* queue.take
      // a short window lets the writers already being parsed join this commit instead of paying for their own
      yield* Effect.sleep(WINDOW)
      const rest = yield* queue.takeUpTo(MAX_BATCH - 1)
      const batch = [first, ...rest]
      const outcome = yield* sql
        .withTransaction(Effect.forEach(batch, (p) => Effect.exit(sql.withTransaction(p.write))))
        .pipe(Effect.exit)
      if (Exit.isFailure(outcome)) {
        // the commit itself failed: nothing of the batch is durable
        for (const p of batch) yield* Deferred.failCause(p.done, outcome.cause)
        return
      }
      for (const [i, exit] of outcome.value.entries()) yield* Deferred.complete(batch[i]!.done, exit)
    })
    yield* Effect.forkScoped(Effect.forever(commitBatch))

    /** Runs `write` in a transaction shared with concurrent writers; resumes after the commit. */
    const submit = <A, E, R>(write: Effect.Effect<A, E, R>) =>
      Effect.gen(function* () {
        const context = yield* Effect.context<R>()
        const done = yield* Deferred.make<unknown, unknown>()
        yield* queue.offer({ write: Effect.provide(write, context), done })
        // the write was handed over: its outcome is awaited even if this request is interrupted
        return (yield* Effect.uninterruptible(Deferred.await(done))) as A
      }).pipe(Effect.mapError((e) => e as E))

    return { submit } as const
  })
}) {}
