/**
 * Capture's redaction, file and memory under hostile or unlucky conditions (review of capture
 * and replay, findings 1, 6 and 7): credentials in every spelling the bridge accepts never reach
 * the file; a deleted file or a failed rotation does not end the capture; records waiting for a
 * slow disk are bounded.
 */
import * as fs from "node:fs"
import * as http from "node:http"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { pendingLimit, Sink } from "../src/capture/Capture.js"
import { makeRedactor } from "../src/capture/Redact.js"
import { adminApi, adminToken } from "./support/AdminApi.js"
import { rawRequest } from "./support/Raw.js"
import { ADMIN, asAdmin, md5, startTestServer, tempDir, type TestServer } from "./support/TestServer.js"

const servers: Array<TestServer> = []
afterAll(async () => {
  for (const s of servers) await s.close()
})
const start = async (overrides: Record<string, unknown> = {}) => {
  const s = await startTestServer(overrides)
  servers.push(s)
  return s
}
const readLines = (file: string): Array<Record<string, unknown>> =>
  fs.existsSync(file)
    ? fs
        .readFileSync(file, "utf8")
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>)
    : []
const waitLines = async (file: string, n: number) => {
  for (let i = 0; i < 300 && readLines(file).length < n; i++) await new Promise((r) => setTimeout(r, 10))
  return readLines(file)
}
const JSONDATA = "/voip/api/jsondata.html"
const secret = md5(ADMIN.password)
const code = (body: Buffer) => (JSON.parse(body.toString("utf8")) as { code: number }).code

