/**
 * End to end with the box simulator (`npm start -- box-sim`, run as a user runs it, in its own
 * process): sendTelCall → the simulated box picks the dial up → dials, talks, hangs up → uploads
 * → a call record, a downloadable recording and the forwarded events at a real receiver.
 */
import * as crypto from "node:crypto"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { toneWav } from "../src/box/Simulator.js"
import { runCli } from "./support/Process.js"
import { eventually, startReceiver } from "./support/Receiver.js"
import { asAdmin, creds, startTestServer, type TestServer } from "./support/TestServer.js"

const MAC = "00:1A:2B:3C:4D:8A"
type Event = { type: string; data: Record<string, unknown> }

let server: TestServer
let crm: Awaited<ReturnType<typeof startReceiver>>

beforeAll(async () => {
  crm = await startReceiver()
  server = await startTestServer({
    forwarding: { pollIntervalMs: 50, circuitThreshold: 5, circuitCooldownMs: 300, retentionDays: 30 },
    targets: [{ name: "crm", url: crm.url, events: ["box.*", "call.*"] }],
    devices: [{ mac: MAC, enterprise: "100008", channels: { "1": "100008800", "2": "100008800" } }]
  })
})
afterAll(async () => {
  await server.close()
  await crm.close()
})

const events = (type: string) => crm.received.map((r) => JSON.parse(r.body) as Event).filter((e) => e.type === type)
const sim = (...args: ReadonlyArray<string>) => runCli(["box-sim", "--to", server.url, ...args], {})

describe("box-sim against a bridge", () => {
  it("sendTelCall → the simulator dials it → call record, recording and events", async () => {
    expect(await asAdmin(server, "sendTelCall", { mac: MAC, channel: "2", phone: "13812345678" }, "form")).toMatchObject({ code: 0 })
    const run = await sim("--mac", "00-1a-2b-3c-4d-8a", "--channels", "2", "--dials", "1", "--talk", "1", "--heartbeat", "1", "--duration", "30")
    expect(run.code, run.stderr).toBe(0)
    expect(run.stdout).toMatch(/1 dials, 1 uploads, 0 errors/)

    const records = (await asAdmin(server, "findDialrecord", { phone: "13812345678" })) as unknown as { rows: Array<Record<string, unknown>> }
    expect(records.rows).toHaveLength(1)
    const row = records.rows[0]!
    expect(row).toMatchObject({ cdrExtension: "100008800", cdrPeer: 1, cdrTalktime: 1 })
    // the simulator's call ids are above 2^53: kept exact
    expect(String(row.cdrId)).toMatch(/^\d{19}$/)
    expect(BigInt(String(row.cdrId)) > BigInt(Number.MAX_SAFE_INTEGER)).toBe(true)

    const wav = toneWav(1)
    const q = new URLSearchParams(creds())
    const download = await fetch(`${server.url}/voip/api/client/download/record.json?id=${String(row.cdrId)}&${q}`)
    expect(download.status).toBe(200)
    expect(Buffer.from(await download.arrayBuffer()).equals(wav)).toBe(true)

    const recording = await eventually(() => events("box.recording")[0])
    expect(recording.data).toMatchObject({ mac: MAC, channel: 2, callid: String(row.cdrId), md5: crypto.createHash("md5").update(wav).digest("hex") })
    const hangup = await eventually(() => events("call.hangup")[0])
    expect(hangup.data).toMatchObject({ peer: 1, phone: "13812345678", cdrId: String(row.cdrId) })
    expect(await eventually(() => events("call.recording")[0])).toBeDefined()
    // the line as the box reported it: dialling, talking, idle again
    const states = await eventually(() => {
      const s = events("box.channel").filter((e) => e.data.ch === 2).map((e) => e.data.state)
      return s.includes(3) && s.includes(4) && s[s.length - 1] === 1 && s
    })
    expect(states.indexOf(3)).toBeLessThan(states.lastIndexOf(4))
    expect(events("box.dial.queued")[0]!.data).toMatchObject({ mac: MAC, channel: 2, phone: "13812345678" })
  }, 60_000)

  it("generates incoming calls at a rate, each uploaded once", async () => {
    const run = await sim("--mac", MAC, "--channels", "4", "--calls", "6", "--rate", "10", "--talk", "0.5")
    expect(run.code, run.stderr).toBe(0)
    expect(run.stdout).toMatch(/6 uploads \(6\/6 calls\), 0 errors/)
    const records = (await asAdmin(server, "findDialrecord", { limit: "100" })) as unknown as { rows: Array<Record<string, unknown>> }
    expect(records.rows.filter((r) => r.cdrPeer === 2)).toHaveLength(6)
  }, 60_000)

  it("says what is wrong: an unregistered box fails with 3001 named; bad options are refused with the usage", async () => {
    const unknown = await sim("--mac", "00:1A:2B:3C:4D:8F", "--duration", "1")
    expect(unknown.code).toBe(1)
    expect(unknown.stdout).toMatch(/status 3001/)
    for (const args of [["--mac", "nope"], ["--mac", MAC, "--channels", "0"], ["--mac", MAC, "--rate", "x"]]) {
      const bad = await runCli(["box-sim", "--to", server.url, ...args], {})
      expect(bad.code, args.join(" ")).toBe(2)
      expect(bad.stderr, args.join(" ")).toMatch(/^box-sim: --/)
    }
    const help = await runCli(["box-sim", "--help"], {})
    expect(help.code).toBe(0)
    expect(help.stdout).toMatch(/--calls N/)
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
  }, 60_000)
})
