/**
 * A small file system of its own for a test's data directory, so a test can fill the disk.
 * Needs root (tests here run as root, so does CI); where mounting is refused the tests that
 * need it are skipped and say why.
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll } from "vitest"
import { tempDir } from "./TestServer.js"

const mounted = new Set<string>()
afterAll(() => {
  for (const dir of mounted) {
    try {
      execFileSync("umount", ["-l", dir])
    } catch {
      // already gone
    }
  }
  mounted.clear()
})

/** Whether this machine lets the tests mount a tmpfs (checked once, by trying). */
export const canMountTmpfs = (() => {
  const probe = tempDir("vb-probe-")
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", probe], { stdio: "ignore" })
    execFileSync("umount", [probe], { stdio: "ignore" })
    return true
  } catch {
    return false
  }
})()

export const TMPFS_SKIP = "mounting a tmpfs is refused here (tests that fill a disk need root and mount)"

/** A directory on a fresh tmpfs of `sizeBytes`, unmounted after the test file. */
export const tmpfsDir = (sizeBytes: number) => {
  const dir = tempDir("vb-tmpfs-")
  execFileSync("mount", ["-t", "tmpfs", "-o", `size=${sizeBytes},mode=0700`, "tmpfs", dir])
  mounted.add(dir)
  return dir
}

export interface Tmpfs {
  /** the mount point; put data directories inside it, not at it (removing a mount point fails) */
  readonly dir: string
  readonly unmount: () => void
}

/** A tmpfs the caller unmounts itself, or undefined where mounting is not allowed. */
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

/** Free bytes on the file system holding `dir`. */
export const freeBytes = (dir: string) => {
  const s = fs.statfsSync(dir)
  return s.bavail * s.bsize
}

/** Fills the file system holding `dir` until `leave` bytes are free (to a 4 KiB page); returns the filler's path. */
export const fillLeaving = (dir: string, leave: number, name = `filler-${process.hrtime.bigint()}`) => {
  const filler = path.join(dir, name)
  const fd = fs.openSync(filler, "a")
  try {
    const chunk = Buffer.alloc(4096)
    for (let over = freeBytes(dir) - leave; over > 0; over -= chunk.length) {
      try {
        fs.writeSync(fd, chunk, 0, Math.min(chunk.length, over))
      } catch {
        // full already (metadata took the last blocks)
        break
      }
    }
  } finally {
    fs.closeSync(fd)
  }
  return filler
}

/** The whole disk but `leaveBytes`. */
export const fillDisk = (dir: string, leaveBytes = 0) => fillLeaving(dir, leaveBytes)
