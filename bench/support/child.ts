/** Child processes for benchmarks: each measured server runs alone in its own process. */
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
export { freePort as freePortFor } from "../../test/support/Process.js"

export const root = path.resolve(import.meta.dirname, "../..")

export interface Child {
  readonly process: ChildProcess
  readonly port: number
  readonly stop: () => Promise<void>
}

/** Starts `<script>` (TypeScript through tsx, built JavaScript as it is) and waits for a line matching `ready` whose first group is the port. */
export const startChild = (script: string, args: ReadonlyArray<string>, env: Record<string, string>, ready: RegExp, port?: number, nodeArgs: ReadonlyArray<string> = []) =>
  new Promise<Child>((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, ...(script.endsWith(".ts") ? ["--import", "tsx"] : []), script, ...args], { cwd: root, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] })
    let out = ""
    const onData = (c: Buffer) => {
      out += c.toString()
      const m = ready.exec(out)
      if (m) {
        child.stdout!.off("data", onData)
        child.stdout!.resume()
        child.stderr!.resume()
        resolve({
          process: child,
          port: port ?? Number(m[1]),
          stop: () =>
            new Promise<void>((done) => {
              if (child.exitCode !== null) return done()
              child.once("exit", () => done())
              child.kill("SIGTERM")
            })
        })
      }
    }
    child.stdout!.on("data", onData)
    child.stderr!.on("data", (c: Buffer) => (out += c.toString()))
    child.once("exit", (code) => reject(new Error(`${script} exited (${code}) before it was ready:\n${out}`)))
  })

/** Resident memory of a process, from /proc (Linux), in MiB. */
export const rssMiB = (pid: number): number => {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8")
    const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0)
    return Math.round(kb / 1024)
  } catch {
    return 0
  }
}

/**
 * CPU time a process has used (user + system), from /proc (Linux), in ms: work per delivery or
 * per request is steadier than a rate on a shared machine, where the rate follows the load.
 */
export const cpuMs = (pid: number): number => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    // fields after the command (which may hold spaces), from the third: utime is the 14th field, stime the 15th
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100
  } catch {
    return 0
  }
}
