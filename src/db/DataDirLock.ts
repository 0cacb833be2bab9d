/**
 * One serving bridge per data directory. A second one would reset the first one's deliveries
 * in flight at its start and send them again beside it; it is refused instead, naming the
 * process that holds the directory. A lock left by a process that died (kill -9) is taken over.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Data, Effect, Layer } from "effect"
import { AppConfig } from "../config/AppConfig.js"

export class DataDirBusy extends Data.TaggedError("DataDirBusy")<{ readonly message: string }> {}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    // EPERM: it exists, it is someone else's
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}

const acquire = (file: string) =>
  Effect.try({
    try: () => {
      for (;;) {
        try {
          fs.writeFileSync(file, `${process.pid}\n`, { flag: "wx" })
          return
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e
          const holder = Number.parseInt(fs.readFileSync(file, "utf8"), 10)
          if (Number.isSafeInteger(holder) && holder !== process.pid && alive(holder))
            throw new DataDirBusy({ message: `another bridge (pid ${holder}) serves ${path.dirname(file)}; stop it first, or remove ${file} if that process is not a bridge` })
          fs.rmSync(file, { force: true })
        }
      }
    },
    catch: (e) => (e instanceof DataDirBusy ? e : new DataDirBusy({ message: `could not lock ${file}: ${e instanceof Error ? e.message : String(e)}` }))
  })

export const dataDirLockLayer = Layer.scopedDiscard(
  Effect.gen(function* () {
    const { dataDir } = yield* AppConfig
    const file = path.join(dataDir, "bridge.pid")
    yield* Effect.sync(() => fs.mkdirSync(dataDir, { recursive: true }))
    yield* Effect.acquireRelease(acquire(file), () => Effect.sync(() => fs.rmSync(file, { force: true })))
  })
)
