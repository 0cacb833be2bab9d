/**
 * Fresh-eyes review of the session's last changes: failing tests for the defects found.
 * - Replay (6452d7c): the resend of a request whose reused kept-alive socket was reset.
 * - Build (5119739): dist/ written file by file, by rename.
 */
import { spawnSync } from "node:child_process"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { replayCommand } from "../src/replay/Cli.js"
import { makeMatcher } from "../src/replay/Diff.js"
import { type Entry, fromCurl } from "../src/replay/Input.js"
import { replay } from "../src/replay/Replay.js"
import * as fs from "node:fs"
import { tempDir } from "./support/TestServer.js"

const run = async (args: ReadonlyArray<string>) => {
  let out = ""
  let err = ""
  const code = await replayCommand(args, { out: (t) => (out += `${t}\n`), err: (t) => (err += t), tty: false })
  return { code, out, err }
}

const listen = async (server: http.Server) => {
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}
const shut = async (server: http.Server) => {
  server.closeAllConnections()
  await new Promise((ok) => server.close(ok))
}
const curl = (phone: string) => `curl 'http://bridge/api/voip.json?type=1&peer=2&phone=${phone}'`

describe("review 6452d7c: a reused kept-alive socket reset before any answer", () => {
  it("with --concurrency 2, the resend goes on a NEW connection, not on the other stale kept-alive one", async () => {
    // like the commit's own test server: every connection's second request finds it closed
    // (an idle time-out that closed every idle connection at once)
    const served = new WeakMap<object, number>()
    let answered = 0
    const server = http.createServer((req, res) => {
      const n = (served.get(req.socket) ?? 0) + 1
      served.set(req.socket, n)
      if (n > 1) return void req.socket.destroy()
      answered++
      // the first two (different lanes, sent at once) are answered together: two connections open
      setTimeout(() => res.writeHead(200, { "content-type": "application/json" }).end('{"code":0}'), 50)
    })
    const url = await listen(server)
    try {
      const file = path.join(tempDir(), "calls.sh")
      fs.writeFileSync(file, ["13800138001", "13800138002", "13800138003"].map(curl).join("\n") + "\n")
      const r = await run([file, "--to", url, "--concurrency", "2"])
      // actual: exit 2, "1 failed" (socket hang up): the resend took the other idle kept-alive socket, also closed
      expect(r.code, `${r.out}${r.err}`).toBe(0)
      expect(answered).toBe(3)
    } finally {
      await shut(server)
    }
  })

  it("Ctrl-C (the abort signal) cuts a request in flight; it is not sent again after the abort", async () => {
    const arrivals = new Map<string, number>()
    const held: Array<http.ServerResponse> = []
    const server = http.createServer((req, res) => {
      const phone = new URL(req.url ?? "/", "http://x").searchParams.get("phone") ?? ""
      arrivals.set(phone, (arrivals.get(phone) ?? 0) + 1)
      // the first is answered at once (its connection is kept alive), the second is slow
      if (phone.endsWith("1")) return void res.writeHead(200, { "content-type": "application/json" }).end('{"code":0}')
      held.push(res)
    })
    const url = await listen(server)
    const controller = new AbortController()
    try {
      const entries = ["13800138001", "13800138002"].map((p, i) => fromCurl(curl(p), `line ${i + 1}`)) as Array<Entry>
      const replaying = replay(entries, {
        to: url,
        speed: 0,
        concurrency: 1,
        matcher: makeMatcher({ ignore: [], only: [], defaults: true }),
        validate: false,
        credentials: new Map(),
        receivers: [],
        timeoutMs: 5_000,
        signal: controller.signal
      })
      // the second request has arrived (on the kept-alive connection of the first): Ctrl-C
      for (let i = 0; i < 200 && !arrivals.has("13800138002"); i++) await new Promise((r) => setTimeout(r, 10))
      expect(arrivals.get("13800138002")).toBe(1)
      controller.abort()
      await new Promise((r) => setTimeout(r, 300))
      for (const res of held.splice(0)) res.writeHead(200, { "content-type": "application/json" }).end('{"code":0}')
      const { results } = await replaying
      // actual: 2 — agent.destroy() resets the reused socket, and that reset is taken for an idle
      // close: the request the user just interrupted is sent once more, after the abort
      expect(arrivals.get("13800138002")).toBe(1)
      expect(results.length).toBe(2)
    } finally {
      for (const res of held.splice(0)) res.end()
      await shut(server)
    }
  })
})

/**
 * Records, at each rename the build makes into dist/, the relative static imports of the file
 * being put in place that do not exist yet: a process loading that file then fails
 * (ERR_MODULE_NOT_FOUND), which is what the rename was to prevent.
 */
const RENAME_HOOK = `
import fs from "node:fs"
import path from "node:path"
import { syncBuiltinESMExports } from "node:module"
const rename = fs.renameSync
const missing = []
fs.renameSync = (from, to) => {
  if (String(to).endsWith(".mjs"))
    for (const m of fs.readFileSync(from, "utf8").matchAll(/from\\s*"(\\.\\.?\\/[^"]+)"/g))
      if (!fs.existsSync(path.resolve(path.dirname(String(to)), m[1]))) missing.push(path.basename(String(to)) + " -> " + m[1])
  return rename(from, to)
}
syncBuiltinESMExports()
process.on("exit", () => fs.writeFileSync(process.env.REVIEW_MISSING, JSON.stringify(missing)))
`

describe("review 5119739: dist/ written file by file, each by a rename", () => {
  it("a rebuild after a source change puts no entry in place before the chunks it imports", { timeout: 120_000 }, () => {
    // a fresh clone (no dist/): the sources, the build script, node_modules
    const root = process.cwd()
    const clone = tempDir("vb-build-")
    for (const d of ["src", "scripts", "schemas"]) fs.cpSync(path.join(root, d), path.join(clone, d), { recursive: true })
    for (const f of ["package.json", "tsconfig.json"]) fs.copyFileSync(path.join(root, f), path.join(clone, f))
    fs.symlinkSync(path.join(root, "node_modules"), path.join(clone, "node_modules"))
    const hook = path.join(clone, "rename-hook.mjs")
    fs.writeFileSync(hook, RENAME_HOOK)
    const missingFile = path.join(clone, "missing.json")
    const build = () => {
      const r = spawnSync(process.execPath, ["--import", hook, "scripts/build.mjs"], { cwd: clone, env: { ...process.env, REVIEW_MISSING: missingFile }, encoding: "utf8" })
      expect(r.status, `${r.stdout}${r.stderr}`).toBe(0)
      return JSON.parse(fs.readFileSync(missingFile, "utf8")) as Array<string>
    }
    build()
    expect(fs.existsSync(path.join(clone, "dist", "main.mjs"))).toBe(true)
    // an edit of a module of main's shared chunk: that chunk's name (its hash) changes, and main.mjs with it
    fs.appendFileSync(path.join(clone, "src", "db", "Sqlite.ts"), "\n;(globalThis as Record<string, unknown>).reviewEdit = 1\n")
    // actual: ["main.mjs -> ./chunks/chunk-….mjs", …]: esbuild lists the entries before the chunks,
    // so the new main.mjs is in place while the chunk it imports is not there yet
    expect(build()).toEqual([])
  })
})
