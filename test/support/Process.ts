/** The bridge as a separate process, as `npm start` runs it (dist/, built before the tests): one node process, so signals (and kill -9) reach the bridge itself. */
import { type ChildProcess, spawn } from "node:child_process"
import * as net from "node:net"
import * as path from "node:path"

const root = path.resolve(import.meta.dirname, "../..")

export const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = net.createServer()
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo
      s.close(() => resolve(port))
    })
    s.once("error", reject)
  })

export interface BridgeProcess {
  readonly child: ChildProcess
  readonly url: string
  output: () => string
  /** resolves with the exit code */
  readonly exited: Promise<number | null>
}

export const runCli = (args: ReadonlyArray<string>, env: Record<string, string>) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, ["dist/main.mjs", ...args], { cwd: root, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()))
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()))
    child.on("exit", (code) => resolve({ code, stdout, stderr }))
  })

/** A bridge started by `command args` (node itself by default; `npm start` too), once it says it listens. */
export const startBridge = async (env: Record<string, string>, command: { readonly file: string; readonly args: ReadonlyArray<string> } = { file: process.execPath, args: ["dist/main.mjs"] }): Promise<BridgeProcess> => {
  const port = await freePort()
  const child = spawn(command.file, [...command.args], {
    cwd: root,
    env: { ...process.env, BRIDGE_HOST: "127.0.0.1", BRIDGE_PORT: String(port), LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"]
  })
  let out = ""
  child.stdout!.on("data", (c: Buffer) => (out += c.toString()))
  child.stderr!.on("data", (c: Buffer) => (out += c.toString()))
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
  const deadline = Date.now() + 60_000
  while (!out.includes("voip-bridge listening")) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`bridge did not start:\n${out}`)
    await new Promise((r) => setTimeout(r, 50))
  }
  return { child, url: `http://127.0.0.1:${port}`, output: () => out, exited }
}
