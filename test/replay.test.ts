/**
 * Capture (src/capture) and replay (src/replay): real bridges over real HTTP, capture files on
 * disk, replays into other bridges and into --fresh ones, and small fake servers where the
 * test needs an answer no bridge gives (a broken one for --validate, a slow one for ordering).
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { replayCommand } from "../src/replay/Cli.js"
import { makeMatcher } from "../src/replay/Diff.js"
import { type Entry, fromCurl } from "../src/replay/Input.js"
import { replay } from "../src/replay/Replay.js"
import { toneWav } from "../src/box/Simulator.js"
import { adminApi, adminToken } from "./support/AdminApi.js"
import { runCli } from "./support/Process.js"
import { rawRequest } from "./support/Raw.js"
import { startReceiver } from "./support/Receiver.js"
import { ADMIN, asAdmin, callApi, creds, md5, startTestServer, tempDir, type TestServer } from "./support/TestServer.js"

const servers: Array<TestServer> = []
afterAll(async () => {
  for (const s of servers) await s.close()
})
const start = async (overrides: Record<string, unknown> = {}) => {
  const s = await startTestServer(overrides)
  servers.push(s)
  return s
}
interface Line {
  readonly method: string
  readonly path: string
  readonly query: string
  readonly headers: Record<string, string>
  readonly body: { readonly text: string; readonly base64: string; readonly bytes: number; readonly truncated?: boolean }
  readonly answer: { readonly status: number; readonly body: { readonly text: string } }
  readonly ms: number
}
const captureTo = (file: string, extra: Record<string, unknown> = {}) => ({ capture: { file, ...extra } })
const lines = (file: string) =>
  fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Line)
/** until the capture has written `n` lines (they are written after the answers) */
const waitLines = async (file: string, n: number) => {
  for (let i = 0; i < 200; i++) {
    if (fs.existsSync(file) && lines(file).length >= n) return lines(file)
    await new Promise((r) => setTimeout(r, 10))
  }
  return fs.existsSync(file) ? lines(file) : []
}

const run = async (args: ReadonlyArray<string>) => {
  let out = ""
  let err = ""
  const code = await replayCommand(args, { out: (t) => (out += `${t}\n`), err: (t) => (err += t), tty: false })
  return { code, out, err }
}

const curl = (phone: string) => `curl 'http://bridge/api/voip.json?type=1&peer=2&phone=${phone}'`

/**
 * A server that drops every connection's second request unanswered, as an idle time-out closing
 * a kept-alive connection just as the client reuses it; first requests answered after `delayMs`.
 */
const droppingServer = async (delayMs: number) => {
  const served = new WeakMap<object, number>()
  let answered = 0
  const server = http.createServer((req, res) => {
    const n = (served.get(req.socket) ?? 0) + 1
    served.set(req.socket, n)
    if (n > 1) return void req.socket.destroy()
    answered++
    setTimeout(() => res.writeHead(200, { "content-type": "application/json" }).end('{"code":0}'), delayMs)
  })
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    answered: () => answered,
    close: async () => {
      server.closeAllConnections()
      await new Promise((ok) => server.close(ok))
    }
  }
}

/** A realistic session against a bridge: customers created, changed, listed, deleted; a push; a box registered and heard. */
const realisticTraffic = async (server: TestServer) => {
  const created = await asAdmin(server, "saveCustomer", { custName: "张三", "cpPhone[0]": "13800138000" }, "form")
  expect(created.code).toBe(0)
  const custId = String(created.custId)
  expect((await asAdmin(server, "saveCustomer", { custId, custName: "张三丰" })).code).toBe(0)
  expect((await asAdmin(server, "getcustomer", { phoneNum: "13800138000" })).code).toBe(0)
  const login = await asAdmin(server, "getExtension", {})
  expect(login.code).toBe(0)
  // a work-order style call by the session the login handed out (followed on replay like an id)
  expect((await callApi(server, { sessionId: String(login.sessionId), method: "findDialrecord" })).code).toBe(0)
  expect((await fetch(`${server.url}/api/voip.json?type=1&peer=2&phone=13800138000`)).status).toBe(200)
  expect((await adminApi(server, "POST", "/devices", { mac: "00:1A:2B:3C:4D:5E", enterprise: "100008", channels: { "1": "100008800" } })).status).toBe(201)
  const beat = await fetch(`${server.url}/voip/upload_record`, {
    method: "POST",
    body: new URLSearchParams({ cmd: "channelstatus", satellite: "00:1A:2B:3C:4D:5E", status: JSON.stringify({ channels: [{ ch: 1, state: 1 }] }) })
  })
  expect(beat.status).toBe(200)
  expect((await asAdmin(server, "delcustomer", { custId })).code).toBe(0)
  return custId
}

