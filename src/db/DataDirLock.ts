/**
 * One serving bridge per data directory. A second one would reset the first one's deliveries
 * in flight at its start and send them again beside it; it is refused instead. The lock is the
 * operating system's (SQLite's exclusive lock on `bridge.lock`): it goes with the process that
 * holds it, kill -9 included, and does not depend on process ids, which containers reuse.
 * `bridge.pid` only says who holds it.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import Database from "better-sqlite3"
import { Effect, Layer, Schedule, Schema } from "effect"
import { AppConfig } from "../config/AppConfig.js"

export class DataDirBusy extends Schema.TaggedError<DataDirBusy>()("DataDirBusy", { message: Schema.String, contended: Schema.optional(Schema.Boolean) }) {}

const holderOf = (pidFile: string) => {
  try {
    return fs.readFileSync(pidFile, "utf8").trim() || "unknown"
  } catch {
    return "unknown"
  }
}

const acquire = (dataDir: string) =>
  Effect.try({
    try: () => {
      fs.mkdirSync(dataDir, { recursive: true })
      const pidFile = path.join(dataDir, "bridge.pid")
      const db = new Database(path.join(dataDir, "bridge.lock"), { timeout: 0 })
      try {
        db.pragma("locking_mode = EXCLUSIVE")
        // the first write takes the exclusive lock; in this mode it is kept until the connection closes
        db.exec("CREATE TABLE IF NOT EXISTS holder (pid INTEGER)")
        db.exec("BEGIN EXCLUSIVE")
        db.prepare("DELETE FROM holder").run()
        db.prepare("INSERT INTO holder (pid) VALUES (?)").run(process.pid)
        db.exec("COMMIT")
      } catch (e) {
        db.close()
        if ((e as { code?: string }).code === "SQLITE_BUSY")
          throw new DataDirBusy({ message: `another bridge (pid ${holderOf(pidFile)}) serves ${dataDir}; stop it first`, contended: true })
        throw e
      }
      fs.writeFileSync(pidFile, `${process.pid}\n`)
      return { db, pidFile }
    },
    catch: (e) => (e instanceof DataDirBusy ? e : new DataDirBusy({ message: `could not lock ${dataDir}: ${e instanceof Error ? e.message : String(e)}` }))
  })

// Two bridges starting at once can each hold the shared lock of reading the schema and so both
// be refused (SQLite does not wait in that case): a few tries, apart by a jittered pause, let
// one of them win; a bridge that really holds the directory is still there after them.
const acquireWithRetries = (dataDir: string) =>
  Effect.retry(acquire(dataDir), {
    schedule: Schedule.jittered(Schedule.spaced("50 millis")),
    times: 8,
    while: (e) => e.contended === true
  })

export const dataDirLockLayer = Layer.scopedDiscard(
  Effect.gen(function* () {
    const { dataDir } = yield* AppConfig
    yield* Effect.acquireRelease(acquireWithRetries(dataDir), ({ db, pidFile }) =>
      Effect.sync(() => {
        fs.rmSync(pidFile, { force: true })
        db.close()
      })
    )
  })
)
