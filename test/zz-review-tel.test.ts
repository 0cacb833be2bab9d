/**
 * Fresh-eyes review of issue 13's last parts (box-driver ends, upstream callback links, tasks
 * relayed upstream). Each test is a defect found in review and fails until it is fixed. Fake
 * platform over real HTTP, a real server, its SQLite file.
 */
import * as fs from "node:fs"
import * as http from "node:http"
import * as path from "node:path"
import Database from "better-sqlite3"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { addEnterpriseAdmin } from "./support/Enterprises.js"
import { eventually, startReceiver } from "./support/Receiver.js"
import { adminApi } from "./support/AdminApi.js"
import { asAdmin, startTestServer, tempDir, type TestServer } from "./support/TestServer.js"

const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64")
const platformCreds = { sa_user: "100088601", sa_password: "0DCBDF0AA187EA7498D8AB64604096FC" }
const PUBLIC = "http://bridge.example:8080/"
const query = <A>(s: TestServer, sql: string, ...params: ReadonlyArray<unknown>): Array<A> => {
  const db = new Database(path.join(s.dataDir, "bridge.db"), { readonly: true })
  try {
    return db.prepare(sql).all(...params) as Array<A>
  } finally {
    db.close()
  }
}

/**
 * A fake platform for one account (the bridge's configured sa_user): it keeps the tasks relayed
 * to it; findTaskMx answers the task asked for, or every task of the account; getTaskDetailPhone
 * hands out the account's next manual number. callbackPhone answers a new id.
 */
const fakePlatform = () =>
  new Promise<{ url: string; calls: Array<URLSearchParams>; close: () => Promise<void> }>((resolve) => {
    const calls: Array<URLSearchParams> = []
    let next = 800_000_001
    const tasks: Array<{ id: number; name: string; addType: string; numbers: Array<{ ctdId: number; phone: string; handed: boolean }> }> = []
    const detail = (t: (typeof tasks)[number], n: (typeof tasks)[number]["numbers"][number]) => ({
      ctdId: String(n.ctdId), ctd_ctkId: String(t.id), ctkName: t.name, ctdPhone: n.phone, ctdPhoneName: "", ctdStatus: 0, ctdKey: "", ctdText: "", ctdType: "",
      ctdExtension: "", exteName: "", ctdCallTime: "", ctdBeginTime: "", ctdSuccessTime: "", ctdEndTime: "",
      ctdTimes: "", ctdCallTalktimes: "", ctdTransferPhone: "", ctdTransferSuccessTime: "", ctdTransferEndTime: "", ctdTransferTimes: "", ctdSmsSendStatus: 0, ctdResultCode: 0,
      ctdResultValue: 0, ctdResultJson: "", ctd_ResultText: "", ctd_word: "", ctd_all_word: "", ctd_wordSum: 0, ctd_timeArea: "", ctdWavFile: "", ctdWavPaths: "", ctdSipRound: "",
      ctdReNum: 0, ctdWheelSum: 0, cnrReasonType: ""
    })
    const server = http.createServer((req, res) => {
      let body = ""
      req.on("data", (c: Buffer) => (body += c.toString("utf8")))
      req.on("end", () => {
        const p = new URLSearchParams(body)
        calls.push(p)
        const method = p.get("method")
        let answer: unknown = { code: -3, message: "unknown" }
        if (method === "callbackPhone") answer = { code: 0, message: "OK", id: next++ }
        if (method === "addTask") {
          const id = next++
          const data = JSON.parse(p.get("data") ?? "[]") as Array<{ phone: string }>
          tasks.push({ id, name: p.get("name") ?? "", addType: p.get("addType") ?? "", numbers: data.map((d) => ({ ctdId: next++, phone: d.phone, handed: false })) })
          answer = { code: 0, message: "OK", id }
        }
        if (method === "findTaskMx") {
          const asked = p.get("ctkId")
          const matched = tasks.filter((t) => asked === null || String(t.id) === asked)
          const data = matched.flatMap((t) => t.numbers.map((n) => detail(t, n)))
          answer = { code: 0, message: "OK", data, count: data.length, groupData: matched.map((t) => ({ ctkId: t.id, ctdStatus: 0, num: t.numbers.length })) }
        }
        if (method === "getTaskDetailPhone") {
          const manual = tasks.filter((t) => t.addType === "2").flatMap((t) => t.numbers).find((n) => !n.handed)
          if (manual) {
            manual.handed = true
            answer = { code: 0, message: "OK", success: true, phone: manual.phone, cflId: 0, ctdId: manual.ctdId }
          } else answer = { code: -11, message: "nothing waiting" }
        }
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(answer))
      })
    })
    server.listen(0, "127.0.0.1", () =>
      resolve({
        url: `http://127.0.0.1:${(server.address() as { port: number }).port}/voip/api/jsondata.html`,
        calls,
        close: () => new Promise((done) => { server.closeAllConnections(); server.close(() => done()) })
      })
    )
  })

