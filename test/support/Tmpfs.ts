/**
 * A small file system of its own for a test's data directory, so a test can fill the disk.
 * Needs root (tests here run as root, so does CI); where mounting is refused the tests that
 * need it are skipped and say why.
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
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

/** Free bytes on the file system holding `dir`. */
export const freeBytes = (dir: string) => {
  const s = fs.statfsSync(dir)
  return s.bavail * s.bsize
}

/** Fills the file system of `dir` until `leaveBytes` are free (roughly: to the block); returns the filler's path. */
export const fillDisk = (dir: string, leaveBytes = 0) => {
  const filler = path.join(dir, `filler-${process.hrtime.bigint()}`)
  const fd = fs.openSync(filler, "w")
  try {
    const chunk = Buffer.alloc(64 * 1024)
    for (;;) {
      const free = freeBytes(dir)
      if (free <= leaveBytes) break
      const n = Math.min(chunk.length, free - leaveBytes)
      try {
        fs.writeSync(fd, chunk, 0, Math.max(n, 1))
      } catch {
        break
      }
    }
  } finally {
    fs.closeSync(fd)
  }
  return filler
}