describe("capture redaction: every spelling the bridge accepts", () => {
  const multipart = (disposition: string) => {
    const b = "XyZbOuNdArY"
    const part = (d: string, v: string) => `--${b}\r\nContent-Disposition: ${d}\r\n\r\n${v}\r\n`
    const body = part('form-data; name="sa_user"', ADMIN.user) + part(disposition, secret) + part('form-data; name="method"', "getExtension") + `--${b}--\r\n`
    return { headers: { "content-type": `multipart/form-data; boundary=${b}` }, body: Buffer.from(body) }
  }
  const form = `sa_user=${ADMIN.user}&sa_password=${secret}&method=getExtension`
  const cases: ReadonlyArray<readonly [string, string, Record<string, string>, Buffer | undefined]> = [
    ["a form sent as text/plain", JSONDATA, { "content-type": "text/plain" }, Buffer.from(form)],
    ["a form sent without a content type", JSONDATA, {}, Buffer.from(form)],
    ["sa_password[] in the query", `${JSONDATA}?sa_user=${ADMIN.user}&sa_password[]=${secret}&method=getExtension`, {}, undefined],
    ["sa_password%5B0%5D in the query", `${JSONDATA}?sa_user=${ADMIN.user}&sa_password%5B0%5D=${secret}&method=getExtension`, {}, undefined],
    ["every byte percent-encoded", `${JSONDATA}?sa_user=${ADMIN.user}&sa_password=${[...secret].map((c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`).join("")}&method=getExtension`, {}, undefined],
    ["a JSON array", JSONDATA, { "content-type": "application/json" }, Buffer.from(JSON.stringify({ sa_user: ADMIN.user, sa_password: [secret], method: "getExtension" }))],
    ["multipart xname= before name=", JSONDATA, ...Object.values(multipart('form-data; xname="q"; name="sa_password"'))] as unknown as readonly [string, string, Record<string, string>, Buffer],
    ["multipart unquoted name", JSONDATA, ...Object.values(multipart("form-data; name=sa_password"))] as unknown as readonly [string, string, Record<string, string>, Buffer],
    ["multipart NAME= in capitals", JSONDATA, ...Object.values(multipart('form-data; NAME="sa_password"'))] as unknown as readonly [string, string, Record<string, string>, Buffer]
  ]

  it.each(cases)("%s: authenticates, and the capture holds no password", async (_label, target, headers, body) => {
    const file = path.join(tempDir(), "cap.jsonl")
    const server = await start({ capture: { file } })
    const res = await rawRequest(server.url, body ? "POST" : "GET", target, headers, body)
    expect(res.status).toBe(200)
    expect(code(res.body)).toBe(0)
    const [line] = await waitLines(file, 1)
    expect(line).toBeDefined()
    const text = fs.readFileSync(file, "utf8")
    expect(text).not.toContain(secret)
    expect(text.toLowerCase()).not.toContain([...secret].map((c) => `%${c.charCodeAt(0).toString(16)}`).join(""))
    expect(text).toMatch(/redacted-[0-9a-f]{12}/)
    // the answer's sessionId is hidden too, and the bridge still serves
    const session = JSON.parse(res.body.toString("utf8")).sessionId as string
    expect(text).not.toContain(session)
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
  })

  it("a Referer carrying ?sessionId= and the session in the query are both hidden, with the same placeholder", async () => {
    const file = path.join(tempDir(), "cap.jsonl")
    const server = await start({ capture: { file } })
    const login = await asAdmin(server, "getExtension", {})
    const session = String(login.sessionId)
    const res = await rawRequest(server.url, "GET", `${JSONDATA}?sessionId=${session}&method=findDialrecord`, { referer: `http://crm.example/page?sessionId=${encodeURIComponent(session)}&x=1` })
    expect(code(res.body)).toBe(0)
    const got = await waitLines(file, 2)
    const text = fs.readFileSync(file, "utf8")
    expect(text).not.toContain(session)
    const placeholder = /sessionId=(redacted-[0-9a-f]{12})/.exec(String(got[1]!.query))![1]!
    expect(String((got[1]!.headers as Record<string, string>).referer)).toContain(`sessionId=${placeholder}`)
    // replay follows the session by the placeholder the login's answer got
    expect(JSON.parse(String((got[0]!.answer as { body: { text: string } }).body.text)).sessionId).toBe(placeholder)
  })

  it.each([["whole", 1024 * 1024], ["cut at maxBodyBytes (JSON that no longer parses)", 260]])("the admin API's target secret and header values (request and answer) are hidden: bodies %s", async (_label, maxBodyBytes) => {
    const file = path.join(tempDir(), "cap.jsonl")
    const server = await start({ capture: { file, maxBodyBytes } })
    const hook = "whsec_0123456789abcdef"
    const bearer = "Bearer tgt-token-9876543210"
    const made = await adminApi(server, "POST", "/targets", { name: "crm", url: "http://127.0.0.1:9/x", secret: hook, headers: { Authorization: bearer, "X-Api-Key": "key-5555-6666" } })
    expect(made.status).toBe(201)
    const listed = await adminApi(server, "GET", "/targets")
    expect(listed.status).toBe(200)
    await waitLines(file, 2)
    const text = fs.readFileSync(file, "utf8")
    for (const s of [hook, "tgt-token-9876543210", "key-5555-6666", adminToken(server)]) expect(text).not.toContain(s)
    if (maxBodyBytes < 1000) expect(text).toContain('"truncated":true')
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
  })
})

