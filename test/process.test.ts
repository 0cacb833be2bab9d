/**
 * The bridge as an operator runs it: a separate process, `src/main.ts`, stopped with SIGTERM.
 * After real traffic, no credential — password or its MD5, in any case — is anywhere under
 * the data directory (database, WAL, token file) or in the logs.
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import Database from "better-sqlite3"
import { describe, expect, it } from "vitest"
import { callApi, creds, md5, tempDir } from "./support/TestServer.js"
import { runCli, startBridge } from "./support/Process.js"
import { eventually, startReceiver } from "./support/Receiver.js"

const filesUnder = (dir: string): Array<string> =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(path.join(dir, e.name)) : [path.join(dir, e.name)]))

// each command is a process of its own that loads TypeScript: on a loaded machine a test of eight of them takes a while
describe("the bridge process", () => {
  it("serves, refuses a second bridge on its data directory, shuts down cleanly on SIGTERM, and leaves no credential on disk or in its logs", async () => {
    const dataDir = tempDir()
    const bridge = await startBridge({ BRIDGE_DATA_DIR: dataDir })
    const server = { url: bridge.url }
    const secret = "S3cret-Pw-4711"
    expect((await callApi(server, { ...creds(), method: "getExtension" })).code).toBe(0)
    expect((await callApi(server, { ...creds("100008800", "wrong-password"), method: "getExtension" })).code).toBe(-2)
    expect((await callApi(server, { ...creds(), method: "addExtension", exteExtension: "401", extePassword: secret }, "form")).code).toBe(0)
    expect((await callApi(server, { ...creds("100008401", secret), method: "getExtension" })).code).toBe(0)
    const { exteId } = await callApi(server, { ...creds("100008401", secret), method: "getExtension" })
    const reset = await callApi(server, { ...creds(), method: "initExtensionPassword", exteId: String(exteId) })
    expect(reset.code).toBe(0)

    // one serving bridge per data directory: a second is refused, naming the first
    const second = await runCli(["serve"], { BRIDGE_DATA_DIR: dataDir, BRIDGE_PORT: "0", BRIDGE_HOST: "127.0.0.1", LOG_LEVEL: "error" })
    expect(second.code).toBe(1)
    expect(second.stderr).toContain(`another bridge (pid ${bridge.child.pid}) serves ${dataDir}`)
    expect((await callApi(server, { ...creds(), method: "getExtension" })).code).toBe(0)

    bridge.child.kill("SIGTERM")
    expect(await bridge.exited).toBe(0)
    expect(bridge.output()).toMatch(/shutting down/)
    expect(fs.existsSync(path.join(dataDir, "bridge.pid"))).toBe(false)

    const needles = ["02367073578", secret, String(reset.password), "wrong-password"].flatMap((p) => [p, md5(p), md5(p).toUpperCase()])
    const files = filesUnder(dataDir)
    expect(files.some((f) => f.endsWith("bridge.db"))).toBe(true)
    for (const file of files) {
      const bytes = fs.readFileSync(file)
      for (const needle of needles) expect(bytes.includes(Buffer.from(needle)), `${needle} found in ${file}`).toBe(false)
    }
    for (const needle of needles) expect(bridge.output().includes(needle), `${needle} found in the logs`).toBe(false)
    // the generated admin token lives in its file only; the log names the file
    const adminToken = fs.readFileSync(path.join(dataDir, "admin-token"), "utf8").trim()
    expect(adminToken.length).toBeGreaterThanOrEqual(16)
    expect(bridge.output()).toContain(path.join(dataDir, "admin-token"))
    expect(bridge.output().includes(adminToken), "the admin token found in the logs").toBe(false)
  })

  it("`migrate` creates and migrates the database, then exits", async () => {
    const dataDir = path.join(tempDir(), "nested", "data")
    const { code, stdout } = await runCli(["migrate"], { BRIDGE_DATA_DIR: dataDir, LOG_LEVEL: "error" })
    expect(code).toBe(0)
    expect(stdout).toMatch(/migrations applied/)
    expect(fs.existsSync(path.join(dataDir, "bridge.db"))).toBe(true)
  })

  it("refuses to start on a bad setting, naming the key", async () => {
    const { code, stderr } = await runCli(["serve"], { BRIDGE_DATA_DIR: tempDir(), BRIDGE_PORT: "eighty" })
    expect(code).toBe(2)
    expect(stderr).toMatch(/config key "port" \(from BRIDGE_PORT\)/)
  })

  it("prints help for each command", async () => {
    const { code, stdout } = await runCli(["--help"], {})
    expect(code).toBe(0)
    expect(stdout).toMatch(/usage: npm start -- \[command\]/)
    expect((await runCli(["user", "--help"], {})).stdout).toMatch(/user add <extension>/)
  })

  it("runs as `npx voip-bridge` from the clone (package.json's bin)", async () => {
    const root = path.resolve(import.meta.dirname, "..")
    const help = spawnSync("npx", ["--no-install", "voip-bridge", "--help"], { cwd: root, encoding: "utf8", timeout: 60_000 })
    expect(help.status).toBe(0)
    expect(help.stdout).toMatch(/usage: npm start -- \[command\]/)
  })

  it("`user add` creates an extension that can log in; `user passwd` changes its password", { timeout: 120_000 }, async () => {
    const dataDir = tempDir()
    const added = await runCli(["user", "add", "300001801", "--password", "first-pw", "--admin"], { BRIDGE_DATA_DIR: dataDir, LOG_LEVEL: "error" })
    expect(added.code).toBe(0)
    const changed = await runCli(["user", "passwd", "300001801", "--password", "second-pw"], { BRIDGE_DATA_DIR: dataDir, LOG_LEVEL: "error" })
    expect(changed.code).toBe(0)
    expect((await runCli(["user", "add", "300001801"], { BRIDGE_DATA_DIR: dataDir, LOG_LEVEL: "error" })).code).toBe(1)
    const bridge = await startBridge({ BRIDGE_DATA_DIR: dataDir })
    try {
      expect((await callApi({ url: bridge.url }, { ...creds("300001801", "second-pw"), method: "getExtension" })).code).toBe(0)
      expect((await callApi({ url: bridge.url }, { ...creds("300001801", "first-pw"), method: "getExtension" })).code).toBe(-2)
    } finally {
      bridge.child.kill("SIGTERM")
      await bridge.exited
    }
  })

  it("`dlq list`, `dlq redrive` and `dlq purge` work on the data directory, with a progress bar", { timeout: 120_000 }, async () => {
    const dataDir = tempDir()
    const crm = await startReceiver(() => ({ status: 400, body: "no" }))
    const config = path.join(dataDir, "bridge.json")
    fs.writeFileSync(config, JSON.stringify({ targets: [{ name: "crm", url: crm.url, events: ["callback.*"] }] }))
    const env = { BRIDGE_DATA_DIR: dataDir, BRIDGE_CONFIG: config, LOG_LEVEL: "error" }
    try {
      let bridge = await startBridge({ ...env, LOG_LEVEL: "info" })
      for (const id of ["1", "2", "3"]) await fetch(`${bridge.url}/api/callback.json?cbkId=${id}&cbkStatus=4`)
      await eventually(() => crm.received.length === 3)
      bridge.child.kill("SIGTERM")
      expect(await bridge.exited).toBe(0)

      const listed = await runCli(["dlq", "list", "--target", "crm"], env)
      expect(listed.code).toBe(0)
      expect(listed.stdout.trim().split("\n")).toHaveLength(4)
      expect(listed.stdout).toMatch(/\tcrm\tcallback.status\trefused\tHTTP 400/)
      expect(listed.stdout).toMatch(/3 dead letter\(s\)/)
      expect((await runCli(["dlq", "list", "--since", "yesterday"], env)).code).toBe(2)

      const redriven = await runCli(["dlq", "redrive", "--target", "crm", "--type", "callback.*"], env)
      expect(redriven.code).toBe(0)
      expect(redriven.stdout).toMatch(/3 dead letter\(s\) redriven/)
      expect(redriven.stderr).toMatch(/\[#+\] 3\/3/)

      crm.setAnswer(() => ({ status: 200 }))
      bridge = await startBridge({ ...env, LOG_LEVEL: "info" })
      await eventually(() => crm.received.length === 6)
      expect(new Set(crm.received.map((r) => r.headers["webhook-id"])).size).toBe(3)
      bridge.child.kill("SIGTERM")
      await bridge.exited
      expect((await runCli(["dlq", "list"], env)).stdout).toMatch(/^0 dead letter\(s\)/m)

      // more dead letters than one page: list shows them all, purge needs a filter and deletes them with their attempts
      const w = new Database(path.join(dataDir, "bridge.db"))
      const N = 1_234
      w.transaction(() => {
        for (let i = 1; i <= N; i++) {
          w.prepare("INSERT INTO events (id, type, occurred_at, source, data) VALUES (?, 'callback.status', ?, 'push:callback', '{}')").run(i, Date.now())
          w.prepare("INSERT INTO deliveries (id, event_id, target, status, attempts, next_attempt_at, webhook_id, dead_reason, created_at, updated_at) VALUES (?, ?, 'crm', 'dead', 1, 0, ?, 'refused', 0, 0)").run(100_000 + i, i, `msg_${i}`)
          w.prepare("INSERT INTO attempts (delivery_id, n, started_at, status, latency_ms) VALUES (?, 1, 0, 400, 1)").run(100_000 + i)
        }
      })()
      const all = await runCli(["dlq", "list", "--target", "crm"], env)
      expect(all.stdout.trim().split("\n")).toHaveLength(N + 1)
      expect(all.stdout).toMatch(new RegExp(`^${N} dead letter\\(s\\)$`, "m"))
      const unfiltered = await runCli(["dlq", "purge"], env)
      expect(unfiltered.code).toBe(2)
      expect(unfiltered.stderr).toMatch(/name what to delete/)
      const purged = await runCli(["dlq", "purge", "--target", "crm"], env)
      expect(purged.code).toBe(0)
      expect(purged.stdout).toMatch(new RegExp(`${N} dead letter\\(s\\) deleted`))
      expect(purged.stderr).toMatch(new RegExp(`\\[#+\\] ${N}/${N}`))
      expect((w.prepare("SELECT (SELECT count(*) FROM deliveries WHERE status = 'dead') + (SELECT count(*) FROM attempts WHERE delivery_id BETWEEN 100001 AND ?) AS n").get(100_000 + N) as { n: number }).n).toBe(0)
      w.close()
    } finally {
      await crm.close()
    }
  })
})
