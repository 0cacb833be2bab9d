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
 * The disk's flush is taken off the event loop. At `synchronous=FULL` SQLite would fsync the
 * WAL inside COMMIT, holding the only thread for the disk's whole flush (2–3 ms per commit on
 * this machine's disk, ~10 % of the thread under load). So a batch commits at NORMAL (the WAL
 * written, not flushed) and the WAL is then fdatasync-ed on libuv's pool while the next batches
 * are gathered and committed; each writer resumes once a flush that began after its commit is
 * done. Acknowledged still means on disk: what a writer is told is what `FULL` promised. A flush
 * that fails fails its writers (a push answers -6, "send it again"; its retry is a duplicate
 * and acknowledged once stored). Writers that do not need the flush (`{ durable: false }`:
 * the delivery worker's claims and outcomes, which are redone if lost) resume at the commit.
 *
 * Another process holding the database's lock fails the batch's BEGIN at once (SQLite does
 * not wait: see Sqlite.ts). Nothing of it happened, so the batch is tried again after a
 * sleep (Sqlite's backoff), with the writers that arrived meanwhile; a writer that met the
 * lock for `db.busyTimeoutMs` fails with it (a push answers -6, "send it again").
 */
import type { SqlError } from "@effect/sql/SqlError"
import { SqlError as SqlErrorClass } from "@effect/sql/SqlError"
import * as fs from "node:fs"
import * as path from "node:path"
import { Duration, Effect, Exit, Option, Queue, Runtime, Schedule } from "effect"
import { BUSY_WRITERS, makeBursts } from "./Bursts.js"
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
  /** settles the writer: called once, with its outcome */
  readonly done: (exit: Exit.Exit<unknown, SqlError>) => void
  /** whether the writer resumes only once its commit is flushed to disk */
  readonly durable: boolean
  /** when this write first met another process's lock */
  busySince?: number
}

/** The outcome of a write that met another process's lock: not run, to be tried again. */
const BUSY = Symbol("busy")
/** The outcome of a write committed and waiting for its flush: settled by the flush. */
const DEFERRED = Symbol("deferred")
type Outcome = Exit.Exit<unknown, SqlError> | typeof BUSY | typeof DEFERRED

const failure = (cause: unknown) => Exit.fail(new SqlErrorClass({ cause, message: "Failed to execute statement" }))

/** `PRAGMA synchronous`'s answer for FULL */
const FULL = 2

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

    const runtime = yield* Effect.runtime<never>()

    /**
     * The WAL's file, flushed here instead of inside COMMIT; undefined until it exists (or for a
     * database without one). Its path is the one SQLite uses: next to the database's real file
     * (SQLite follows a symbolic link; a stale `-wal` beside the link is not it). Its directory is
     * flushed once, as SQLite does at its first sync of the file: from here on the syncs are ours.
     */
    let wal: number | undefined
    const walFile = () => {
      if (wal === undefined && !db.memory && db.pragma("journal_mode", { simple: true }) === "wal") {
        const main = (db.pragma("database_list") as Array<{ name: string; file: string }>).find((d) => d.name === "main")?.file
        if (!main) return undefined
        try {
          const fd = fs.openSync(`${main}-wal`, "r+")
          const dir = fs.openSync(path.dirname(main), "r")
          try {
            fs.fsyncSync(dir)
          } finally {
            fs.closeSync(dir)
          }
          wal = fd
        } catch {
          // not there yet (nothing written): this batch is flushed by SQLite itself
        }
      }
      return wal
    }

    /**
     * A flush that failed. Its batch is committed and visible, and later batches follow it in the
     * WAL: after a power loss SQLite's recovery would stop at its lost frames and drop every later
     * write too — and Linux marks the failed pages clean, so the next flush would "succeed". So
     * nothing more is acknowledged as durable: writers fail (-6 for a push), /readyz says why, and
     * the bridge must be restarted (as PostgreSQL does on a failed fsync).
     */
    let flushFailed: unknown = undefined

    /** Committed writes waiting for the flush that makes them durable. */
    let unflushed: Array<{ readonly p: Pending; readonly value: unknown }> = []
    let flushing = false
    /** who waits for the flush in flight to end: the next batch, the finalizer */
    let flushed: Array<() => void> = []

    const flush = (fd: number) => {
      if (flushing || unflushed.length === 0) return
      flushing = true
      const these = unflushed
      unflushed = []
      fs.fdatasync(fd, (cause) => {
        flushing = false
        if (cause && flushFailed === undefined) {
          flushFailed = cause
          Runtime.runFork(runtime)(Effect.logFatal("the database's write-ahead log could not be flushed to disk: nothing more is acknowledged; restart the bridge once the disk is sound", cause))
        }
        for (const { p, value } of these) p.done(flushFailed !== undefined ? notFlushed() : Exit.succeed(value))
        flush(fd)
        if (!flushing) {
          const waiting = flushed
          flushed = []
          for (const resume of waiting) resume()
        }
      })
    }
    /** Until no flush is in flight (at once when none is). */
    const notFlushing = Effect.async<void>((resume) => {
      if (!flushing) return resume(Effect.void)
      flushed.push(() => resume(Effect.void))
    })
    // nothing acknowledged is left behind at shutdown: the last flush finishes before the database closes
    yield* Effect.addFinalizer(() =>
      Effect.andThen(notFlushing, () => Effect.sync(() => wal !== undefined && fs.closeSync(wal)))
    )

    /**
     * Whether writers that wait for the disk (pushes, above all) are arriving in numbers: the
     * delivery worker holds the targets' deliveries meanwhile, so a burst of pushes is
     * acknowledged first and delivered right after (a delivery sent into a burst costs the one
     * thread more than the push, and more than once the burst is over).
     */
    // times from the monotonic clock: a step of the wall clock must not hold deliveries, nor make the held total go back
    const bursts = makeBursts()
    /** opened when a burst begins to be held, for `burstOver` */
    const burstBegan = yield* Effect.makeLatch(false)
    const noteLoad = (batch: ReadonlyArray<Pending>) => {
      let durable = 0
      for (const p of batch) if (p.durable) durable++
      if (durable >= BUSY_WRITERS && bursts.busyBatch(performance.now())) burstBegan.unsafeOpen()
    }

    const notFlushed = () => Exit.fail(new SqlErrorClass({ cause: flushFailed, message: "the database's write-ahead log could not be flushed to disk; the bridge must be restarted" }))

    /** Runs the batch in order (see `attempt`); its outcomes in the same order. */
    const runBatch = (batch: ReadonlyArray<Pending>): ReadonlyArray<Outcome> => {
      if (flushFailed !== undefined) return batch.map(notFlushed)
      noteLoad(batch)
      // at FULL the flush is ours, off this thread: the commit itself only writes the WAL
      const ours = (prepared("PRAGMA synchronous").get() as { synchronous: number }).synchronous === FULL ? walFile() : undefined
      try {
        if (ours !== undefined) prepared("PRAGMA synchronous = NORMAL").run()
        prepared("BEGIN IMMEDIATE").run()
        const values = batch.map((p) => p.work(db, prepared))
        prepared("COMMIT").run()
        if (ours === undefined) return values.map((v) => Exit.succeed(v))
        const outcomes: Array<Outcome> = []
        for (const [i, p] of batch.entries()) {
          if (p.durable) unflushed.push({ p, value: values[i] })
          outcomes.push(p.durable ? DEFERRED : Exit.succeed(values[i]))
        }
        flush(ours)
        return outcomes
      } catch (cause) {
        if (db.inTransaction) prepared("ROLLBACK").run()
        if (ours !== undefined) prepared("PRAGMA synchronous = FULL").run()
        if (isBusy(cause)) return batch.map(() => busy(cause))
        // one by one, each flushed by SQLite at FULL: the slow path of a batch that failed
        return batch.map((p) => {
          try {
            return Exit.succeed(db.transaction(() => p.work(db, prepared)).immediate())
          } catch (cause) {
            return isBusy(cause) ? busy(cause) : failure(cause)
          }
        })
      } finally {
        // every other writer of the connection (@effect/sql's) still commits at FULL
        if (ours !== undefined) prepared("PRAGMA synchronous = FULL").run()
      }
    }

    /** Since when writes wait for another process's lock (null: they do not), for /readyz. */
    let busySince: number | null = null

    /** Commits what it can of `batch`; settles each writer done or out of time; answers those to try again. */
    const attempt = (arrived: ReadonlyArray<Pending>) => {
      // writers that resume at the commit run first: they must not read (and act on, as a claim
      // sends what it read) a durable writer's write of this batch before it is flushed
      const batch = [...arrived.filter((p) => !p.durable), ...arrived.filter((p) => p.durable)]
      return Effect.map(
        sqlite.withPermit(Effect.sync(() => runBatch(batch))),
        (outcomes) => {
          const now = Date.now()
          const waiting: Array<Pending> = []
          for (const [i, outcome] of outcomes.entries()) {
            const p = batch[i]!
            if (outcome === DEFERRED) continue
            if (outcome !== BUSY) p.done(outcome)
            else if (now - (p.busySince ??= now) < sqlite.busyTimeoutMs) waiting.push(p)
            else p.done(Exit.fail(new SqlErrorClass({ cause: lastBusy, message: `waited ${sqlite.busyTimeoutMs} ms for the database lock` })))
          }
          // locked while writers wait for the lock right now: not until some write gets through,
          // which with every writer out of time (and no new one) would be never
          busySince = waiting.length > 0 ? (busySince ?? now) : null
          return waiting
        }
      )
    }

    const commitBatch = Effect.gen(function* () {
      const first = yield* queue.take
      // the flush in flight (~1–3 ms) is waited for before committing again: writers arriving
      // meanwhile join one batch instead of many small ones, each rewriting the same index pages
      yield* notFlushing
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

    /**
     * Runs `work` in a transaction shared with concurrent writers; resumes once the commit is on
     * disk, or (`durable: false`) once it is committed.
     */
    const submit = <A>(work: SyncWork<A>, options?: { readonly durable: boolean }): Effect.Effect<A, SqlError> =>
      // the write is handed over as the fiber suspends: its outcome is awaited even if this
      // request is interrupted meanwhile (a push is answered as it was stored, or not at all)
      Effect.uninterruptible(
        Effect.async<A, SqlError>((resume) => {
          queue.unsafeOffer({ work, done: resume as (exit: Exit.Exit<unknown, SqlError>) => void, durable: options?.durable ?? true })
        })
      )

    return {
      submit,
      /**
       * Until the batch being gathered (with none, the next) is committed: a writer with no work,
       * which fails only as its batch does (ignored here). The delivery worker paces itself by it.
       */
      nextCommit: Effect.ignore(submit(() => undefined, { durable: false })),
      busySince: () => busySince,
      busy: () => bursts.holding(performance.now()),
      /**
       * Waits for the next burst to begin and then to be over; answers how long its last stretch
       * was held (ms) and whether it was cut at its longest (steady load). Nothing else marks the
       * end of a burst — no batch is written then — so the delivery worker, which sends nothing
       * of a target's while pushes arrive in a burst, is woken by it. One waiter only (the
       * worker): it takes the latch.
       */
      burstOver: Effect.gen(function* () {
        yield* burstBegan
        burstBegan.unsafeClose()
        for (let left = bursts.endsAt() - performance.now(); left > 0; left = bursts.endsAt() - performance.now()) yield* Effect.sleep(Duration.millis(left))
        const { from, cut } = bursts.stretch()
        return { heldMs: Math.max(0, bursts.endsAt() - from), cut }
      }),
      /** how long bursts have held deliveries since start, in all (ms): exact, from the batches' own times */
      heldForBurstsMs: () => bursts.heldMs(performance.now()),
      /** why nothing more is acknowledged (a flush of the WAL failed), for /readyz; undefined while all is well */
      flushFailed: () => (flushFailed === undefined ? undefined : flushFailed instanceof Error ? flushFailed.message : String(flushFailed))
    } as const
  })
}) {}
