/**
 * The box's upload against what else names recordings and calls: an app upload of the same
 * name is never overwritten nor removed, a callid the platform used as a cdrId is stored all the
 * same, and a call time no date can show is refused, not failed on every retry.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { uploadRecording } from "./support/Recordings.js"
import { asAdmin, startTestServer, type TestServer } from "./support/TestServer.js"

let server: TestServer
beforeAll(async () => {
  server = await startTestServer({ devices: [{ mac: "00:1A:2B:3C:4D:6F", enterprise: "100008", channels: { "1": "100008800" } }] })
})
afterAll(() => server.close())

const fields = (callid: string, startSecs = String(Math.floor(Date.now() / 1000))) => ({
  cmd: "upload",
  satellite: "00:1A:2B:3C:4D:6F",
  channel: "1",
  start_time_secs: startSecs,
  start_time_hangup: startSecs,
  direction: "out",
  callid_dialed: "013800138000",
  duration_secs: "5",
  id: "1",
  recorded: "1",
  callid
})

const boxUpload = async (f: Record<string, string>, bytes: Buffer) => {
  const fd = new FormData()
  for (const [k, v] of Object.entries(f)) fd.append(k, v)
  fd.append("file", new Blob([bytes]), "rec.wav")
  const res = await fetch(`${server.url}/voip/upload_record`, { method: "POST", body: fd })
  return (await res.json()) as { status: number; callid?: string; message?: string }
}

describe("a box upload beside other recordings and calls", () => {
  it("never overwrites nor removes an app upload that has the box's file name", async () => {
    const agents = Buffer.from("the agent's own recording")
    const app = await uploadRecording(server, agents, "box-88.wav")
    expect(app.code).toBe(0)
    const boxes = Buffer.from("the box's recording of call 88")
    const answer = await boxUpload(fields("88"), boxes)
    expect(answer.status).toBe(0)
    expect(fs.readFileSync(path.join(server.dataDir, "record", app.path!)).equals(agents)).toBe(true)
    const listed = await asAdmin(server, "findDialrecord", { scdrId: "88" })
    expect(listed.code).toBe(0)
  })

  it("stores a call whose callid the platform already used as a cdrId, once, and acknowledges its retry", async () => {
    const memo = JSON.stringify({ cdrId: 5550001, cdrExtension: "100008800", cdrTalktime: 3 })
    const push = await fetch(`${server.url}/api/voip.json`, { method: "POST", body: new URLSearchParams({ type: "3", peer: "1", phone: "13800138000", memo }) })
    expect(((await push.json()) as { code: number }).code).toBe(0)
    const bytes = Buffer.from("box recording 5550001")
    expect(await boxUpload(fields("5550001"), bytes)).toMatchObject({ status: 0, callid: "5550001" })
    expect(await boxUpload(fields("5550001"), bytes)).toMatchObject({ status: 0, callid: "5550001" })
    const rows = (await asAdmin(server, "findDialrecord", { limit: "100" })) as unknown as { rows: Array<{ cdrRecordFile?: string }> }
    expect(rows.rows.filter((r) => String(r.cdrRecordFile ?? "").includes("box-5550001")).length).toBe(1)
  })

  it("refuses a call time no date can show (-14 naming it), every time, storing nothing", async () => {
    for (let i = 0; i < 2; i++) {
      const answer = await boxUpload(fields("77001", "999999999999999"), Buffer.from("x"))
      expect(answer.status).toBe(-14)
      expect(answer.message).toContain("start_time_secs")
    }
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
    expect(fs.readdirSync(path.join(server.dataDir, "tmp-box"))).toEqual([])
  })
})
