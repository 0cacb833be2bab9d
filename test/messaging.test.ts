/** sendMsg / recvMsg (§2.1.3–2.1.4): between the two client types of one extension, by waterLine, with expiry. */
import * as fs from "node:fs"
import * as path from "node:path"
import Database from "better-sqlite3"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { purgeExpired } from "../src/messaging/handlers.js"
import { asAdmin, callApi, creds, startTestServer, type TestServer } from "./support/TestServer.js"

let server: TestServer
const agent = creds("100008401", "agent-pw")
const colleague = creds("100008402", "colleague-pw")

beforeAll(async () => {
  server = await startTestServer()
  await asAdmin(server, "addExtension", { exteExtension: "401", extePassword: "agent-pw" })
  await asAdmin(server, "addExtension", { exteExtension: "402", extePassword: "colleague-pw" })
})
afterAll(() => server.close())

interface Msg { kind: string; phone: string; content: string; waterLine: number; client: number; status?: number; talkTimes?: number; cdrId?: number; lon?: number; lat?: number }
const send = async (who: Record<string, string>, fields: Record<string, string>) => {
  const body = await callApi(server, { ...who, method: "sendMsg", ...fields }, "form")
  return body as typeof body & { waterLine: number }
}
const recv = async (who: Record<string, string>, fields: Record<string, string>) => {
  const body = await callApi(server, { ...who, method: "recvMsg", ...fields })
  return body as typeof body & { msgs: Array<Msg>; waterLine: number }
}

describe("messaging between an extension's clients", () => {
  it("delivers the contract's example (a dial on the mobile app) to the PC client only", async () => {
    const f = fs
      .readFileSync(path.join(import.meta.dirname, "fixtures/contract-requests.jsonl"), "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { seed: string; form?: Record<string, string> })
      .find((x) => x.seed === "2.1.3")!
    const { extension: _, ...form } = f.form!
    const sent = await send(agent, { ...form, time: "1763950000000" })
    expect(sent).toMatchObject({ code: 0, waterLine: expect.any(Number) })
    const pc = await recv(agent, { client: "1" })
    expect(pc.msgs).toEqual([{ kind: "1", phone: "13002311111", content: "客户端拨号", time: 1763950000000, waterLine: sent.waterLine, client: 2 }])
    expect((await recv(agent, { client: "2" })).msgs).toEqual([])
    expect((await recv(colleague, { client: "1" })).msgs).toEqual([])
  })

  it("answers the fields of a call's relaxed-JSON content, and keeps lon/lat of a GPS message", async () => {
    const a = await send(agent, { kind: "2", client: "1", phone: "13800000000", content: "{status:1,talkTimes:10,cdrId:42}", time: "1" })
    const b = await send(agent, { kind: "5", client: "1", phone: "-", lon: "106.55", lat: "29.56", time: "2" })
    const { msgs } = await recv(agent, { client: "2", waterLine: String(a.waterLine - 1) })
    expect(msgs[0]).toMatchObject({ kind: "2", content: "{status:1,talkTimes:10,cdrId:42}", status: 1, talkTimes: 10, cdrId: 42, waterLine: a.waterLine })
    expect(msgs[1]).toMatchObject({ kind: "5", lon: 106.55, lat: 29.56, waterLine: b.waterLine })
  })

  it("keeps waterLine strictly increasing under 50 concurrent sends, and pages by it", async () => {
    const before = (await recv(colleague, { client: "2" })).waterLine
    const sent = await Promise.all(Array.from({ length: 50 }, (_, i) => send(colleague, { kind: "3", client: "1", phone: `1380000${String(i).padStart(4, "0")}`, time: "1" })))
    const lines = sent.map((s) => s.waterLine)
    expect(new Set(lines).size).toBe(50)
    const all: Array<Msg> = []
    let mark = before
    for (;;) {
      const page = await recv(colleague, { client: "2", waterLine: String(mark), limit: "7" })
      if (page.msgs.length === 0) break
      expect(page.msgs.length).toBeLessThanOrEqual(7)
      all.push(...page.msgs)
      mark = page.waterLine
    }
    expect(all).toHaveLength(50)
    for (let i = 1; i < all.length; i++) expect(all[i]!.waterLine).toBeGreaterThan(all[i - 1]!.waterLine)
    expect(new Set(all.map((m) => m.waterLine))).toEqual(new Set(lines))
  })

  it("stops delivering after lostTime and the scheduled purge removes the message", async () => {
    const sent = await send(agent, { kind: "3", client: "2", phone: "13900000000", content: "expiring", lostTime: "1", time: "1" })
    const forever = await send(agent, { kind: "3", client: "2", phone: "13900000001", content: "kept", lostTime: "0", time: "1" })
    expect((await recv(agent, { client: "1", waterLine: String(sent.waterLine - 1) })).msgs.map((m) => m.content)).toEqual(["expiring", "kept"])
    await new Promise((r) => setTimeout(r, 1100))
    expect((await recv(agent, { client: "1", waterLine: String(sent.waterLine - 1) })).msgs.map((m) => m.content)).toEqual(["kept"])
    await server.runtime.runPromise(purgeExpired.run)
    const db = new Database(path.join(server.dataDir, "bridge.db"), { readonly: true })
    const left = db.prepare("SELECT content FROM messages WHERE water_line IN (?, ?)").all(sent.waterLine, forever.waterLine)
    db.close()
    expect(left).toEqual([{ content: "kept" }])
  })

  it("lets an admin post to another extension's clients, not an agent (-5)", async () => {
    expect((await callApi(server, { ...creds(), method: "sendMsg", extension: "100008402", kind: "6", client: "1", phone: "1", time: "1" })).code).toBe(0)
    expect((await send(agent, { extension: "100008402", kind: "6", client: "1", phone: "1", time: "1" })).code).toBe(-5)
    expect((await callApi(server, { ...creds(), method: "sendMsg", extension: "100008499", kind: "6", client: "1", phone: "1" })).code).toBe(-11)
  })

  it("raises message.sent", async () => {
    const db = new Database(path.join(server.dataDir, "bridge.db"), { readonly: true })
    const n = (db.prepare("SELECT count(*) AS n FROM events WHERE type = 'message.sent'").get() as { n: number }).n
    db.close()
    expect(n).toBeGreaterThanOrEqual(50)
  })

  it.each([
    [{ client: "1", phone: "1" }, "parameter kind: is missing"],
    [{ kind: "9", client: "1", phone: "1" }, /^parameter kind: expected an integer from 1 to 7/],
    [{ kind: "1", client: "3", phone: "1" }, /^parameter client: expected one of 1, 2/],
    [{ kind: "1", client: "1", phone: "1", time: "soon" }, /^parameter time: expected Unix milliseconds/],
    [{ kind: "1", client: "1", phone: "1", lostTime: "-1" }, /^parameter lostTime/],
    [{ kind: "5", client: "1", phone: "1", lat: "95" }, /^parameter lat/]
  ])("refuses sendMsg %o with -14", async (fields, message) => {
    const body = await send(agent, fields as Record<string, string>)
    expect(body.code).toBe(-14)
    expect(body.message).toMatch(message)
  })

  it("refuses recvMsg without a valid client (-14) or above the page maximum (-12)", async () => {
    expect(await recv(agent, {})).toMatchObject({ code: -14, message: "parameter client: is missing" })
    expect(await recv(agent, { client: "1", limit: "5000" })).toMatchObject({ code: -12 })
  })
})
