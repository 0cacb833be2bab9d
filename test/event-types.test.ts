/** The event-type catalogue (src/events/EventTypes.ts) against the code that raises events, and the target check built on it. */
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { EVENT_TYPES, unknownGlob } from "../src/events/EventTypes.js"
import Database from "better-sqlite3"
import { Effect } from "effect"
import { loadConfig } from "../src/config/AppConfig.js"
import { startServer } from "../src/http/Server.js"
import { adminApi } from "./support/AdminApi.js"
import { startTestServer, tempDir } from "./support/TestServer.js"

const sources = (dir: string): Array<string> =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(path.join(dir, e.name)) : e.name.endsWith(".ts") ? [path.join(dir, e.name)] : []))

describe("the event-type catalogue", () => {
  it("lists every type the code raises by name", () => {
    const raised = new Set<string>()
    for (const file of sources(path.resolve(import.meta.dirname, "../src"))) {
      const text = fs.readFileSync(file, "utf8")
      for (const m of text.matchAll(/\btype: "([a-z]+\.[a-z._]+)"/g)) raised.add(m[1]!)
      for (const m of text.matchAll(/"(box\.(?:dial|message)\.queued)"/g)) raised.add(m[1]!)
    }
    expect(raised.size).toBeGreaterThan(20)
    expect([...raised].filter((t) => !(EVENT_TYPES as ReadonlyArray<string>).includes(t))).toEqual([])
  })

  it("tells a glob that matches nothing from one that matches", () => {
    for (const ok of ["*", "call.*", "call.hangup", "workorder.*", "box.*", "*.status"]) expect(unknownGlob(ok), ok).toBeUndefined()
    for (const typo of ["calls.*", "call.hangups", "workorders.saved"]) expect(unknownGlob(typo), typo).toMatch(/matches no event type/)
  })

  it("the config says every bad key at once, one line each, and refuses two targets of one name", async () => {
    await expect(startTestServer({ logLevel: "chatty", tz: 5, telephony: { driver: "nope" } })).rejects.toThrow(
      /config key "tz": Expected string, actual 5\nconfig key "logLevel": expected one of .*"info".*, got "chatty"\nconfig key "telephony.driver": expected one of "simulator" \| "box" \| "upstream", got "nope"/
    )
    await expect(startTestServer({ targets: [{ name: "crm", url: "http://127.0.0.1:9/a" }, { name: "crm", url: "http://127.0.0.1:9/b" }] })).rejects.toThrow(/two targets are named "crm"/)
  })

  it("a target whose events match no type is refused, naming it (config at start and the admin API)", async () => {
    await expect(startTestServer({ targets: [{ name: "crm", url: "http://127.0.0.1:9/x", events: ["calls.*"] }] })).rejects.toThrow(/calls\.\*.*matches no event type/)
    const s = await startTestServer()
    try {
      const refused = await adminApi(s, "POST", "/targets", { name: "crm", url: "http://127.0.0.1:9/x", events: ["call.hangups"] })
      expect(refused).toMatchObject({ status: 400, body: { code: -14, message: expect.stringContaining("call.hangups") } })
      expect(await adminApi(s, "POST", "/targets", { name: "crm", url: "http://127.0.0.1:9/x", events: ["call.hangup", "box.*"] })).toMatchObject({ status: 201 })
    } finally {
      await s.close()
    }
  })

  it("a target stored before the check (its glob matches nothing now) is still loaded at start, not dropped", async () => {
    const dataDir = tempDir()
    const boot = async () => startServer(await Effect.runPromise(loadConfig({ env: {}, overrides: { port: 0, host: "127.0.0.1", dataDir, logLevel: "error" } })))
    const first = await boot()
    await first.close()
    const db = new Database(path.join(dataDir, "bridge.db"))
    db.prepare(`INSERT INTO targets (name, config, origin, created_at, updated_at) VALUES ('old', ?, 'api', 0, 0)`).run(JSON.stringify({ name: "old", url: "http://127.0.0.1:9/x", events: ["calls.*"] }))
    db.close()
    const second = await boot()
    try {
      const listed = await adminApi({ url: second.url, dataDir }, "GET", "/targets")
      expect((listed.body as { items: Array<{ name: string; events: Array<string> }> }).items.find((t) => t.name === "old")).toMatchObject({ events: ["calls.*"] })
    } finally {
      await second.close()
    }
  })

  it("a config error never prints a secret's value", async () => {
    await expect(startTestServer({ adminToken: "short-secret" })).rejects.toThrow(/config key "adminToken": expected at least 16 characters$/)
    const refused = startTestServer({ targets: [{ name: "a", url: "http://127.0.0.1:9/x", headers: { Authorization: 5 } }] })
    await expect(refused).rejects.toThrow(/headers\.Authorization": Expected string, actual \(value not shown\)/)
    await expect(startTestServer({ adminToken: "short-secret" })).rejects.not.toThrow(/short-secret/)
  })
})
