/** Call flows (§2.10.1 findCallFlow) and their sounds (/voip/sound/{wfPath}): the example, the admin API, the config. */
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { toneWav } from "../src/shared/Wav.js"
import { adminApi } from "./support/AdminApi.js"
import { addEnterpriseAdmin } from "./support/Enterprises.js"
import { eventually, startReceiver } from "./support/Receiver.js"
import { asAdmin, callApi, creds, startTestServer, tempDir, type TestServer } from "./support/TestServer.js"

type Flow = Record<string, unknown> & { cflId: number; cflName: string; cflsend_wfPath: string }
const other = creds("200008800", "other-pw")

let server: TestServer
let rx: Awaited<ReturnType<typeof startReceiver>>

beforeAll(async () => {
  rx = await startReceiver()
  server = await startTestServer({
    forwarding: { pollIntervalMs: 50, circuitThreshold: 100, circuitCooldownMs: 100, retentionDays: 30 },
    targets: [{ name: "crm", url: rx.url, events: ["flow.*"] }]
  })
  await addEnterpriseAdmin(server, "200008800", "other-pw")
})
afterAll(async () => {
  await server.close()
  await rx.close()
})

const admin = (method: string, p: string, body?: unknown) => adminApi(server, method, p, body)
const flows = async (who = creds(), extra: Record<string, string> = {}) => (await callApi(server, { ...who, method: "findCallFlow", ...extra })) as unknown as { code: number; callflow: Array<Flow> }
const sound = (wfPath: string, who: Record<string, string> | null = creds()) => fetch(`${server.url}/voip/sound/${wfPath}${who ? `?${new URLSearchParams(who)}` : ""}`)

describe("findCallFlow", () => {
  it("has an example flow for a newcomer, its sound served at /voip/sound/{wfPath}", async () => {
    const a = await flows()
    expect(a.code).toBe(0)
    expect(a.callflow).toEqual([
      {
        cflId: expect.any(Number),
        cflName: "示例流程",
        ctkName: "",
        compGroupCallTimes: 30,
        cflsend_wfPath: "100008/welcome.wav",
        cflTransferMode: 3,
        cflTransferTimes: 30,
        cflIsRecord: 1,
        cflSendInterval: 0,
        cflSmsStatus: 0,
        cflSmsTims: 0,
        cflSmsContent: ""
      }
    ])
    const res = await sound("100008/welcome.wav")
    expect(res.status).toBe(200)
    expect(res.headers.get("content-type")).toMatch(/^audio\/wav/)
    expect(Buffer.from(await res.arrayBuffer()).equals(toneWav(3))).toBe(true)
  })

  it("serves a sound only to its enterprise (or an opened address): others, strangers and escapes get 404 or -2", async () => {
    expect((await flows(other)).callflow.map((f) => f.cflsend_wfPath)).toEqual(["200008/welcome.wav"])
    expect((await sound("100008/welcome.wav", other)).status).toBe(404)
    const anonymous = await sound("100008/welcome.wav", null)
    // coded, as every credentials failure of the contract is (HTTP 200)
    expect(((await anonymous.json()) as { code: number }).code).toBe(-2)
    for (const p of ["100008/..%2F200008/welcome.wav", "100008%2F..%2F200008%2Fwelcome.wav", "100008/%2e%2e/%2e%2e/bridge.db", "100008/nope.wav", "100008/%E0%A4%A"]) expect((await sound(p)).status, p).toBeGreaterThanOrEqual(400)
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
  })

  it("answers -11 for a task id: no outbound task is kept", async () => {
    expect(await flows(creds(), { ctdId: "12345" })).toMatchObject({ code: -11 })
    expect(await flows(creds(), { ctdId: "x" })).toMatchObject({ code: -14 })
  })
})