describe("capture", () => {
  it("records every request and its answer as a JSON line, credentials redacted, binary bodies as base64", async () => {
    const dir = tempDir()
    const file = path.join(dir, "cap.jsonl")
    const server = await start(captureTo(file))
    await asAdmin(server, "getExtension", {})
    const fd = new FormData()
    fd.append("cmd", "upload")
    fd.append("satellite", "00:11:22:33:44:55")
    fd.append("file", new Blob([toneWav(0.05)]), "a.wav")
    await fetch(`${server.url}/voip/upload_record`, { method: "POST", body: fd })
    await adminApi(server, "GET", "/targets")
    const got = await waitLines(file, 3)
    expect(got).toHaveLength(3)
    const [login, upload, admin] = got
    expect(login!.method).toBe("GET")
    expect(login!.path).toBe("/voip/api/jsondata.html")
    expect(login!.query).toContain(`sa_user=${ADMIN.user}`)
    expect(login!.query).not.toContain(md5(ADMIN.password))
    expect(login!.query).toMatch(/sa_password=redacted-[0-9a-f]{12}/)
    expect(login!.answer.status).toBe(200)
    const answer = JSON.parse(login!.answer.body.text)
    expect(answer.code).toBe(0)
    // the session handed out is a secret too
    expect(answer.sessionId).toMatch(/^redacted-/)
    expect(typeof login!.ms).toBe("number")
    expect(upload!.body.base64).toBeTypeOf("string")
    expect(Buffer.from(upload!.body.base64, "base64").includes(toneWav(0.05).subarray(44, 200))).toBe(true)
    expect(admin!.headers.authorization).toMatch(/^Bearer redacted-/)
    expect(JSON.stringify(got)).not.toContain(adminToken(server))
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
  })

  it("hides a receiver's token (query or header) and a password in a multipart body", async () => {
    const file = path.join(tempDir(), "cap.jsonl")
    const token = "receiver-secret-1234"
    const server = await start({ ...captureTo(file), receive: { voip: { path: "/api/voip.json", token, allowFrom: [] } } })
    expect((await fetch(`${server.url}/api/voip.json?type=1&peer=2&phone=13800138000&token=${token}`)).status).toBe(200)
    expect((await fetch(`${server.url}/api/voip.json?type=1&peer=2&phone=13800138001`, { headers: { "x-bridge-token": token } })).status).toBe(200)
    const fd = new FormData()
    for (const [k, v] of Object.entries({ ...creds(), method: "getExtension" })) fd.append(k, v)
    expect(((await (await fetch(`${server.url}/voip/api/jsondata.html`, { method: "POST", body: fd })).json()) as { code: number }).code).toBe(0)
    const got = await waitLines(file, 3)
    const text = JSON.stringify(got)
    expect(text).not.toContain(token)
    expect(text).not.toContain(md5(ADMIN.password))
    expect(got[0]!.query).toMatch(/token=redacted-/)
    expect(got[1]!.headers["x-bridge-token"]).toMatch(/^redacted-/)
    expect(got[2]!.body.text).toMatch(/name="sa_password"\r\n\r\nredacted-[0-9a-f]{12}\r\n/)
  })

  it("keeps credentials when keepCredentials is set", async () => {
    const file = path.join(tempDir(), "cap.jsonl")
    const server = await start(captureTo(file, { keepCredentials: true }))
    await asAdmin(server, "getExtension", {})
    const [line] = await waitLines(file, 1)
    expect(line!.query).toContain(`sa_password=${md5(ADMIN.password)}`)
  })

  it("cuts a body at maxBodyBytes and says so; replay refuses to send a cut request", async () => {
    const file = path.join(tempDir(), "cap.jsonl")
    const server = await start(captureTo(file, { maxBodyBytes: 200 }))
    const res = await fetch(`${server.url}/voip/api/jsondata.html`, { method: "POST", body: new URLSearchParams({ method: "getExtension", ...creds(), pad: "x".repeat(1000) }) })
    expect(res.status).toBe(200)
    const [line] = await waitLines(file, 1)
    expect(line!.body).toMatchObject({ truncated: true })
    expect(line!.body.bytes).toBeGreaterThan(1000)
    expect(line!.body.text.length).toBe(200)
    const r = await run([file, "--to", server.url])
    expect(r.err).toContain("cap.jsonl:1: the request's body was cut")
    expect(r.code).toBe(2)
  })

  it("rotates the file by size", async () => {
    const file = path.join(tempDir(), "cap.jsonl")
    const server = await start(captureTo(file, { maxBytes: 3000 }))
    for (let i = 0; i < 12; i++) await asAdmin(server, "getExtension", {})
    await waitLines(file, 1)
    await new Promise((r) => setTimeout(r, 100))
    expect(fs.existsSync(`${file}.1`)).toBe(true)
    expect(fs.statSync(file).size).toBeLessThanOrEqual(3000)
    const all = [file, `${file}.1`, `${file}.2`, `${file}.3`].filter((f) => fs.existsSync(f)).flatMap(lines)
    expect(all.length).toBeGreaterThan(3)
    for (const l of all) expect(l.path).toBe("/voip/api/jsondata.html")
  })

  it("a capture that cannot be written never fails a request", async () => {
    const dir = tempDir()
    fs.writeFileSync(path.join(dir, "not-a-dir"), "x")
    const server = await start(captureTo(path.join(dir, "not-a-dir", "cap.jsonl")))
    for (let i = 0; i < 3; i++) expect((await asAdmin(server, "getExtension", {})).code).toBe(0)
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
    const status = await adminApi(server, "POST", "/capture", { enabled: true })
    expect(status.status).toBe(200)
    expect((status.body.capture as { failures: number }).failures).toBeGreaterThan(0)
  })

  it("is switched on and off by the admin API and downloaded from it", async () => {
    const server = await start()
    await asAdmin(server, "getExtension", {})
    const on = await adminApi(server, "POST", "/capture", { enabled: true })
    expect(on.body).toMatchObject({ code: 0, capture: { enabled: true, file: path.join(server.dataDir, "capture.jsonl") } })
    await asAdmin(server, "getExtension", {})
    const off = await adminApi(server, "POST", "/capture", { enabled: false })
    expect(off.body).toMatchObject({ code: 0, capture: { enabled: false } })
    await asAdmin(server, "getExtension", {})
    const res = await fetch(`${server.url}/admin/api/capture`, { headers: { authorization: `Bearer ${adminToken(server)}` } })
    expect(res.status).toBe(200)
    expect(res.headers.get("content-type")).toContain("application/x-ndjson")
    const got = (await res.text()).split("\n").filter(Boolean).map((l) => JSON.parse(l) as { path: string })
    // the getExtension between on and off (the POST that switches it off ends it, unrecorded)
    expect(got.map((l) => l.path)).toEqual(["/voip/api/jsondata.html"])
    expect((await fetch(`${server.url}/admin/api/capture`)).status).toBe(401)
    const bad = await adminApi(server, "POST", "/capture", { enabled: "yes" })
    expect(bad.status).toBe(400)
  })
})

