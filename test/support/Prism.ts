/**
 * Stoplight Prism as a validating proxy (`prism proxy <document> <upstream>`) in front of a
 * bridge: what it finds wrong with a request or an answer comes back in `sl-violations`.
 * Starting it takes seconds: one per test file.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as net from "node:net"
import * as path from "node:path"

export const bin = (name: string) => path.join(import.meta.dirname, "..", "..", "node_modules", ".bin", name)

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const probe = net.createServer()
    probe.once("error", reject)
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as net.AddressInfo
      probe.close(() => resolve(port))
    })
  })

export interface Prism {
  readonly url: string
  readonly close: () => Promise<void>
}

export const startPrism = async (documentUrl: string, upstream: string): Promise<Prism> => {
  const port = await freePort()
  let log = ""
  const child: ChildProcess = spawn(bin("prism"), ["proxy", documentUrl, upstream, "--host", "127.0.0.1", "--port", String(port), "--errors", "false"], { stdio: ["ignore", "pipe", "pipe"] })
  const close = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise((resolve) => child.once("exit", resolve))
    child.kill("SIGTERM")
    await exited
  }
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`prism did not start:\n${log}`)), 60_000)
      const onData = (chunk: Buffer) => {
        log += chunk.toString()
        if (/Prism is listening/.test(log)) {
          clearTimeout(timer)
          resolve()
        }
      }
      child.stdout!.on("data", onData)
      child.stderr!.on("data", onData)
      child.once("exit", (code) => {
        clearTimeout(timer)
        reject(new Error(`prism exited (${code}):\n${log}`))
      })
    })
  } catch (e) {
    await close()
    throw e
  }
  return { url: `http://127.0.0.1:${port}`, close }
}

export interface Proxied {
  readonly status: number
  readonly violations: string | null
  readonly contentType: string | null
  readonly body: string
}

/** A request through Prism: the bridge's answer, with what Prism found wrong. */
export const viaPrism = async (prism: Prism, pathAndQuery: string, init?: RequestInit): Promise<Proxied> => {
  const res = await fetch(`${prism.url}${pathAndQuery}`, init)
  const body = Buffer.from(await res.arrayBuffer()).toString("latin1")
  return { status: res.status, violations: res.headers.get("sl-violations"), contentType: res.headers.get("content-type"), body }
}

/** What Prism says (in `sl-violations`, or as its own answer) of a request no operation matches. */
export const NOT_ROUTED = /Selected route not found|NO_PATH_MATCHED|NO_METHOD_MATCHED|Route not resolved/
