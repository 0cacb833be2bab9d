/** Mistakes a newcomer makes, each said plainly instead of accepted silently (issue 16, items 8, 9, 11). */
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from "vitest"
import { runCli } from "./support/Process.js"
import { asAdmin, callApi, startTestServer, tempDir, type TestServer } from "./support/TestServer.js"

let server: TestServer
beforeAll(async () => {
  server = await startTestServer()
})
afterAll(() => server.close())

describe("the command line", () => {
  it("refuses an unknown option of serve, naming the valid ones, before anything is written", async () => {
    const dir = path.join(tempDir(), "data")
    const run = await runCli(["--prot", "9999", "--data-dir", dir], {})
    expect(run.code).toBe(2)
    expect(run.stderr).toMatch(/Unknown option '--prot'.*--port, --host, --data-dir, --help/)
    expect(fs.existsSync(dir)).toBe(false)
    const user = await runCli(["user", "add", "100008801", "--pasword", "x", "--data-dir", dir], {})
    expect([user.code, user.stderr]).toEqual([2, expect.stringMatching(/^voip-bridge: Unknown option '--pasword'/)])
  })

  it("says a port in use, naming BRIDGE_PORT, before the data directory or the admin token exist", async () => {
    const holder = net.createServer()
    await new Promise<void>((r) => holder.listen(0, "127.0.0.1", () => r()))
    const { port } = holder.address() as net.AddressInfo
    const dir = path.join(tempDir(), "data")
    try {
      const run = await runCli(["serve"], { BRIDGE_HOST: "127.0.0.1", BRIDGE_PORT: String(port), BRIDGE_DATA_DIR: dir })
      expect(run.code).toBe(1)
      expect(run.stderr).toMatch(new RegExp(`port ${port} on 127\\.0\\.0\\.1 is in use.*BRIDGE_PORT`))
      expect(fs.existsSync(dir)).toBe(false)
    } finally {
      holder.close()
    }
  })

  it("--help lists every environment variable the config reads", async () => {
    const help = await runCli(["--help"], {})
    const source = fs.readFileSync(path.resolve(import.meta.dirname, "../src/config/AppConfig.ts"), "utf8")
    const names = [...source.matchAll(/\["(BRIDGE_[A-Z_]+|LOG_LEVEL)", \[/g)].map((m) => m[1]!)
    expect(names.length).toBeGreaterThan(8)
    for (const name of [...names, "BRIDGE_CONFIG"]) expect(help.stdout, name).toContain(name)
    expect(help.stdout).toMatch(/at least 16 characters/)
  })
})

describe("the API", () => {
  it("says that sa_password is the MD5 when it is not 32 hex digits (still -2, still as slow)", async () => {
    const a = await callApi(server, { method: "getExtension", sa_user: "100008800", sa_password: "02367073578" })
    expect(a).toMatchObject({ code: -2, message: expect.stringContaining("MD5 of the password") })
    const b = await callApi(server, { method: "getExtension", sa_user: "100008800", sa_password: "0".repeat(32) })
    expect(b.code).toBe(-2)
    expect(b.message).not.toContain("MD5")
  })

  it("names the method an unknown one differs from only in case", async () => {
    expect(await asAdmin(server, "getextension")).toMatchObject({ code: -3, message: expect.stringContaining("did you mean getExtension?") })
    expect(await asAdmin(server, "nosuchmethod")).toMatchObject({ code: -3, message: 'unknown method "nosuchmethod"' })
  })
})

describe("the log", () => {
  it("is JSON lines with time, level, msg; a request line carries the contract code beside the HTTP status", async () => {
    const logged: Array<string> = []
    const spy = vi.spyOn(console, "log").mockImplementation((...args: Array<unknown>) => void logged.push(args.map(String).join(" ")))
    onTestFinished(() => spy.mockRestore())
    const s = await startTestServer({ logLevel: "debug" })
    try {
      expect((await callApi(s, { method: "getExtension", sa_user: "100008800", sa_password: "0".repeat(32) })).code).toBe(-2)
    } finally {
      await s.close()
    }
    const lines = logged.map((l) => JSON.parse(l) as Record<string, unknown>)
    for (const l of lines) expect(Object.keys(l).slice(0, 3)).toEqual(["time", "level", "msg"])
    const request = lines.find((l) => l.msg === "request" && (l.http as { path?: string } | undefined)?.path === "/voip/api/jsondata.html")
    expect(request).toMatchObject({ level: "debug", http: { method: "GET", status: 200, code: -2 } })
  })
})
