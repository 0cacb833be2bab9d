/**
 * Recording files live under <dataDir>/record and nowhere else. Names from clients are
 * reduced to a plain file name; paths from URLs are checked segment by segment and then
 * resolved (symlinks included) to prove they stay inside.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import type { AppConfigShape } from "../config/AppConfig.js"
import type { ByteBudget } from "../http/Params.js"
import { errnoCode } from "../shared/Errno.js"

export const recordDir = (dataDir: string) => path.join(dataDir, "record")
export const mp3CacheDir = (dataDir: string) => path.join(dataDir, "cache", "mp3")

/** Longest stored name in UTF-8 bytes: with the longest suffix we add (`.mp3` and a `.part` one) it stays under the 255-byte limit of file systems. */
export const NAME_MAX_BYTES = 200

/**
 * A client's file name as a safe single path segment, or undefined when nothing sensible is
 * left. The result is always a name `resolveInside` accepts, so what is stored can be
 * downloaded by the path we answer with.
 */
export const sanitizeName = (name: string): string | undefined => {
  if (name.includes("\0")) return undefined
  // a name that arrives percent-encoded means its decoded form (`..%2fevil.wav` is `../evil.wav`)
  let decoded = name
  try {
    decoded = decodeURIComponent(name)
  } catch {
    // not valid percent-encoding: the characters are taken as they are, and `%` is dropped below
  }
  if (decoded.includes("\0")) return undefined
  const base = decoded.split(/[\\/]/).pop() ?? ""
  // control characters and the characters Windows refuses would only cause trouble later (copies, archives); `%` would not survive a URL path
  const clean = base.replace(/[\u0000-\u001f\u007f<>:"|?*%]/g, "").trim()
  if (clean === "" || clean === "." || clean === ".." || Buffer.byteLength(clean, "utf8") > NAME_MAX_BYTES) return undefined
  return clean
}

/**
 * A relative path from a URL (already percent-decoded once) → the absolute path inside
 * `root`, or undefined for anything that tries to leave it.
 */
export const resolveInside = (root: string, relative: string): string | undefined => {
  if (relative === "" || relative.includes("\0") || relative.includes("\\") || path.isAbsolute(relative)) return undefined
  const segments = relative.split("/")
  if (segments.some((s) => s === "" || s === "." || s === ".." || s.includes("%"))) return undefined
  const candidate = path.resolve(root, ...segments)
  let real: string
  let realRoot: string
  try {
    real = fs.realpathSync(candidate)
    realRoot = fs.realpathSync(root)
  } catch {
    return undefined
  }
  return real.startsWith(realRoot + path.sep) && fs.statSync(real).isFile() ? real : undefined
}

const TYPES: Record<string, string> = {
  ".wav": "audio/wav",
  ".mp3": "audio/mpeg",
  ".gsm": "audio/gsm",
  ".amr": "audio/amr",
  ".m4a": "audio/mp4",
  ".aac": "audio/aac",
  ".ogg": "audio/ogg",
  ".opus": "audio/ogg"
}
export const contentTypeOf = (name: string): string => TYPES[path.extname(name).toLowerCase()] ?? "application/octet-stream"

const writeAll = (fd: number, data: Buffer) => {
  // writeSync may write less than asked (a full disk among other reasons): the rest is written or the error thrown
  for (let offset = 0; offset < data.length; ) offset += fs.writeSync(fd, data, offset, data.length - offset)
}

/** Writes atomically: a temporary file in the same directory, flushed to disk, checked, then renamed. */
export const writeDurably = (target: string, data: Buffer) => {
  fs.mkdirSync(path.dirname(target), { recursive: true })
  const temp = `${target}.${process.pid}.${Date.now()}.part`
  try {
    const fd = fs.openSync(temp, "w", 0o600)
    try {
      writeAll(fd, data)
      fs.fsyncSync(fd)
      if (fs.fstatSync(fd).size !== data.length) throw Object.assign(new Error("short write"), { code: "ESHORT" })
    } finally {
      fs.closeSync(fd)
    }
    fs.renameSync(temp, target)
  } catch (e) {
    fs.rmSync(temp, { force: true })
    throw e
  }
}

/**
 * `writeDurably` off the event loop: the write and its fsync on the thread pool, so a burst of
 * recordings (the simulator's calls of a task) neither stalls other requests nor queues behind
 * one another's flushes.
 */
export const writeDurablyAsync = async (target: string, data: Buffer) => {
  const temp = `${target}.${process.pid}.${Date.now()}.${Math.random().toString(36).slice(2, 8)}.part`
  // written whole (writeFile writes until done or fails) and flushed before the rename; the
  // directory is made when it is missing, not before every file (a recursive mkdir walks the path)
  const write = () => fs.promises.writeFile(temp, data, { mode: 0o600, flush: true })
  try {
    await write().catch(async (e: unknown) => {
      if (errnoCode(e) !== "ENOENT") throw e
      await fs.promises.mkdir(path.dirname(target), { recursive: true })
      return write()
    })
    await fs.promises.rename(temp, target)
  } catch (e) {
    await fs.promises.rm(temp, { force: true })
    throw e
  }
}

/**
 * Moves a received upload (a temporary file under the same data directory) to `target`:
 * flushed and its size checked against what was received before the rename, so the final
 * name never holds a partial file. `replace: false` refuses (EEXIST) to take a name that exists.
 */
export const commitFile = async (temp: string, target: string, size: number, options: { readonly replace: boolean } = { replace: true }) => {
  // on the thread pool: a recording's fsync takes milliseconds, which the event loop (every other
  // request, the box's polls) must not wait out
  const handle = await fs.promises.open(temp, "r+")
  try {
    await handle.sync()
    if ((await handle.stat()).size !== size) throw Object.assign(new Error("short write"), { code: "ESHORT" })
    // recordings are as private as the rest of the data directory (0600), whatever umask the
    // temporary file was made under
    await handle.chmod(0o600)
  } finally {
    await handle.close()
  }
  await fs.promises.mkdir(path.dirname(target), { recursive: true })
  if (options.replace) return fs.promises.rename(temp, target)
  // a second name, then the temporary one gone: fails (EEXIST) instead of replacing a file
  // someone else wrote there
  await fs.promises.link(temp, target)
  await fs.promises.rm(temp, { force: true })
}

/** Where uploads are received before they are checked and moved into place. */
export const uploadTempDir = (dataDir: string) => path.join(dataDir, "tmp")

/** A count of bytes that may be held at once, shared by everyone who takes from it. */
export const byteBudget = (limit: number, refusal?: string): ByteBudget => {
  let held = 0
  return {
    ...(refusal === undefined ? {} : { refusal }),
    take: (n) => {
      if (held + n > limit) return false
      held += n
      return true
    },
    give: (n) => {
      held -= n
    }
  }
}

/**
 * Bytes of uploads being received, per running bridge (its config), across its requests —
 * recordings uploaded by clients (§2.1.5) and by boxes (§2.1.10) alike, so together they hold
 * at most `recordings.maxInFlightBytes`. An upload whose credentials come after its file is read
 * before anyone knows who sent it: those draw from a share of their own, one at a time per
 * address, so bytes from anyone can never hold what authenticated uploads need.
 */
export interface UploadBudgets {
  /** uploads whose sender was known before their file (checked before a byte of it is read) */
  readonly authenticated: ByteBudget
  readonly anonymous: ByteBudget
  /** addresses with an anonymous upload in progress */
  readonly anonymousFrom: Set<string>
}

/** The part of recordings.maxInFlightBytes uploads that have not yet shown their credentials may hold. */
const ANONYMOUS_SHARE = 1 / 8

const budgets = new WeakMap<AppConfigShape, UploadBudgets>()
export const uploadBudgets = (config: AppConfigShape): UploadBudgets => {
  let found = budgets.get(config)
  if (!found) {
    const { maxInFlightBytes } = config.recordings
    const share = Math.max(1, Math.floor(maxInFlightBytes * ANONYMOUS_SHARE))
    found = {
      authenticated: byteBudget(maxInFlightBytes),
      anonymous: byteBudget(share, `too many uploads without credentials before their file are in progress (${share} bytes at most); send sa_user and sa_password or sessionId before the file, or try again later`),
      anonymousFrom: new Set()
    }
    budgets.set(config, found)
  }
  return found
}

const cleared = new WeakMap<AppConfigShape, Set<string>>()
/**
 * Empties a temporary directory the first time this bridge (its config) receives into it: one
 * bridge owns a data directory, so what is there was left by an earlier run that died.
 */
export const clearLeftoversOnce = (config: AppConfigShape, dir: string) => {
  let done = cleared.get(config)
  if (!done) cleared.set(config, (done = new Set()))
  if (done.has(dir)) return
  done.add(dir)
  fs.rmSync(dir, { recursive: true, force: true })
}
