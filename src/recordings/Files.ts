/**
 * Recording files live under <dataDir>/record and nowhere else. Names from clients are
 * reduced to a plain file name; paths from URLs are checked segment by segment and then
 * resolved (symlinks included) to prove they stay inside.
 */
import * as fs from "node:fs"
import * as path from "node:path"

export const recordDir = (dataDir: string) => path.join(dataDir, "record")
export const mp3CacheDir = (dataDir: string) => path.join(dataDir, "cache", "mp3")

/** A client's file name as a safe single path segment, or undefined when nothing sensible is left. */
export const sanitizeName = (name: string): string | undefined => {
  if (name.includes("\0")) return undefined
  const base = name.split(/[\\/]/).pop() ?? ""
  // control characters and the characters Windows refuses would only cause trouble later (copies, archives)
  const clean = base.replace(/[\u0000-\u001f\u007f<>:"|?*]/g, "").trim()
  if (clean === "" || clean === "." || clean === ".." || clean.length > 200) return undefined
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

/** Writes atomically: a temporary file in the same directory, flushed to disk, then renamed. */
export const writeDurably = (target: string, data: Buffer) => {
  fs.mkdirSync(path.dirname(target), { recursive: true })
  const temp = `${target}.${process.pid}.${Date.now()}.part`
  const fd = fs.openSync(temp, "w", 0o644)
  try {
    fs.writeSync(fd, data)
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
  fs.renameSync(temp, target)
}