describe("replay", () => {
  it("captured realistic traffic replays into --fresh with exit 0, ids followed", async () => {
    const file = path.join(tempDir(), "cap.jsonl")
    const server = await start(captureTo(file))
    // customers made before: the captured custIds are not the ones a fresh store issues
    for (let i = 0; i < 3; i++) await asAdmin(server, "saveCustomer", { custName: `x${i}` })
    const before = (await waitLines(file, 3)).length
    await realisticTraffic(server)
    const all = await waitLines(file, before + 9)
    const tail = path.join(path.dirname(file), "tail.jsonl")
    fs.writeFileSync(tail, all.slice(before).map((l) => JSON.stringify(l)).join("\n") + "\n")
    const report = path.join(path.dirname(file), "report.json")
    const har = path.join(path.dirname(file), "out.har")
    const r = await run([tail, "--fresh", "--report", report, "--har-out", har, "--validate"])
    expect(r.out).toContain("9 sent: 9 same, 0 different, 0 failed")
    expect(r.code).toBe(0)
    const json = JSON.parse(fs.readFileSync(report, "utf8"))
    expect(json.totals).toMatchObject({ sent: 9, same: 9, different: 0, errors: 0, problems: 0 })
    expect(json.latency.replayed.p50).toBeTypeOf("number")
    const harDoc = JSON.parse(fs.readFileSync(har, "utf8"))
    expect(harDoc.log.version).toBe("1.2")
    expect(harDoc.log.entries).toHaveLength(9)
    // the update was sent with the custId the fresh bridge issued, not the captured one
    const update = harDoc.log.entries[1].request
    const created = JSON.parse(harDoc.log.entries[0].response.content.text)
    expect(new URL(update.url).searchParams.get("custId")).toBe(String(created.custId))
    expect(String(created.custId)).not.toBe(JSON.parse(all[before]!.answer.body.text).custId.toString())
  })

  it("an extension created in the capture logs in on replay with the password it was given (hidden in the capture)", async () => {
    const file = path.join(tempDir(), "cap.jsonl")
    const server = await start(captureTo(file))
    expect((await asAdmin(server, "addExtension", { exteExtension: "401", exteName: "新人", extePassword: "pw-123456" })).code).toBe(0)
    expect((await callApi(server, { ...creds("100008401", "pw-123456"), method: "getExtension" })).code).toBe(0)
    const got = await waitLines(file, 2)
    expect(JSON.stringify(got)).not.toContain("pw-123456")
    const r = await run([file, "--fresh"])
    expect(r.out).toContain("2 sent: 2 same")
    expect(r.code).toBe(0)
  })

  it("a capture replayed into another bridge reproduces its state: customers, boxes, events, deliveries", async () => {
    const file = path.join(tempDir(), "cap.jsonl")
    const ra = await startReceiver()
    const rb = await startReceiver()
    const target = (url: string) => ({ targets: [{ name: "crm", url, events: ["call.*", "box.*"] }], forwarding: { pollIntervalMs: 50, circuitThreshold: 5, circuitCooldownMs: 30_000, retentionDays: 30 } })
    const a = await start({ ...captureTo(file), ...target(ra.url) })
    await asAdmin(a, "saveCustomer", { custName: "留下", "cpPhone[0]": "13900139000" })
    await realisticTraffic(a)
    await waitLines(file, 10)
    const b = await start(target(rb.url))
    const r = await run([file, "--to", b.url, "--credentials", `${ADMIN.user}:${md5(ADMIN.password)}`, "--admin-token", adminToken(b)])
    // what the replay said, shown when it did not end well
    expect(r.code, `${r.out}${r.err}`).toBe(0)
    const names = async (s: TestServer) => ((await asAdmin(s, "getCustomersPage", { start: "0", limit: "10" })).rows_customer as Array<{ custName: string }>).map((c) => c.custName)
    expect(await names(b)).toEqual(await names(a))
    const devices = async (s: TestServer) => ((await adminApi(s, "GET", "/devices")).body.items as Array<{ mac: string; channels: unknown; presence: string }>).map((d) => [d.mac, d.channels, d.presence])
    expect(await devices(b)).toEqual(await devices(a))
    const events = async (s: TestServer) => ((await adminApi(s, "GET", "/events")).body.items as Array<{ type: string }>).map((e) => e.type).sort()
    expect(await events(b)).toEqual(await events(a))
    expect((await events(a)).length).toBeGreaterThan(0)
    const delivered = (rx: typeof ra) => rx.received.map((x) => (JSON.parse(x.body) as { type: string }).type).sort()
    for (let i = 0; i < 100 && (ra.received.length === 0 || rb.received.length < ra.received.length); i++) await new Promise((res) => setTimeout(res, 50))
    expect(ra.received.length).toBeGreaterThan(0)
    expect(delivered(rb)).toEqual(delivered(ra))
    await ra.close()
    await rb.close()
  })

  it("a kept-alive connection the server closed as it was reused is not an error: the request goes again on a new one", async () => {
    const server = await droppingServer(0)
    try {
      const file = path.join(tempDir(), "calls.sh")
      fs.writeFileSync(file, ["a", "b", "c"].map((p) => curl(`1380013800${p.charCodeAt(0) % 10}`)).join("\n") + "\n")
      const r = await run([file, "--to", server.url])
      expect(r.code, `${r.out}${r.err}`).toBe(0)
      expect(r.out).toContain("3 sent")
      expect(server.answered()).toBe(3)
    } finally {
      await server.close()
    }
  })

  it("with --concurrency 2, the resend goes on a new connection, not on the other idle kept-alive one (closed too)", async () => {
    // the first two (different lanes, sent at once) are answered together: two connections open
    const server = await droppingServer(50)
    try {
      const file = path.join(tempDir(), "calls.sh")
      fs.writeFileSync(file, ["13800138001", "13800138002", "13800138003"].map(curl).join("\n") + "\n")
      const r = await run([file, "--to", server.url, "--concurrency", "2"])
      expect(r.code, `${r.out}${r.err}`).toBe(0)
      expect(server.answered()).toBe(3)
    } finally {
      await server.close()
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
    await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
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
      // agent.destroy() resets the reused socket: that reset is not taken for the server's idle
      // close, and the request the user just interrupted is not sent once more
      expect(arrivals.get("13800138002")).toBe(1)
      expect(results.length).toBe(2)
    } finally {
      for (const res of held.splice(0)) res.end()
      server.closeAllConnections()
      await new Promise((ok) => server.close(ok))
    }
  })

  it("--fresh --config: the throwaway bridge runs that configuration (its target receives the replay's events)", async () => {
    const rx = await startReceiver()
    const dir = tempDir()
    const config = path.join(dir, "bridge.json")
    fs.writeFileSync(config, JSON.stringify({ targets: [{ name: "crm", url: rx.url, events: ["call.*"] }], forwarding: { pollIntervalMs: 50, circuitThreshold: 5, circuitCooldownMs: 30_000, retentionDays: 30 } }))
    const file = path.join(dir, "calls.sh")
    fs.writeFileSync(file, "curl 'http://bridge/api/voip.json?type=1&peer=2&phone=13800138000'\n")
    const r = await run([file, "--fresh", "--config", config])
    expect(r.code).toBe(0)
    // the fresh bridge sends its waiting deliveries before it goes
    expect(rx.received.map((x) => (JSON.parse(x.body) as { type: string }).type)).toEqual(["call.dialing"])
    await rx.close()
    expect((await run([file, "--fresh", "--config", path.join(dir, "missing.json")])).code).toBe(2)
  })

  it("reports the differences of a changed server, exit 1; --ignore and --only narrow them", async () => {
    const file = path.join(tempDir(), "cap.jsonl")
    const a = await start(captureTo(file))
    await asAdmin(a, "saveCustomer", { custName: "甲" })
    const [saved] = await waitLines(file, 1)
    await asAdmin(a, "getCustomersPage", { start: "0", limit: "10" })
    await waitLines(file, 2)
    // b holds another customer before: the page differs in name and total
    const b = await start()
    await asAdmin(b, "saveCustomer", { custName: "乙" })
    const list = path.join(path.dirname(file), "list.jsonl")
    fs.writeFileSync(list, `${JSON.stringify(lines(file)[1])}\n`)
    const auth = ["--credentials", `${ADMIN.user}:${md5(ADMIN.password)}`]
    const r = await run([list, "--to", b.url, ...auth])
    expect(r.code).toBe(1)
    expect(r.out).toMatch(/getCustomersPage/)
    expect(r.out).toMatch(/custName: "甲" → "乙"/)
    expect(r.out).not.toMatch(/custId/)
    expect((await run([list, "--to", b.url, ...auth, "--ignore", "custName"])).code).toBe(0)
    const only = await run([list, "--to", b.url, ...auth, "--only", "recordTotal"])
    expect(only.code).toBe(0)
    // ids compared when the defaults are off
    expect((await run([list, "--to", b.url, ...auth, "--ignore", "custName", "--no-default-ignores"])).out).toMatch(/rows_customer\[0\]\.custId: /)
    expect(saved).toBeDefined()
  })

  it("replays a browser's HAR file (absolute URLs, HTTP/2 pseudo-headers, form postData)", async () => {
    const server = await start()
    const har = {
      log: {
        version: "1.2",
        creator: { name: "Firefox", version: "128" },
        entries: [
          {
            startedDateTime: "2026-11-27T10:00:00.000Z",
            time: 12,
            request: {
              method: "POST",
              url: "https://platform.example.com/voip/api/jsondata.html",
              httpVersion: "HTTP/2",
              headers: [
                { name: ":authority", value: "platform.example.com" },
                { name: "content-type", value: "application/x-www-form-urlencoded" },
                { name: "host", value: "platform.example.com" }
              ],
              postData: { mimeType: "application/x-www-form-urlencoded", params: [{ name: "method", value: "saveCustomer" }, { name: "sa_user", value: ADMIN.user }, { name: "sa_password", value: "redacted-000000000000" }, { name: "custName", value: "王五" }] }
            },
            response: { status: 200, headers: [{ name: "content-type", value: "application/json" }], content: { mimeType: "application/json", text: JSON.stringify({ code: 0, message: "OK", success: true, custId: 77 }) } }
          },
          {
            startedDateTime: "2026-11-27T10:00:01.000Z",
            time: 8,
            request: { method: "GET", url: `https://platform.example.com/voip/api/jsondata.html?method=setCustomerLock&custId=77&custIsLock=1&sa_user=${ADMIN.user}&sa_password=x`, headers: [] },
            response: { status: 200, headers: [], content: { mimeType: "application/json", text: "" } }
          },
          { request: { method: "GET" } }
        ]
      }
    }
    const file = path.join(tempDir(), "browser.har")
    fs.writeFileSync(file, JSON.stringify(har))
    const out = path.join(path.dirname(file), "out.har")
    const r = await run([file, "--to", server.url, "--credentials", `${ADMIN.user}:${md5(ADMIN.password)}`, "--har-out", out])
    // the third entry has no url: reported by its index and skipped, the run goes on (exit 2)
    expect(r.err).toContain("browser.har#entry 2")
    expect(r.code).toBe(2)
    const entries = JSON.parse(fs.readFileSync(out, "utf8")).log.entries
    expect(entries).toHaveLength(2)
    const saved = JSON.parse(entries[0].response.content.text)
    expect(saved.code).toBe(0)
    // custId 77 of the HAR followed to the new one
    const got = JSON.parse(entries[1].response.content.text)
    expect(got.code).toBe(0)
    expect(new URL(entries[1].request.url).searchParams.get("custId")).toBe(String(saved.custId))
  })

  it("replays curl lines; a bad line is reported with its number and skipped (exit 2)", async () => {
    const server = await start()
    const file = path.join(tempDir(), "calls.sh")
    fs.writeFileSync(
      file,
      [
        `curl -s '${server.url}/voip/api/jsondata.html?method=getExtension&sa_user=${ADMIN.user}&sa_password=${md5(ADMIN.password)}'`,
        "# a comment",
        `curl -X POST "${server.url}/voip/api/jsondata.html" \\`,
        `  -H 'Content-Type: application/x-www-form-urlencoded' \\`,
        `  --data-urlencode 'custName=赵 六' -d method=saveCustomer -d sa_user=${ADMIN.user} -d sa_password=${md5(ADMIN.password)}`,
        `curl 'unterminated`,
        `wget ${server.url}/healthz`
      ].join("\n")
    )
    const r = await run([file, "--to", server.url])
    expect(r.err).toContain("calls.sh:6")
    expect(r.err).toContain("calls.sh:7")
    expect(r.out).toContain("2 sent")
    expect(r.code).toBe(2)
    const page = await asAdmin(server, "getCustomersPage", { start: "0", limit: "10" })
    expect(JSON.stringify(page)).toContain("赵 六")
  })

  it("a bad JSONL line is skipped with its line number; a network failure is counted; exit 2", async () => {
    const server = await start()
    const file = path.join(tempDir(), "cap.jsonl")
    const good = { v: 1, time: "2026-11-27T10:00:00Z", method: "GET", path: "/healthz", query: "", headers: {}, answer: { status: 200, headers: {} }, ms: 1 }
    fs.writeFileSync(file, [JSON.stringify(good), "{not json", JSON.stringify({ method: "GET" }), JSON.stringify(good)].join("\n"))
    const r = await run([file, "--to", server.url, "--only", "(status)"])
    expect(r.err).toContain("cap.jsonl:2")
    expect(r.err).toContain("cap.jsonl:3")
    expect(r.out).toContain("2 sent")
    expect(r.code).toBe(2)
    const clean = path.join(path.dirname(file), "clean.jsonl")
    fs.writeFileSync(clean, JSON.stringify(good))
    expect((await run([clean, "--to", server.url, "--only", "(status)"])).code).toBe(0)
    const down = await run([clean, "--to", "http://127.0.0.1:9"])
    expect(down.out).toContain("1 failed")
    expect(down.code).toBe(2)
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
  })

  it("--validate finds a broken answer of a fake server, naming method and field", async () => {
    const fake = http.createServer((req, res) => {
      res.setHeader("content-type", "application/json")
      const method = new URL(req.url!, "http://x").searchParams.get("method")
      if (method === "getCustomersPage") res.end(JSON.stringify({ code: 0, message: "OK", success: true, total: "3", rows: [], extra: 1 }))
      else res.end(JSON.stringify({ code: -99, message: "odd" }))
    })
    await new Promise<void>((r) => fake.listen(0, "127.0.0.1", r))
    const url = `http://127.0.0.1:${(fake.address() as AddressInfo).port}`
    const file = path.join(tempDir(), "calls.sh")
    fs.writeFileSync(file, `curl '${url}/voip/api/jsondata.html?method=getCustomersPage&start=0&limit=10'\ncurl '${url}/voip/api/jsondata.html?method=getExtension'\n`)
    const report = path.join(path.dirname(file), "r.json")
    const r = await run([file, "--to", url, "--validate", "--report", report])
    fake.close()
    expect(r.code).toBe(1)
    expect(r.out).toMatch(/invalid getCustomersPage total: /)
    expect(r.out).toMatch(/invalid getCustomersPage extra: /)
    expect(r.out).toMatch(/invalid getExtension code: -99 is not a code/)
    const json = JSON.parse(fs.readFileSync(report, "utf8"))
    expect(json.totals.problems).toBe(2)
  })

  it("keeps one session's requests in order under --concurrency while other sessions overlap", async () => {
    const arrivals: Array<{ user: string; n: string; at: number; done?: number }> = []
    let open = 0
    let maxOpen = 0
    const fake = http.createServer((req, res) => {
      const q = new URL(req.url!, "http://x").searchParams
      const a = { user: q.get("sa_user")!, n: q.get("n")!, at: performance.now() } as { user: string; n: string; at: number; done?: number }
      arrivals.push(a)
      open++
      maxOpen = Math.max(maxOpen, open)
      setTimeout(() => {
        open--
        a.done = performance.now()
        res.setHeader("content-type", "application/json")
        res.end('{"code":0,"message":"OK"}')
      }, 40)
    })
    await new Promise<void>((r) => fake.listen(0, "127.0.0.1", r))
    const url = `http://127.0.0.1:${(fake.address() as AddressInfo).port}`
    const file = path.join(tempDir(), "calls.sh")
    const cmds: Array<string> = []
    for (let n = 0; n < 4; n++) for (const user of ["a", "b", "c"]) cmds.push(`curl '${url}/x?sa_user=${user}&n=${n}'`)
    fs.writeFileSync(file, cmds.join("\n"))
    const r = await run([file, "--to", url, "--concurrency", "3"])
    fake.close()
    expect(r.code).toBe(0)
    expect(maxOpen).toBeGreaterThan(1)
    for (const user of ["a", "b", "c"]) {
      const mine = arrivals.filter((x) => x.user === user)
      expect(mine.map((x) => x.n)).toEqual(["0", "1", "2", "3"])
      // each waited for the answer to the one before
      for (let i = 1; i < mine.length; i++) expect(mine[i]!.at).toBeGreaterThanOrEqual(mine[i - 1]!.done!)
    }
  })

  it("--speed keeps the captured spacing scaled and --rate caps the pace (measured, with tolerance)", async () => {
    const server = await start()
    const file = path.join(tempDir(), "cap.jsonl")
    const at = (ms: number) => new Date(Date.parse("2026-11-27T10:00:00Z") + ms).toISOString()
    const entry = (ms: number) => JSON.stringify({ v: 1, time: at(ms), method: "GET", path: "/healthz", query: "", headers: {}, ms: 1 })
    fs.writeFileSync(file, [entry(0), entry(400), entry(800)].join("\n"))
    let t = performance.now()
    expect((await run([file, "--to", server.url, "--speed", "2"])).code).toBe(0)
    const spaced = performance.now() - t
    // 800 ms captured at twice the speed: about 400 ms
    expect(spaced).toBeGreaterThan(350)
    expect(spaced).toBeLessThan(3000)
    t = performance.now()
    await run([file, "--to", server.url])
    expect(performance.now() - t).toBeLessThan(spaced)
    const five = path.join(path.dirname(file), "five.jsonl")
    fs.writeFileSync(five, [0, 0, 0, 0, 0].map(entry).join("\n"))
    t = performance.now()
    await run([five, "--to", server.url, "--rate", "10"])
    // five starts at 10/s: the last starts 400 ms after the first
    expect(performance.now() - t).toBeGreaterThan(350)
  })

  it("--filter chooses entries by path, HTTP method and jsondata method", async () => {
    const server = await start()
    const file = path.join(tempDir(), "calls.sh")
    const auth = `sa_user=${ADMIN.user}&sa_password=${md5(ADMIN.password)}`
    fs.writeFileSync(file, [`curl '${server.url}/healthz'`, `curl '${server.url}/voip/api/jsondata.html?method=getExtension&${auth}'`, `curl '${server.url}/voip/api/jsondata.html?method=getCustomersPage&start=0&limit=5&${auth}'`].join("\n"))
    const r = await run([file, "--to", server.url, "--filter", "method=getCust*"])
    expect(r.out).toContain("1 sent")
    expect(r.out).toContain("2 filtered out")
    expect((await run([file, "--to", server.url, "--filter", "path=/healthz", "--filter", "http=GET"])).out).toContain("1 sent")
    expect((await run([file, "--to", server.url, "--filter", "nope=1"])).code).toBe(2)
  })

  it("the CLI: --help, and a capture replayed into --fresh by npm start's own entry", async () => {
    const help = await runCli(["replay", "--help"], {})
    expect(help.code).toBe(0)
    expect(help.stdout).toContain("--fresh")
    const file = path.join(tempDir(), "cap.jsonl")
    const server = await start(captureTo(file))
    await asAdmin(server, "saveCustomer", { custName: "cli" })
    await callApi(server, { ...creds(), method: "getCustomersPage", start: "0", limit: "10" })
    await waitLines(file, 2)
    const r = await runCli(["replay", file, "--fresh"], {})
    expect(r.stdout).toContain("2 sent: 2 same")
    expect(r.code).toBe(0)
    const none = await runCli(["replay", file], {})
    expect(none.code).toBe(2)
    expect(none.stderr).toContain("--to URL")
  })
})

