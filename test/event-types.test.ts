/** The event-type catalogue (src/events/EventTypes.ts) against the code that raises events, and the target check built on it. */
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { EVENT_TYPES, unknownGlob } from "../src/events/EventTypes.js"
import { adminApi } from "./support/AdminApi.js"
import { startTestServer } from "./support/TestServer.js"

const sources = (dir: string): Array<string> =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(path.join(dir, e.name)) : e.name.endsWith(".ts") ? [path.join(dir, e.name)] : []))

describe("the event-type catalogue", () => {
  it("lists every type the code raises by name", () => {
    const raised = new Set<string>()
    for (const file of sources(path.resolve(import.meta.dirname, "../src"))) {
      const text = fs.readFileSync(file, "utf8")
      for (const m of text.matchAll(/\btype: "([a-z]+\.[a-z.]+)"/g)) raised.add(m[1]!)
      for (const m of text.matchAll(/"(box\.(?:dial|message)\.queued)"/g)) raised.add(m[1]!)
    }
    expect(raised.size).toBeGreaterThan(20)
    expect([...raised].filter((t) => !EVENT_TYPES.includes(t))).toEqual([])
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
})
