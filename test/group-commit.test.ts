/**
 * The group commit on a real SQLite file: at synchronous=FULL a batch commits without SQLite's
 * own flush and the WAL is flushed off the event loop before any durable writer resumes; the
 * connection's other writers still commit at FULL; a failing writer fails alone; shutdown
 * waits for the last flush.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import Database from "better-sqlite3"
import { Context, Effect, Exit, Fiber, Layer, Scope } from "effect"
import { GroupCommit } from "../src/db/GroupCommit.js"
import * as Sqlite from "../src/db/Sqlite.js"

const fileIn = () => path.join(fs.mkdtempSync(path.join(os.tmpdir(), "vb-gc-")), "t.db")

const setUp = (file: string, synchronous: "FULL" | "NORMAL") =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const context = yield* Layer.buildWithScope(GroupCommit.Default.pipe(Layer.provideMerge(Sqlite.layer(file, 1000))), scope)
    const { db } = Context.get(context, Sqlite.Sqlite)
    db.pragma(`synchronous = ${synchronous}`)
    db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL UNIQUE)")
    return { scope, db, commit: Context.get(context, GroupCommit) }
  })

const insert = (v: string) => (_: unknown, prepared: Sqlite.Prepared) => Number(prepared("INSERT INTO t (v) VALUES (?)").run(v).lastInsertRowid)

/** How often this process holds `file` open (its descriptors in /proc/self/fd). */
const opened = (file: string) =>
  fs.readdirSync("/proc/self/fd").filter((fd) => {
    try {
      return fs.readlinkSync(`/proc/self/fd/${fd}`) === file
    } catch {
      return false
    }
  }).length

/** How often this process holds the database's `-wal` file open: SQLite once, the group commit once more to flush it. */
const walOpened = (file: string) => opened(`${file}-wal`)