describe("replay: review findings (order across lanes, host, interruption)", () => {
  it("--concurrency 4: calls by a session wait for the login that issued it, exit 0", async () => {
    const file = path.join(tempDir(), "cap.jsonl")
    const a = await start(captureTo(file))
    const login = await asAdmin(a, "getExtension", {})
    for (let i = 0; i < 3; i++) expect((await callApi(a, { sessionId: String(login.sessionId), method: "findDialrecord" })).code).toBe(0)
    await waitLines(file, 4)
    const b = await start()
    const r = await run([file, "--to", b.url, "--concurrency", "4", "--credentials", `${ADMIN.user}:${md5(ADMIN.password)}`])
    expect(r.out).toContain("4 sent: 4 same")
    expect(r.code).toBe(0)
    expect((await fetch(`${b.url}/healthz`)).status).toBe(200)
  })

  it("a captured path //host/x goes to the server under test, never to that host", async () => {
    const hits: Array<{ where: string; url: string }> = []
    const fake = (where: string) =>
      new Promise<http.Server>((resolve) => {
        const s = http.createServer((req, res) => (hits.push({ where, url: req.url! }), res.end("{}")))
        s.listen(0, "127.0.0.1", () => resolve(s))
      })
    const target = await fake("target")
    const other = await fake("other")
    const otherHost = `127.0.0.1:${(other.address() as AddressInfo).port}`
    const file = path.join(tempDir(), "cap.jsonl")
    const line = { v: 1, time: new Date().toISOString(), method: "GET", path: `//${otherHost}/x`, query: "a=1", headers: {}, answer: { status: 200, headers: {}, body: { text: "{}", bytes: 2 } }, ms: 1 }
    fs.writeFileSync(file, `${JSON.stringify(line)}\n`)
    const r = await run([file, "--to", `http://127.0.0.1:${(target.address() as AddressInfo).port}`])
    target.close()
    other.close()
    expect(hits).toEqual([{ where: "target", url: `//${otherHost}/x?a=1` }])
    expect(r.code).toBe(0)
  })

  it("Ctrl-C during a --fresh replay stops it and removes the throwaway bridge's directory", async () => {
    const tmp = tempDir()
    const file = path.join(tempDir(), "cap.jsonl")
    const lines: Array<string> = []
    // a minute apart at --speed 1: the replay would take an hour
    for (let i = 0; i < 60; i++) lines.push(JSON.stringify({ v: 1, time: new Date(Date.UTC(2026, 0, 1, 0, i)).toISOString(), method: "GET", path: "/healthz", query: "", headers: {}, answer: { status: 200, headers: {} }, ms: 1 }))
    fs.writeFileSync(file, `${lines.join("\n")}\n`)
    const child = spawn(process.execPath, ["dist/main.mjs", "replay", file, "--fresh", "--speed", "1"], { cwd: path.resolve(import.meta.dirname, ".."), env: { ...process.env, TMPDIR: tmp }, stdio: ["ignore", "pipe", "pipe"] })
    let stderr = ""
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()))
    const exited = new Promise<number | null>((resolve) => child.on("exit", resolve))
    const made = () => fs.readdirSync(tmp).filter((d) => d.startsWith("vb-replay-"))
    for (let i = 0; i < 600 && made().length === 0; i++) await new Promise((r) => setTimeout(r, 50))
    expect(made()).toHaveLength(1)
    // the bridge is up once its admin token is written
    for (let i = 0; i < 600 && !fs.existsSync(path.join(tmp, made()[0]!, "admin-token")); i++) await new Promise((r) => setTimeout(r, 50))
    await new Promise((r) => setTimeout(r, 300))
    child.kill("SIGINT")
    expect(await exited).toBe(130)
    expect(stderr).toContain("interrupted after 1 of 60 requests")
    expect(made()).toEqual([])
  })
})