describe("the admin API: sounds and flows", () => {
  it("stores a sound, adds a flow playing it, changes and deletes it, raising flow.saved / flow.deleted", async () => {
    const wav = toneWav(1, 660)
    expect(await admin("PUT", "/enterprises/100008/sounds/促销.wav", { base64: wav.toString("base64") })).toMatchObject({ status: 200, body: { code: 0, wfPath: "100008/促销.wav" } })
    expect(Buffer.from(await (await sound(encodeURIComponent("100008") + "/" + encodeURIComponent("促销.wav"))).arrayBuffer()).equals(wav)).toBe(true)
    const created = await admin("POST", "/enterprises/100008/flows", { name: "双十一促销", sound: "促销.wav", transferMode: 4, isRecord: 2, smsStatus: 3, smsTimes: 10, smsContent: "感谢接听" })
    expect(created.status).toBe(201)
    const flow = (created.body as { flow: { id: number } }).flow
    expect((await flows()).callflow.find((f) => f.cflId === flow.id)).toMatchObject({
      cflName: "双十一促销",
      cflsend_wfPath: "100008/促销.wav",
      cflTransferMode: 4,
      cflTransferTimes: 30,
      cflIsRecord: 2,
      cflSmsStatus: 3,
      cflSmsTims: 10,
      cflSmsContent: "感谢接听"
    })
    expect(await admin("PATCH", `/enterprises/100008/flows/${flow.id}`, { transferTimes: 15, sound: "" })).toMatchObject({ status: 200, body: { flow: { transferTimes: 15, sound: "", wfPath: "" } } })
    expect(await admin("DELETE", `/enterprises/100008/flows/${flow.id}`)).toMatchObject({ status: 200 })
    expect((await flows()).callflow.map((f) => f.cflId)).not.toContain(flow.id)
    const seen = await eventually(() => {
      const types = rx.received.map((r) => JSON.parse(r.body) as { type: string; data: { id: number } }).filter((e) => e.data.id === flow.id).map((e) => e.type)
      return types.length === 3 && types
    })
    expect(seen).toEqual(["flow.saved", "flow.saved", "flow.deleted"])
  })

  it("refuses what cannot stand: 400 for a bad name, sound or body, 404 for no such enterprise or flow, 409 for a name taken — storing nothing", async () => {
    const before = (await flows()).callflow.length
    expect(await admin("PUT", "/enterprises/100008/sounds/..%2Fevil.wav", { base64: "AAAA" })).toMatchObject({ status: 400, body: { code: -14 } })
    expect(await admin("PUT", "/enterprises/100008/sounds/evil.exe", { base64: "AAAA" })).toMatchObject({ status: 400, body: { code: -14 } })
    expect(await admin("PUT", "/enterprises/100008/sounds/ok.wav", { base64: "not base64!" })).toMatchObject({ status: 400, body: { code: -14 } })
    expect(await admin("PUT", "/enterprises/999999/sounds/ok.wav", { base64: "AAAA" })).toMatchObject({ status: 404, body: { code: -11 } })
    expect(await admin("POST", "/enterprises/100008/flows", { name: "无声", sound: "missing.wav" })).toMatchObject({ status: 400, body: { code: -14 } })
    expect(await admin("POST", "/enterprises/100008/flows", { name: "坏", transferMode: 9 })).toMatchObject({ status: 400, body: { code: -14 } })
    expect(await admin("POST", "/enterprises/100008/flows", { name: "" })).toMatchObject({ status: 400, body: { code: -14 } })
    expect(await admin("POST", "/enterprises/100008/flows", { name: "示例流程" })).toMatchObject({ status: 409, body: { code: -10 } })
    expect(await admin("PATCH", "/enterprises/100008/flows/1", { transferTimes: 5 })).toMatchObject({ status: 404, body: { code: -11 } })
    expect(await admin("DELETE", "/enterprises/100008/flows/1")).toMatchObject({ status: 404, body: { code: -11 } })
    expect(await admin("GET", "/enterprises/1000/flows")).toMatchObject({ status: 400, body: { code: -14 } })
    expect((await flows()).callflow.length).toBe(before)
    expect(fs.existsSync(path.join(server.dataDir, "evil.wav"))).toBe(false)
  })

  it("the example never overwrites a sound of the same name stored before it was made", async () => {
    // a third enterprise whose operator stores welcome.wav before anyone lists its flows
    await addEnterpriseAdmin(server, "300008800", "third-pw")
    const own = toneWav(0.25, 330)
    expect(await admin("PUT", "/enterprises/300008/sounds/welcome.wav", { base64: own.toString("base64") })).toMatchObject({ status: 200 })
    expect((await flows(creds("300008800", "third-pw"))).callflow.map((f) => f.cflsend_wfPath)).toEqual(["300008/welcome.wav"])
    const res = await sound("300008/welcome.wav", creds("300008800", "third-pw"))
    expect(Buffer.from(await res.arrayBuffer()).equals(own)).toBe(true)
  })

  it("a deleted example stays deleted", async () => {
    const [example] = (await flows(other)).callflow
    expect(await adminApi(server, "DELETE", `/enterprises/200008/flows/${example!.cflId}`)).toMatchObject({ status: 200 })
    expect((await flows(other)).callflow).toEqual([])
  })
})

describe("flows from config", () => {
  it("registers the config's flows (copying their sound files) at every start, refusing one that cannot stand and serving the rest", async () => {
    const dir = tempDir()
    const file = path.join(dir, "greeting.wav")
    fs.writeFileSync(file, toneWav(0.5, 550))
    const s = await startTestServer({
      callFlows: [
        { enterprise: "100008", name: "回访流程", soundFile: file, transferMode: 2, smsStatus: 1, smsContent: "您好" },
        { enterprise: "999999", name: "无主流程" },
        { enterprise: "100008", name: "缺声音", soundFile: path.join(dir, "missing.wav") }
      ]
    })
    try {
      const listed = (await callApi(s, { ...creds(), method: "findCallFlow" })) as unknown as { callflow: Array<Flow> }
      expect(listed.callflow.map((f) => [f.cflName, f.cflsend_wfPath, f.cflTransferMode])).toEqual([
        ["回访流程", "100008/greeting.wav", 2],
        ["示例流程", "100008/welcome.wav", 3]
      ])
      const res = await fetch(`${s.url}/voip/sound/100008/greeting.wav?${new URLSearchParams(creds())}`)
      expect(Buffer.from(await res.arrayBuffer()).equals(toneWav(0.5, 550))).toBe(true)
      expect(await asAdmin(s, "findCallFlow")).toMatchObject({ code: 0 })
      // the config's own: not changed or removed from the admin API (the next start would undo it)
      const configured = listed.callflow.find((f) => f.cflName === "回访流程")!
      expect(await adminApi(s, "PATCH", `/enterprises/100008/flows/${configured.cflId}`, { transferTimes: 5 })).toMatchObject({ status: 400, body: { message: expect.stringContaining("config file") } })
      expect(await adminApi(s, "DELETE", `/enterprises/100008/flows/${configured.cflId}`)).toMatchObject({ status: 400, body: { code: -14 } })
    } finally {
      await s.close()
    }
  })
})