describe("review: upstream driver", () => {
  let platform: Awaited<ReturnType<typeof fakePlatform>>
  let hooks: Awaited<ReturnType<typeof startReceiver>>
  let server: TestServer
  const captureFile = path.join(tempDir("vb-cap-"), "capture.jsonl")

  beforeAll(async () => {
    platform = await fakePlatform()
    hooks = await startReceiver()
    server = await startTestServer({
      forwarding: { pollIntervalMs: 50, circuitThreshold: 50, circuitCooldownMs: 300, retentionDays: 30 },
      capture: { file: captureFile },
      telephony: { driver: "upstream", upstream: { url: platform.url, ...platformCreds, timeoutMs: 2000, publicUrl: PUBLIC }, callbackDelivery: { scheduleMs: [0, 50] } }
    })
    await addEnterpriseAdmin(server, "200002800", "other-pw")
  })
  afterAll(async () => {
    await server.close()
    await platform.close()
    await hooks.close()
  })

  const push = (given: string, platformId: string, body: Record<string, string>) =>
    fetch(given.replace("http://bridge.example:8080", server.url).replace("{cbkId}", platformId), { method: "POST", body: new URLSearchParams(body) }).then(
      async (r) => ({ status: r.status, body: (await r.json()) as { code: number; message: string } })
    )
  /** a relayed callback: our id, the URL the platform was given, the platform's id */
  const relayedCallback = async (descPhone: string) => {
    const answer = await asAdmin(server, "callbackPhone", { sourcePhone: "02367073578", descPhone, callbackUrl: b64(`${hooks.url}?cbkId={cbkId}`) })
    expect(answer.code).toBe(0)
    const given = Buffer.from(platform.calls.at(-1)!.get("callbackUrl")!, "base64").toString("utf8")
    const [row] = query<{ upstream_id: string }>(server, "SELECT upstream_id FROM callbacks WHERE cbk_id = ?", answer.id)
    return { id: answer.id as number, given, platformId: row!.upstream_id }
  }

  // Finding 3: the per-callback key in the platform's push URL is a credential (it lets anyone
  // push statuses to the integrator), but a capture keeps it as sent.
  it("a capture does not keep the key of an upstream callback push", async () => {
    const { given, platformId } = await relayedCallback("13800138012")
    const key = new URL(given.replace("{cbkId}", "x")).searchParams.get("key")!
    expect((await push(given, platformId, { cbkId: platformId, cbkStatus: "1" })).body.code).toBe(0)
    const lines = await eventually(() => {
      const text = fs.existsSync(captureFile) ? fs.readFileSync(captureFile, "utf8") : ""
      return text.includes("/voip/upstream/callback/") ? text : undefined
    }, 5_000)
    expect(lines).not.toContain(key)
  })
})

// Finding 4: a box given to another enterprise forgets its waiting dials (DevicesStore
// FORGET_DIALS), but not box_dial_calls: a dial it had already taken is still matched by MAC,
// so the new owner's call ends the former owner's callback with the new owner's call record.
describe("review: box driver", () => {
  it("a box given to another enterprise: its new owner's call does not end the former owner's callback", async () => {
    const MAC = "00:1A:2B:3C:4D:9E"
    const server = await startTestServer({
      box: { diskAlertPercent: 90, dialTtlMs: 60_000, messageWaitMs: 0, offlineAfterMs: 90_000 },
      telephony: { driver: "box", box: { reportWithinMs: 60_000 } }
    })
    try {
      await addEnterpriseAdmin(server, "200002800", "other-pw")
      expect((await adminApi(server, "POST", "/devices", { mac: MAC, enterprise: "100008", channels: { "2": "100008800" } })).status).toBe(201)
      const cb = await asAdmin(server, "callbackPhone", { sourcePhone: "02367073578", descPhone: "13800138000" })
      expect(cb.code).toBe(0)
      const box = (params: Record<string, string>) =>
        fetch(`${server.url}/voip/upload_record`, { method: "POST", body: new URLSearchParams({ satellite: MAC, ...params }) }).then((r) => r.json() as Promise<{ status: number; data?: unknown[] }>)
      expect((await box({ cmd: "getCallList" })).data).toHaveLength(1)
      await eventually(() => query<{ status: number }>(server, "SELECT status FROM callbacks WHERE cbk_id = ?", cb.id)[0]?.status === 1)
      // the box changes hands
      expect((await adminApi(server, "PATCH", `/devices/${MAC}`, { enterprise: "200002", channels: { "2": "200002800" } })).status).toBe(200)
      // the new owner's agent calls the same customer on that channel
      const start = Math.floor(Date.now() / 1000)
      const up = await box({ cmd: "upload", channel: "2", direction: "out", callid_dialed: "13800138000", start_time_secs: String(start), start_time_hangup: String(start + 25),
        duration_secs: "20", recorded: "0", callid: "9301" })
      expect(up.status).toBe(0)
      expect(query<{ comp_number: string }>(server, "SELECT comp_number FROM cdrs WHERE platform_cdr_id = '9301'").map((r) => r.comp_number)).toEqual(["200002"])
      await new Promise((r) => setTimeout(r, 500))
      const [row] = query<{ cdr_id: string | null; times: number }>(server, "SELECT cdr_id, times FROM callbacks WHERE cbk_id = ?", cb.id)
      expect(row!.cdr_id).not.toBe("9301")
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
    } finally {
      await server.close()
    }
  }, 20_000)
})