describe("replay: --credentials for every spelling of sa_password the bridge reads", () => {
  it("a capture whose passwords were sent as sa_password[0], sa_password[], a JSON array, a text/plain form, multipart sa_password[0] replays as it ran", async () => {
    const file = path.join(tempDir(), "cap.jsonl")
    const a = await start(captureTo(file))
    const b = await start()
    const pw = md5(ADMIN.password)
    const api = `/voip/api/jsondata.html`
    const send = async (p: string, init?: RequestInit) => {
      const res = await fetch(`${a.url}${p}`, init)
      expect(((await res.json()) as { code: number }).code).toBe(0)
    }
    await send(`${api}?method=getExtension&sa_user%5B0%5D=${ADMIN.user}&sa_password%5B0%5D=${pw}`)
    await send(`${api}?method=getExtension&sa_user=${ADMIN.user}`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: `sa_password%5B%5D=${pw}` })
    await send(api, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ method: "getExtension", sa_user: ADMIN.user, sa_password: [pw] }) })
    await send(api, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ method: "getExtension", sa_user: ADMIN.user, "sa_password[0]": pw }) })
    await send(api, { method: "POST", headers: { "content-type": "text/plain" }, body: `method=getExtension&sa_user=${ADMIN.user}&sa_password=${pw}` })
    const fd = new FormData()
    for (const [k, v] of Object.entries({ method: "getExtension", "sa_user[0]": ADMIN.user, "sa_password[0]": pw })) fd.append(k, v)
    await send(api, { method: "POST", body: fd })
    const got = await waitLines(file, 6)
    expect(got).toHaveLength(6)
    // the capture holds none of them
    expect(JSON.stringify(got)).not.toContain(pw)

    // without the password each is refused (-2: on a bridge of its own, whose failed logins throttle);
    // with it each answers as captured
    const refused = await run([file, "--to", (await start()).url])
    expect(refused.out).toContain("6 sent: 0 same, 6 different")
    const r = await run([file, "--to", b.url, "--credentials", `${ADMIN.user}:${pw}`])
    expect(r.out).toContain("6 sent: 6 same, 0 different, 0 failed")
    expect(r.code).toBe(0)
    expect((await fetch(`${b.url}/healthz`)).status).toBe(200)
  })
})