describe("capture of the admin API keeps no target credential", () => {
  it("an OAuth2 target's clientSecret and refreshToken (sent to and answered by the admin API) are not in the capture file", async () => {
    const file = path.join(tempDir(), "cap.jsonl")
    const server = await start({ capture: { file } })
    const clientSecret = "cs-Very-Secret-9f3a1c"
    const refreshToken = "rt-Very-Secret-77b2e0"
    const made = [
      await adminApi(server, "POST", "/targets", {
        name: "crm-cc",
        url: "http://127.0.0.1:9/hook",
        events: ["call.*"],
        auth: { type: "oauth2", grant: "client_credentials", tokenUrl: "http://127.0.0.1:9/token", clientId: "bridge", clientSecret }
      }),
      await adminApi(server, "POST", "/targets", {
        name: "crm-rt",
        url: "http://127.0.0.1:9/hook",
        events: ["call.*"],
        auth: { type: "oauth2", grant: "refresh_token", tokenUrl: "http://127.0.0.1:9/token", clientId: "bridge", refreshToken }
      })
    ]
    expect(made.map((r) => r.status)).toEqual([201, 201])
    expect((await adminApi(server, "GET", "/targets/crm-cc")).status).toBe(200)
    expect((await adminApi(server, "GET", "/targets")).status).toBe(200)
    await waitLines(file, 4)
    const text = fs.readFileSync(file, "utf8")
    expect(readLines(file)).toHaveLength(4)
    expect(text).not.toContain(clientSecret)
    expect(text).not.toContain(refreshToken)
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
  })

  it("secret query parameters of a target's url and tokenUrl are masked, the rest of the URL kept", async () => {
    const file = path.join(tempDir(), "cap.jsonl")
    const server = await start({ capture: { file } })
    const url = "http://127.0.0.1:9/robot/send?access_token=AT-robot-5f1e2d&Sign=SG-robot-8c7b6a&timestamp=1700000000"
    const tokenUrl = "http://127.0.0.1:9/token?KEY=KY-token-3a4b5c&tenant=acme"
    const made = await adminApi(server, "POST", "/targets", {
      name: "robot",
      url,
      events: ["call.*"],
      auth: { type: "oauth2", grant: "client_credentials", tokenUrl, clientId: "bridge", clientSecret: "cs-robot-0000" }
    })
    expect(made.status).toBe(201)
    const got = await waitLines(file, 1)
    const text = fs.readFileSync(file, "utf8")
    for (const s of ["AT-robot-5f1e2d", "SG-robot-8c7b6a", "KY-token-3a4b5c", "cs-robot-0000"]) expect(text).not.toContain(s)
    const sent = JSON.parse(String((got[0]!.body as { text: string }).text)) as { url: string; auth: { tokenUrl: string } }
    expect(sent.url).toMatch(/^http:\/\/127\.0\.0\.1:9\/robot\/send\?access_token=redacted-[0-9a-f]{12}&Sign=redacted-[0-9a-f]{12}&timestamp=1700000000$/)
    expect(sent.auth.tokenUrl).toMatch(/^http:\/\/127\.0\.0\.1:9\/token\?KEY=redacted-[0-9a-f]{12}&tenant=acme$/)
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
  })
})

describe("capture of the upstream callback push keeps no key", () => {
  it("the per-callback key of the URL the platform pushes to is masked, also when the push is refused while its body is read", async () => {
    // a fake platform accepting callbackPhone: it keeps the URL the bridge gives it
    const given: Array<string> = []
    const platform = http.createServer((req, res) => {
      let body = ""
      req.on("data", (c: Buffer) => (body += c.toString("utf8")))
      req.on("end", () => {
        given.push(Buffer.from(new URLSearchParams(body).get("callbackUrl") ?? "", "base64").toString("utf8"))
        res.writeHead(200, { "content-type": "application/json" }).end(`{"code":0,"message":"OK","id":${700_000_000 + given.length}}`)
      })
    })
    await new Promise<void>((r) => platform.listen(0, "127.0.0.1", () => r()))
    try {
      const file = path.join(tempDir(), "cap.jsonl")
      const url = `http://127.0.0.1:${(platform.address() as { port: number }).port}/voip/api/jsondata.html`
      const server = await start({
        capture: { file },
        http: { bodyLimitBytes: 64 * 1024 },
        telephony: { driver: "upstream", upstream: { url, sa_user: "100088601", sa_password: "0DCBDF0AA187EA7498D8AB64604096FC", timeoutMs: 2000, publicUrl: "http://bridge.example:8080/" } }
      })
      expect((await asAdmin(server, "callbackPhone", { sourcePhone: "02367073578", descPhone: "13800138012" })).code).toBe(0)
      const platformId = String(700_000_000 + given.length)
      const target = given.at(-1)!.replace("http://bridge.example:8080", "").replace("{cbkId}", platformId)
      const key = new URL(target, server.url).searchParams.get("key")!
      expect(key.length).toBeGreaterThan(10)
      const pushed = await rawRequest(server.url, "POST", target, { "content-type": "application/x-www-form-urlencoded" }, Buffer.from(`cbkId=${platformId}&cbkStatus=1`))
      expect(code(pushed.body)).toBe(0)
      // a body over the limit: refused before its parameters are read
      const tooBig = await rawRequest(server.url, "POST", target, { "content-type": "application/x-www-form-urlencoded" }, Buffer.alloc(80 * 1024, "a"))
      expect(tooBig.status).toBeGreaterThanOrEqual(400)
      const lines = await waitLines(file, 3)
      expect(lines.filter((l) => String(l.path).startsWith("/voip/upstream/callback/")).map((l) => (l.answer as { status: number }).status)).toEqual([200, tooBig.status])
      expect(fs.readFileSync(file, "utf8")).not.toContain(key)
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
    } finally {
      await new Promise<void>((r) => { platform.closeAllConnections(); platform.close(() => r()) })
    }
  })
})

