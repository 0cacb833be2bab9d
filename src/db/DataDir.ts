/**
 * The data directory holds password hashes, call records and audio: only the bridge's own
 * user may read it. New files are private by the process's umask; a directory made by an
 * older version (0755, files 0644) is closed at start and the log says what was changed.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect, Schema } from "effect"

export class DataDirUnusable extends Schema.TaggedError<DataDirUnusable>()("DataDirUnusable", { message: Schema.String }) {}

/** Everything the bridge creates is private to its user, whatever umask it was started with. */
export const PRIVATE_UMASK = 0o077
const DIR_MODE = 0o700
const FILE_MODE = 0o600

export const usePrivateUmask = () => {
  process.umask(PRIVATE_UMASK)
}

/**
 * Creates the directory (0700), or closes an existing one: the directory itself and the files
 * directly in it (database, its WAL and shared memory, tokens, lock). What lies deeper (recordings,
 * possibly millions) is not walked: a 0700 directory already keeps every other user out of it.
 * Returns the paths whose modes were changed.
 */
export const secureDataDir = (dataDir: string): ReadonlyArray<string> => {
  fs.mkdirSync(dataDir, { recursive: true, mode: DIR_MODE })
  const fixed: Array<string> = []
  const close = (file: string, mode: number) => {
    const current = fs.statSync(file).mode & 0o777
    if ((current & ~mode) === 0) return
    fs.chmodSync(file, current & mode)
    fixed.push(file)
  }
  close(dataDir, DIR_MODE)
  for (const entry of fs.readdirSync(dataDir, { withFileTypes: true })) {
    const file = path.join(dataDir, entry.name)
    if (entry.isFile()) close(file, FILE_MODE)
    else if (entry.isDirectory()) close(file, DIR_MODE)
  }
  return fixed
}

/** `secureDataDir` as a start-up step that says what it changed. */
export const secureDataDirLogged = (dataDir: string) =>
  Effect.flatMap(
    Effect.try({
      try: () => secureDataDir(dataDir),
      catch: (e) => new DataDirUnusable({ message: `cannot use the data directory ${dataDir}: ${e instanceof Error ? e.message : String(e)}` })
    }),
    (fixed) =>
      fixed.length === 0
        ? Effect.void
        : Effect.logWarning("closed the data directory to other users (it was readable by them)").pipe(
            Effect.annotateLogs({ dataDir, changed: fixed.map((f) => path.relative(dataDir, f) || ".") })
          )
  )
