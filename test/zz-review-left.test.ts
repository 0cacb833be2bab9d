/**
 * Review of the "review leftovers" merge (58876e2): capture of the admin API, replay
 * --credentials. Each test shows one defect found; they fail until it is mended.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { replayCommand } from "../src/replay/Cli.js"
import { rawRequest } from "./support/Raw.js"
import { ADMIN, md5, startTestServer, tempDir, type TestServer } from "./support/TestServer.js"

const servers: Array<TestServer> = []
afterAll(async () => {
  for (const s of servers) await s.close()
})
const start = async (overrides: Record<string, unknown> = {}) => {
  const s = await startTestServer(overrides)
  servers.push(s)
  return s
}
const lines = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, "utf8").split("\n").filter(Boolean) : [])
const waitLines = async (file: string, n: number) => {
  for (let i = 0; i < 300 && lines(file).length < n; i++) await new Promise((r) => setTimeout(r, 10))
  return lines(file)
}
const run = async (args: ReadonlyArray<string>) => {
  let out = ""
  let err = ""
  const code = await replayCommand(args, { out: (t) => (out += `${t}\n`), err: (t) => (err += t), tty: false })
  return { code, out, err }
}
const JSONDATA = "/voip/api/jsondata.html"

describe("review: replay --credentials and multipart spellings the bridge reads", () => {
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