describe("capture redaction of JSON that does not parse", () => {
  it("a body cut in the middle still has its secret keys' values masked, arrays and any case included", () => {
    const r = makeRedactor()
    const whole = JSON.stringify({ a: 1, target: { name: "crm", secret: "nested-secret-42" }, list: [{ token: "tok-in-list-77" }], Secret: "whsec_abcdef123456", headers: { Authorization: "Bearer tok-123456" }, sa_password: ["0123456789abcdef"], sessionId: "sess-98765", pad: "x".repeat(50) })
    const cut = Buffer.from(whole.slice(0, whole.length - 20))
    const out = r.body("application/json", cut).toString("utf8")
    for (const s of ["nested-secret-42", "tok-in-list-77", "whsec_abcdef123456", "tok-123456", "0123456789abcdef", "sess-98765"]) expect(out).not.toContain(s)
    expect(out).toContain('"a":1')
    expect(out.match(/redacted-[0-9a-f]{12}/g)?.length).toBe(6)
    expect(out).toContain('"name":"crm"')
  })

  it("a body cut in the middle still has nested OAuth2 secrets and a URL's secret query values masked", () => {
    const r = makeRedactor()
    const whole = JSON.stringify({
      name: "crm",
      url: "https://oapi.example.com/robot/send?access_token=at-cut-111222&b=2",
      auth: { type: "oauth2", tokenUrl: "https://idp.example.com/token?secret=sc-cut-333444", ClientSecret: "cs-cut-555666", REFRESHTOKEN: "rt-cut-777888" },
      pad: "x".repeat(50)
    })
    const out = r.body("application/json", Buffer.from(whole.slice(0, whole.length - 20))).toString("utf8")
    for (const s of ["at-cut-111222", "sc-cut-333444", "cs-cut-555666", "rt-cut-777888"]) expect(out).not.toContain(s)
    expect(out).toMatch(/"url":"https:\/\/oapi\.example\.com\/robot\/send\?access_token=redacted-[0-9a-f]{12}&b=2"/)
    expect(out).toContain('"name":"crm"')
  })
})

describe("capture file", () => {
  it("is opened again when a tester deletes it, rotation included; the download and the status agree", async () => {
    const file = path.join(tempDir(), "cap.jsonl")
    const server = await start({ capture: { file, maxBytes: 4000 } })
    for (let i = 0; i < 3; i++) await asAdmin(server, "getExtension", {})
    await waitLines(file, 3)
    fs.rmSync(file)
    for (let i = 0; i < 30; i++) expect((await asAdmin(server, "getExtension", {})).code).toBe(0)
    await new Promise((r) => setTimeout(r, 100))
    expect(fs.existsSync(file)).toBe(true)
    // a few may have gone to the deleted file before its loss was noticed (checked every 8 writes);
    // then the new file filled and was rotated like any other
    expect(readLines(file).length).toBeGreaterThan(0)
    expect(fs.existsSync(`${file}.1`)).toBe(true)
    expect([file, `${file}.1`, `${file}.2`, `${file}.3`].flatMap(readLines).length).toBeGreaterThanOrEqual(10)
    const res = await fetch(`${server.url}/admin/api/capture`, { headers: { authorization: `Bearer ${adminToken(server)}` } })
    expect(res.status).toBe(200)
    expect((await res.text()).length).toBeGreaterThan(0)
  })

  it("a rotation that fails reopens the file and keeps capturing", async () => {
    const dir = tempDir()
    const file = path.join(dir, "cap.jsonl")
    const server = await start({ capture: { file, maxBytes: 3000 } })
    // the rotated names directories that hold a file: every rename of the rotation fails
    for (const n of [1, 2, 3]) {
      fs.mkdirSync(`${file}.${n}`)
      fs.writeFileSync(path.join(`${file}.${n}`, "x"), "x")
    }
    for (let i = 0; i < 20; i++) expect((await asAdmin(server, "getExtension", {})).code).toBe(0)
    await new Promise((r) => setTimeout(r, 100))
    // every record still written (past maxBytes while rotation cannot happen), the failures counted
    expect(readLines(file).length).toBe(20)
    const status = await adminApi(server, "POST", "/capture", { enabled: true })
    expect(status.body).toMatchObject({ capture: { enabled: true } })
    expect((status.body.capture as { failures: number }).failures).toBeGreaterThan(0)
    // the way cleared, the next record rotates as usual
    for (const n of [1, 2, 3]) fs.rmSync(`${file}.${n}`, { recursive: true })
    for (let i = 0; i < 2; i++) expect((await asAdmin(server, "getExtension", {})).code).toBe(0)
    await new Promise((r) => setTimeout(r, 100))
    expect(readLines(`${file}.1`).length).toBeGreaterThanOrEqual(20)
    expect(readLines(file).length).toBeGreaterThan(0)
    expect(readLines(file).length).toBeLessThan(3)
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
  })
})

