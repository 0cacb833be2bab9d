/**
 * /openapi.json as standard tools use it: Redocly's recommended ruleset finds no error, and
 * Stoplight Prism, a validating proxy in front of a real bridge, routes every call the bridge
 * serves and finds nothing wrong with correct answers.
 */
import { execFile } from "node:child_process"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { promisify } from "node:util"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { implementationsByName } from "../src/api/methods.js"
import { bin, NOT_ROUTED, type Prism, type Proxied, startPrism, viaPrism } from "./support/Prism.js"
import { ADMIN, creds, md5, startTestServer, tempDir, type TestServer } from "./support/TestServer.js"

let server: TestServer
let prism: Prism

beforeAll(async () => {
  server = await startTestServer()
  // the document as the bridge serves it, proxied to that same bridge
  prism = await startPrism(`${server.url}/openapi.json`, server.url)
}, 90_000)

afterAll(async () => {
  await prism?.close()
  await server?.close()
})

const proxied = (pathAndQuery: string, init?: RequestInit) => viaPrism(prism, pathAndQuery, init)

/** Routed and valid: Prism found the operation and nothing to say about the request or the answer. */
const expectClean = (answer: Proxied, what: string) => {
  expect(`${answer.violations} ${answer.body}`, what).not.toMatch(NOT_ROUTED)
  expect(answer.violations, `${what}: ${answer.violations}`).toBeNull()
}

const jsondata = async (params: Record<string, string>, via: "get" | "form" = "get") => {
  const all = new URLSearchParams({ ...creds(), ...params })
  const answer =
    via === "get"
      ? await proxied(`/voip/api/jsondata.html?${all}`)
      : await proxied(`/voip/api/jsondata.html?${new URLSearchParams(creds())}`, { method: "POST", body: new URLSearchParams(params) })
  return { ...answer, json: JSON.parse(answer.body) as { code: number; message: string } & Record<string, unknown> }
}

const fixtures = fs
  .readFileSync(path.join(import.meta.dirname, "fixtures/contract-requests.jsonl"), "utf8")
  .split("\n")
  .filter(Boolean)
  .map((l) => JSON.parse(l) as { seed: string; method: string; path: string; query?: string; form?: Record<string, string> })

describe("Redocly lint (recommended ruleset)", () => {
  it("reports no error on the document served, nor on a method's own document", async () => {
    const dir = tempDir("vb-lint-")
    for (const [name, url] of [
      ["all", `${server.url}/openapi.json`],
      ["addExtension", `${server.url}/openapi.json?method=addExtension`]
    ] as const) {
      const file = path.join(dir, `${name}.json`)
      fs.writeFileSync(file, await (await fetch(url)).text())
      const { stdout } = await promisify(execFile)(bin("redocly"), ["lint", file, "--format", "json"], { maxBuffer: 64 * 1024 * 1024 }).catch((e: { stdout: string }) => e)
      const report = JSON.parse(stdout.slice(stdout.indexOf("{"))) as { totals: { errors: number }; problems: Array<{ ruleId: string; severity: string; message: string }> }
      expect(report.problems.filter((p) => p.severity === "error"), name).toEqual([])
      expect(report.totals.errors).toBe(0)
    }
  }, 60_000)
})

