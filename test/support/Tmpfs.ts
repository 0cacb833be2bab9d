/**
 * A small tmpfs for tests that need a full disk: mounted under the system's temporary
 * directory (tests run as root), or undefined where mounting is not allowed.
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

export interface Tmpfs {
  /** the mount point; put data directories inside it, not at it (removing a mount point fails) */
  readonly dir: string
  readonly unmount: () => void
}

export const mountTmpfs = (bytes: number): Tmpfs | undefined => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vb-tmpfs-"))
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${bytes}`, "tmpfs", dir], { stdio: "ignore" })
  } catch {
    fs.rmdirSync(dir)
    return undefined
  }
  return {
    dir,
    unmount: () => {
      execFileSync("umount", [dir], { stdio: "ignore" })
      fs.rmdirSync(dir)
    }
  }
}

export const freeBytes = (dir: string) => {
  const s = fs.statfsSync(dir)
  return s.bavail * s.bsize
}

/** Fills the file system holding `dir` until `leave` bytes are free (to a 4 KiB page); returns the filler's path. */
export const fillLeaving = (dir: string, leave: number, name = "filler") => {
  const filler = path.join(dir, name)
  const fd = fs.openSync(filler, "a")
  try {
    const chunk = Buffer.alloc(4096)
    for (let over = freeBytes(dir) - leave; over > 0; over -= chunk.length) fs.writeSync(fd, chunk, 0, Math.min(chunk.length, over))
  } finally {
    fs.closeSync(fd)
  }
  return filler
}