describe("capture memory", () => {
  it("records waiting for the disk past the bound are dropped and counted, never thrown", async () => {
    expect(pendingLimit(1024 * 1024)).toBeGreaterThanOrEqual(8 * 1024 * 1024)
    const file = path.join(tempDir(), "cap.jsonl")
    const errors: Array<string> = []
    const sink = new Sink(file, 1 << 30, 10_000, (m) => errors.push(m))
    const line = `${JSON.stringify({ pad: "x".repeat(1000) })}\n`
    // one tick: the first write is with the disk, the rest wait in memory
    for (let i = 0; i < 100; i++) sink.write(line)
    await sink.flush()
    await sink.close()
    expect(sink.dropped).toBeGreaterThan(50)
    expect(sink.failures).toBe(sink.dropped)
    expect(readLines(file).length).toBe(100 - sink.dropped)
    expect(sink.records).toBe(100 - sink.dropped)
    expect(errors.length).toBe(1)
  })
})

describe("capture of the admin API's answers", () => {
  it("records their headers as sent, like every other answer's, with the token hidden", async () => {
    const file = path.join(tempDir(), "cap.jsonl")
    const server = await start({ capture: { file } })
    const token = adminToken(server)
    const sent: Array<Response> = [
      await fetch(`${server.url}/admin/api/targets`, { headers: { authorization: `Bearer ${token}` } }),
      await fetch(`${server.url}/admin/api/no-such-thing`, { headers: { authorization: `Bearer ${token}` } }),
      await fetch(`${server.url}/admin/api/targets`),
      await fetch(`${server.url}${JSONDATA}?method=getExtension&sa_user=${ADMIN.user}&sa_password=${secret}`)
    ]
    expect(sent.map((r) => r.status)).toEqual([200, 404, 401, 200])
    for (const r of sent) await r.arrayBuffer()
    const got = (await waitLines(file, 4)) as Array<{ path: string; headers: Record<string, string>; answer: { status: number; headers: Record<string, string> } }>
    expect(got.map((l) => [l.path, l.answer.status])).toEqual([
      ["/admin/api/targets", 200],
      ["/admin/api/no-such-thing", 404],
      ["/admin/api/targets", 401],
      [JSONDATA, 200]
    ])
    got.forEach((line, i) => {
      const received = sent[i]!.headers
      expect(line.answer.headers["content-type"]).toBe(received.get("content-type"))
      expect(line.answer.headers["content-length"]).toBe(received.get("content-length"))
      expect(line.answer.headers["content-type"]).toMatch(/^application\/json/)
    })
    expect(got[0]!.headers.authorization).toMatch(/^Bearer redacted-[0-9a-f]{12}$/)
    const text = fs.readFileSync(file, "utf8")
    expect(text).not.toContain(token)
    expect(text).not.toContain(secret)
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
  })
})