describe("group commit", () => {
  it.effect("commits concurrent writers in one go, each resumed with its own value, the connection left at FULL", () =>
    Effect.gen(function* () {
      const file = fileIn()
      const { scope, db, commit } = yield* setUp(file, "FULL")
      const ids = yield* Effect.forEach(Array.from({ length: 200 }, (_, i) => `v${i}`), (v) => commit.submit(insert(v)), { concurrency: "unbounded" })
      expect(new Set(ids).size).toBe(200)
      expect(db.prepare("SELECT count(*) AS n FROM t").get()).toEqual({ n: 200 })
      // the flush is ours: the WAL is held open for it, and the level everyone else commits at is FULL again
      expect(walOpened(file)).toBe(2)
      expect(db.pragma("synchronous", { simple: true })).toBe(2)
      yield* Scope.close(scope, Exit.void)
      expect(walOpened(file)).toBe(0)
    })
  )

  it.effect("fails only the writer that threw; the others of its batch are committed", () =>
    Effect.gen(function* () {
      const { scope, db, commit } = yield* setUp(fileIn(), "FULL")
      yield* commit.submit(insert("taken"))
      const results = yield* Effect.forEach(["a", "taken", "b"], (v) => Effect.exit(commit.submit(insert(v))), { concurrency: "unbounded" })
      expect(results.map(Exit.isSuccess)).toEqual([true, false, true])
      expect(db.prepare("SELECT v FROM t ORDER BY v").all()).toEqual([{ v: "a" }, { v: "b" }, { v: "taken" }])
      expect(db.pragma("synchronous", { simple: true })).toBe(2)
      yield* Scope.close(scope, Exit.void)
    })
  )

  it.effect("a writer that needs no flush resumes at the commit; at NORMAL SQLite is left alone", () =>
    Effect.gen(function* () {
      const full = yield* setUp(fileIn(), "FULL")
      expect(yield* full.commit.submit(insert("x"), { durable: false })).toBe(1)
      yield* Scope.close(full.scope, Exit.void)
      const file = fileIn()
      const normal = yield* setUp(file, "NORMAL")
      expect(yield* normal.commit.submit(insert("y"))).toBe(1)
      expect(walOpened(file)).toBe(1)
      expect(normal.db.pragma("synchronous", { simple: true })).toBe(1)
      yield* Scope.close(normal.scope, Exit.void)
    })
  )

  it.effect("nextCommit resumes once the batch gathering with it is committed, and alone when nothing else is written", () =>
    Effect.gen(function* () {
      const { scope, db, commit } = yield* setUp(fileIn(), "FULL")
      yield* commit.nextCommit
      // with writers: it resumes when their batch is committed (their rows are there), not before
      const writers = yield* Effect.fork(Effect.forEach(["a", "b", "c"], (v) => commit.submit(insert(v)), { concurrency: "unbounded" }))
      // the writers run (and hand their writes over) before this fiber goes on
      yield* Effect.yieldNow()
      yield* commit.nextCommit
      expect((db.prepare("SELECT count(*) AS n FROM t").get() as { n: number }).n).toBe(3)
      expect(yield* Fiber.join(writers)).toEqual([1, 2, 3])
      yield* Scope.close(scope, Exit.void)
    })
  )

  it.live("burstOver waits for a burst of durable writers to begin, and resumes once it is over", () =>
    Effect.gen(function* () {
      const { scope, commit } = yield* setUp(fileIn(), "FULL")
      const over = yield* Effect.fork(commit.burstOver)
      // a writer or two at a time is no burst: still waiting well past the time a burst is believed
      yield* commit.submit(insert("one"))
      yield* Effect.forEach(["two", "three"], (v) => commit.submit(insert(v)), { concurrency: "unbounded" })
      yield* Effect.sleep("400 millis")
      expect(over.unsafePoll()).toBeNull()
      // forty in one batch are: it resumes once the burst is over (not busy)
      const before = Date.now()
      yield* Effect.forEach(Array.from({ length: 40 }, (_, i) => `b${i}`), (v) => commit.submit(insert(v)), { concurrency: "unbounded" })
      const { heldMs, cut } = yield* Fiber.join(over).pipe(Effect.timeoutFail({ duration: "3 seconds", onTimeout: () => new Error("burstOver did not resume") }))
      expect(commit.busy()).toBe(false)
      // held about as long as a burst is believed after its last busy batch (200 ms, less the
      // moment between the batch and this fiber's resuming)
      expect(heldMs).toBeGreaterThan(100)
      // ... and no longer than the burst could have been held (not a time of day, not an older burst's start)
      expect(heldMs).toBeLessThanOrEqual(Date.now() - before)
      expect(cut).toBe(false)
      // the total held so far is that burst's
      expect(commit.heldForBurstsMs()).toBe(heldMs)
      // the next burst is waited for afresh
      const next = yield* Effect.fork(commit.burstOver)
      yield* Effect.sleep("400 millis")
      expect(next.unsafePoll()).toBeNull()
      yield* Scope.close(scope, Exit.void)
    })
  )

  it.effect("shutdown waits for the flush in flight: every durable writer of the last batch is answered and in the file", () =>
    Effect.gen(function* () {
      const file = fileIn()
      const { scope, commit } = yield* setUp(file, "FULL")
      yield* commit.submit(insert("first"))
      // one batch: a writer that resumes at the commit, and fifty that wait for the flush
      const durable = yield* Effect.fork(Effect.forEach(Array.from({ length: 50 }, (_, i) => `w${i}`), (v) => commit.submit(insert(v)), { concurrency: "unbounded" }))
      yield* commit.submit(insert("marker"), { durable: false })
      // committed, and (most likely) being flushed right now: closing must wait for that flush
      yield* Scope.close(scope, Exit.void)
      const ids = yield* Fiber.join(durable)
      expect(ids).toHaveLength(50)
      const reopened = new Database(file)
      expect(reopened.prepare("SELECT count(*) AS n FROM t").get()).toEqual({ n: 52 })
      reopened.close()
    })
  )
  it.effect("flushes the WAL SQLite writes when the database's path is a symbolic link", () =>
    Effect.gen(function* () {
      const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "vb-gc-rev-")))
      fs.mkdirSync(path.join(dir, "real"))
      fs.mkdirSync(path.join(dir, "link"))
      const real = path.join(dir, "real", "t.db")
      new Database(real).close()
      const link = path.join(dir, "link", "t.db")
      fs.symlinkSync(real, link)
      // left over from before the database was moved behind the link
      fs.writeFileSync(`${link}-wal`, "")

      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(GroupCommit.Default.pipe(Layer.provideMerge(Sqlite.layer(link, 1000))), scope)
      const { db } = Context.get(context, Sqlite.Sqlite)
      db.pragma("synchronous = FULL")
      db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
      const commit = Context.get(context, GroupCommit)
      yield* commit.submit((_, prepared) => prepared("INSERT INTO t (v) VALUES (?)").run("x"))

      // SQLite writes the WAL beside the link's target
      expect(fs.existsSync(`${real}-wal`)).toBe(true)
      // the group commit must not flush (and so must not hold open) the stale file beside the link
      expect(opened(`${link}-wal`)).toBe(0)
      // it flushes the real WAL itself (SQLite's fd + its own)
      expect(opened(`${real}-wal`)).toBe(2)
      yield* Scope.close(scope, Exit.void)
    })
  )

  // A claim (`durable: false`) that joins the batch of the push it claims reads the push's
  // delivery before that push is flushed, and resumes at once: the webhook goes out while the
  // push is neither durable nor acknowledged (a power loss then forgets an event a target has,
  // and the platform's re-push sends it again under a new webhook-id).
  it.effect("a writer that resumes at the commit never resumes with a durable writer's unflushed write", () =>
    Effect.gen(function* () {
      const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "vb-gc-rev-")), "t.db")
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(GroupCommit.Default.pipe(Layer.provideMerge(Sqlite.layer(file, 1000))), scope)
      const { db } = Context.get(context, Sqlite.Sqlite)
      db.pragma("synchronous = FULL")
      db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
      const commit = Context.get(context, GroupCommit)
      yield* commit.submit((_, prepared) => prepared("INSERT INTO t (v) VALUES (?)").run("first"))

      const push = yield* Effect.fork(commit.submit((_, prepared) => prepared("INSERT INTO t (v) VALUES (?)").run("pushed")))
      yield* Effect.yieldNow()
      const claimed = yield* commit.submit((_, prepared) => prepared("SELECT v FROM t WHERE v = 'pushed'").get() !== undefined, { durable: false })
      // today the claim sees the push (same batch, after it) while the push still waits for its
      // flush; a fix may either keep the claim from seeing it or resume the claim after that flush
      const pushAcknowledged = push.unsafePoll() !== null
      expect({ claimed, pushAcknowledged }).not.toEqual({ claimed: true, pushAcknowledged: false })
      yield* Fiber.join(push)
      yield* Scope.close(scope, Exit.void)
    })
  )
})