describe("replay: --credentials and multipart spellings the bridge reads", () => {
  const JSONDATA = "/voip/api/jsondata.html"
  const pw = md5(ADMIN.password)
  const multipart = (boundary: string, disposition: string) => {
    const part = (d: string, v: string) => `--${boundary}\r\nContent-Disposition: ${d}\r\n\r\n${v}\r\n`
    const body = part('form-data; name="method"', "getExtension") + part('form-data; name="sa_user"', ADMIN.user) + part(disposition, pw) + `--${boundary}--\r\n`
    return { headers: { "content-type": `multipart/form-data; boundary=${boundary}` }, body: Buffer.from(body) }
  }
  const cases: ReadonlyArray<readonly [string, string, string]> = [
    ["a boundary containing 'json' (replay takes the body for JSON, the bridge for multipart)", "----JsonPartBoundary7", 'form-data; name="sa_password"'],
    ["the part's name unquoted", "XyZbOuNdArY", "form-data; name=sa_password"],
    ["NAME= in capitals", "XyZbOuNdArY", 'form-data; NAME="sa_password"'],
    ["xname= before name=", "XyZbOuNdArY", 'form-data; xname="q"; name="sa_password"']
  ]
  it.each(cases)("%s: the bridge logs in; replayed with --credentials it answers the same", async (_label, boundary, disposition) => {
    const file = path.join(tempDir(), "cap.jsonl")
    const a = await start({ capture: { file } })
    const b = await start()
    const { headers, body } = multipart(boundary, disposition)
    const res = await rawRequest(a.url, "POST", JSONDATA, headers, body)
    expect(res.status).toBe(200)
    expect((JSON.parse(res.body.toString("utf8")) as { code: number }).code).toBe(0)
    await waitLines(file, 1)
    expect(fs.readFileSync(file, "utf8")).not.toContain(pw)
    const r = await run([file, "--to", b.url, "--credentials", `${ADMIN.user}:${pw}`])
    expect(r.out).toContain("1 sent: 1 same, 0 different, 0 failed")
    expect((await fetch(`${b.url}/healthz`)).status).toBe(200)
  })
})
