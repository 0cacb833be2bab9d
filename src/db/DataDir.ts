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

/** What the bridge keeps directly in its data directory: only these are ever closed. */
const OWN_FILES = ["bridge.db", "bridge.db-wal", "bridge.db-shm", "bridge.db-journal", "bridge.lock", "bridge.lock-journal", "bridge.pid", "admin-token"]
const OWN_DIRS = ["record", "cache", "tmp"]

/**
 * Creates the directory (0700), or closes an existing one of ours: the directory itself and
 * what the bridge keeps directly in it (database, WAL, shared memory, tokens, lock, `record/`,
 * `cache/`, `tmp/`). What lies deeper (recordings, possibly millions) is not walked: a 0700
 * directory already keeps every other user out of it. Nothing else is touched, so a data
 * directory pointed by mistake at a shared place (/var/lib, a home) keeps its other entries'
 * modes — and the directory itself its own while it holds anything not the bridge's (said in
 * `foreign`). Special bits (setgid, sticky) are kept. Returns the paths whose modes were changed.
 */
export const secureDataDir = (dataDir: string): { readonly fixed: ReadonlyArray<string>; readonly foreign: ReadonlyArray<string> } => {
  fs.mkdirSync(dataDir, { recursive: true, mode: DIR_MODE })
  const fixed: Array<string> = []
  const foreign = fs.readdirSync(dataDir).filter((name) => !OWN_FILES.includes(name) && !OWN_DIRS.includes(name))
  const close = (file: string, mode: number, isDir: boolean) => {
    let stat: fs.Stats
    try {
      stat = fs.lstatSync(file)
    } catch {
      return
    }
    // a link or something of another kind under one of our names is not ours to change
    if (isDir ? !stat.isDirectory() : !stat.isFile()) return
    const permissions = stat.mode & 0o777
    if ((permissions & ~mode) === 0) return
    fs.chmodSync(file, (stat.mode & 0o7000) | (permissions & mode))
    fixed.push(file)
  }
  if (foreign.length === 0) close(dataDir, DIR_MODE, true)
  for (const name of OWN_FILES) close(path.join(dataDir, name), FILE_MODE, false)
  for (const name of OWN_DIRS) close(path.join(dataDir, name), DIR_MODE, true)
  return { fixed, foreign }
}

/** `secureDataDir` as a start-up step that says what it changed, and what it left alone. */
export const secureDataDirLogged = (dataDir: string) =>
  Effect.gen(function* () {
    const { fixed, foreign } = yield* Effect.try({
      try: () => secureDataDir(dataDir),
      catch: (e) => new DataDirUnusable({ message: `cannot use the data directory ${dataDir}: ${e instanceof Error ? e.message : String(e)}` })
    })
    if (fixed.length > 0)
      yield* Effect.logWarning("closed the data directory to other users (it was readable by them)").pipe(
        Effect.annotateLogs({ dataDir, changed: fixed.map((f) => path.relative(dataDir, f) || ".") })
      )
    if (foreign.length > 0)
      yield* Effect.logWarning("the data directory holds entries that are not the bridge's: its own mode is left as it is; give the bridge a directory of its own").pipe(
        Effect.annotateLogs({ dataDir, entries: foreign.slice(0, 10) })
      )
  })