describe("Prism as a validating proxy in front of the bridge", () => {
  it("routes every contract fixture the bridge serves; the others are neither served nor advertised", async () => {
    for (const f of fixtures) {
      const auth = f.path === "/voip/api/jsondata.html" && !/sa_user=/.test(f.query ?? "") ? `${new URLSearchParams(creds())}&` : ""
      const target = `${f.path}?${auth}${f.query ?? ""}`
      const init = f.form ? { method: f.method, body: new URLSearchParams(f.form) } : { method: f.method }
      const direct = await fetch(`${server.url}${target}`, init)
      await direct.arrayBuffer()
      const answer = await proxied(target, init)
      if (direct.status === 404) {
        // the box protocol and the work-order endpoints are not implemented yet: absent from the document
        expect(`${answer.violations} ${answer.body}`, f.seed).toMatch(NOT_ROUTED)
        continue
      }
      const method = new URLSearchParams(f.query ?? "").get("method") ?? f.form?.method
      if (method !== undefined && !implementationsByName.has(method)) {
        // a method not implemented yet answers -3 and is not among the advertised ones: Prism says exactly that
        expect(JSON.parse(answer.body), f.seed).toMatchObject({ code: -3 })
        expect(JSON.parse(answer.violations ?? "[]"), f.seed).toEqual([expect.objectContaining({ location: ["request", "query", "method"], code: "enum" })])
        continue
      }
      expectClean(answer, `fixture ${f.seed} ${f.path}`)
    }
  }, 60_000)

  it("routes and validates a call of every implemented jsondata method", async () => {
    const exercised = new Set<string>()
    const call = async (params: Record<string, string>, via: "get" | "form" = "get") => {
      const answer = await jsondata(params, via)
      expectClean(answer, `${params.method}: ${answer.body}`)
      exercised.add(params.method!)
      return answer.json
    }
    const added = await call({ method: "addExtension", exteExtension: "460", extePassword: "pw460", exteName: "代理" })
    expect(added.code).toBe(0)
    const exteId = String(added.exteId)
    expect((await call({ method: "editExtension", exteId, exteName: "代理二" }, "form")).code).toBe(0)
    expect((await call({ method: "getExtension" })).code).toBe(0)
    expect((await call({ method: "getExtensions" })).code).toBe(0)
    expect((await call({ method: "initExtensionPassword", exteId })).code).toBe(0)
    await call({ method: "registerExtension" })
    expect((await call({ method: "setExteMobile", exteId, phone: "13900001111" })).code).toBe(0)
    await call({ method: "setShowPhone", phone: "02363846384" })
    await call({ method: "setUserCheckInOut", status: "1" })
    expect((await call({ method: "addBlacklists", phones: "13002300000,13002300001" })).code).toBe(0)
    expect((await call({ method: "getBlacklists" })).code).toBe(0)
    expect((await call({ method: "delBlacklists", phones: "13002300001" })).code).toBe(0)
    expect((await call({ method: "addCdrRecord", dialId: "7001", dialPhoneNum: "13800000000", dialStartTime: "2026-11-24 10:00:00", dialRecordFile: "prism.wav" })).code).toBe(0)
    expect((await call({ method: "addSmsRecord", id: "9001", kind: "3", phone: "13800000000", content: "你好", time: "1763950000000" })).code).toBe(0)
    expect((await call({ method: "findDialrecord" })).code).toBe(0)
    await call({ method: "getAreaPhone", phone: "13800000000" })
    expect((await call({ method: "sendMsg", kind: "1", client: "2", phone: "13002311111", content: "客户端拨号" }, "form")).code).toBe(0)
    expect((await call({ method: "recvMsg", client: "1" })).code).toBe(0)
    expect((await call({ method: "systemChannels" })).code).toBe(0)
    expect((await call({ method: "getChannelList", queueSize: "1" })).code).toBe(0)
    expect((await call({ method: "getTableFields", chinesename: "0" })).code).toBe(0)
    expect((await call({ method: "getCodes", codeType: "custStatus" })).code).toBe(0)
    expect((await call({ method: "addMemo", cdrMemo: "回访", cdrPhone: "13800000000", nhtIsHint: "1", nhtTime: "2026-11-24 10:00:00", nhtPhone: "13800000000" }, "form")).code).toBe(0)
    expect((await call({ method: "getMemos", phoneNum: "13800000000" })).code).toBe(0)
    const customer = await call({ method: "saveCustomer", custName: "棱镜客户", cpPhone: "13800009999", custBirthday: "1990-01-01", custAge: "36" })
    expect(customer.code).toBe(0)
    const custId = String(customer.custId)
    expect((await call({ method: "getCustomersPage", findType: "custName", sqlwhere: "棱镜" })).code).toBe(0)
    expect((await call({ method: "getcustomer", phoneNum: "13800009999" })).code).toBe(0)
    expect((await call({ method: "setCustomerLock", custId, custIsLock: "1" })).code).toBe(0)
    expect((await call({ method: "setCustomerSales", custId, status: "1" }, "form")).code).toBe(0)
    expect((await call({ method: "getCustomerSales", phoneNum: "13800009999" })).code).toBe(0)
    expect((await call({ method: "delcustomer", custId })).code).toBe(0)
    expect((await call({ method: "smsSend", phoneNum: "13800000000", memo: "棱镜短信" }, "form")).code).toBe(0)
    expect((await call({ method: "sendCallAgiPhoneSms", phone: "13800000000" })).code).toBe(0)
    expect((await call({ method: "CallAgiverificationCode", phone: "13800000000", vtCode: "000000" })).code).not.toBe(0)
    expect((await call({ method: "setIvrDialing", sourcePhone: "13800000000", descPhone: "02363846384", dialPhone: "13900000000" })).code).toBe(0)
    expect((await call({ method: "findCallFlow" })).code).toBe(0)
    // outbound tasks: a manual one (nothing dials it), its number handed out, its details; its flow by id
    const task = await call({ method: "addTask", data: JSON.stringify([{ phone: "13800000000", key: "k1", memo: "你好", woOther1: "x" }]), addType: "2", name: "棱镜任务", cflName: "示例流程" }, "form")
    expect(task.code).toBe(0)
    expect((await call({ method: "getTaskDetailPhone" })).code).toBe(0)
    expect((await call({ method: "findTaskMx", ctkId: String(task.id), type: "0", start: "0", limit: "25" })).code).toBe(0)
    expect((await call({ method: "findCallFlow", ctdId: String(task.id) })).code).toBe(0)
    // telephony on the simulator (the default driver): a callback and a verification call, and their lists
    const callback = await call({ method: "callbackPhone", sourcePhone: "02367073578", descPhone: "13800000000", callbackUrl: Buffer.from("http://127.0.0.1:9/cb?cbkId={cbkId}").toString("base64") }, "form")
    expect(callback.code).toBe(0)
    expect((await call({ method: "getCallbackList", start: "0", limit: "25", id: String(callback.id) })).code).toBe(0)
    expect((await call({ method: "phoneAudit", yzm: "1234", type: "1", phone: "13800000000", isRecord: "0" })).code).toBe(0)
    // one state: the jsondata operation documents `status` once for every method (a number elsewhere), so a list "3,4,5" is not describable there
    expect((await call({ method: "getPhoneAudit", status: "1", page: "1", rows: "10" })).code).toBe(0)
    // coded failures are answers the document describes too
    expect((await call({ method: "delExtension", exteId: "999999" })).code).not.toBe(0)
    expect((await call({ method: "sendTelCall", mac: "00:1A:2B:3C:4D:99", channel: "1", phone: "13800000000" }, "form")).code).toBe(-11)
    expect((await jsondata({ method: "getExtension", sa_password: md5("wrong") })).json.code).toBe(-2)
    expect([...implementationsByName.values()].map((i) => i.spec.name).filter((name) => !exercised.has(name))).toEqual([])
  }, 120_000)

  it("routes and validates a push, a recording upload and its downloads", async () => {
    const pushed = await proxied(`/api/callback.json?${new URLSearchParams({ cbkId: "1", cbkStatus: "1", cbkExtension: ADMIN.user })}`)
    expectClean(pushed, `push: ${pushed.body}`)
    expect(JSON.parse(pushed.body)).toMatchObject({ code: 0 })

    // text bytes: Prism forwards a multipart body as UTF-8 text, which would change other bytes
    const file = Buffer.from(`RIFF${crypto.randomBytes(32).toString("hex")}`)
    const form = new FormData()
    form.append("fileName", "prism.wav")
    form.append("isBase", "false")
    form.append("fileMd5", crypto.createHash("md5").update(file).digest("hex"))
    form.append("fileGsm", new Blob([file]), "prism.wav")
    const uploaded = await proxied(`/voip/api/upload_record_file.html?${new URLSearchParams(creds())}`, { method: "POST", body: form })
    expectClean(uploaded, `upload: ${uploaded.body}`)
    const stored = JSON.parse(uploaded.body) as { code: number; path: string }
    expect(stored.code).toBe(0)

    const byPath = await proxied(`/voip/record/${stored.path.split("/").map(encodeURIComponent).join("/")}?${new URLSearchParams(creds())}`)
    expectClean(byPath, "download by path")
    expect(byPath.status).toBe(200)
    expect(byPath.contentType).toMatch(/^audio\/wav/)
    expect(Buffer.from(byPath.body, "latin1").equals(file)).toBe(true)

    const byCall = await proxied(`/voip/api/client/download/record.json?id=7001&${new URLSearchParams(creds())}`)
    expectClean(byCall, `download by call record: ${byCall.body.slice(0, 200)}`)
    const missing = await proxied(`/voip/api/client/download/record.json?id=123456789&${new URLSearchParams(creds())}`)
    expectClean(missing, "download of an unknown call record")
    expect(missing.status).toBe(404)
  }, 60_000)

  it("routes the bridge's own endpoints", async () => {
    for (const p of ["/healthz", "/readyz", "/metrics", "/openapi.json", "/openapi.json?method=sendMsg"]) expectClean(await proxied(p), p)
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
  }, 60_000)

  it("routes the admin page and its files, and a file that is not there", async () => {
    for (const p of ["/admin", "/admin/assets/app.js", "/admin/assets/app.css"]) {
      const res = await proxied(p)
      expectClean(res, p)
      expect(res.status, p).toBe(200)
    }
    const missing = await proxied("/admin/assets/nothing.js")
    expectClean(missing, "a missing asset")
    expect(missing.status).toBe(404)
  }, 60_000)
})
