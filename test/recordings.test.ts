/** Recording upload (§2.1.5) and download (§2.4.1): MD5, size, hostile names, ranges, MP3, traversal, auth. */
import * as fs from "node:fs"
import * as path from "node:path"
import Database from "better-sqlite3"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { asAdmin, callApi, creds, md5, startTestServer, type TestServer } from "./support/TestServer.js"
import { rawRequest } from "./support/Raw.js"
import { uploadRecording, wav } from "./support/Recordings.js"

let server: TestServer

const upload = uploadRecording

const q = () => new URLSearchParams(creds()).toString()
const recordingRows = () => {
  const db = new Database(path.join(server.dataDir, "bridge.db"), { readonly: true })
  try {
    return db.prepare("SELECT file_name, rel_path FROM recordings").all() as Array<{ file_name: string; rel_path: string }>
  } finally {
    db.close()
  }
}
const filesUnder = (dir: string): Array<string> =>
  fs.existsSync(dir) ? fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(path.join(dir, e.name)) : [path.join(dir, e.name)])) : []

beforeAll(async () => {
  server = await startTestServer({ recordings: { maxUploadBytes: 300_000, openTo: [] } })
})
afterAll(() => server.close())

describe("upload_record_file.html", () => {
  const tone = wav(2)

  it("stores a recording named in Base64 under the data directory, with its MD5", async () => {
    const body = await upload(server, tone, "通话-001.wav")
    expect(body).toMatchObject({ code: 0, message: "OK", path: expect.stringMatching(/^100008\/\d{6}\/\d{2}\/通话-001\.wav$/), size: tone.length })
    const stored = fs.readFileSync(path.join(server.dataDir, "record", body.path!))
    expect(stored.equals(tone)).toBe(true)
  })

  it("accepts a plain name when isBase is false, and is idempotent on the same name and MD5", async () => {
    const a = await upload(server, tone, "plain-1.wav", { base64: false })
    const b = await upload(server, tone, "plain-1.wav", { base64: false })
    expect(a.code).toBe(0)
    expect(b).toEqual(a)
    expect(recordingRows().filter((r) => r.file_name === "plain-1.wav")).toHaveLength(1)
  })

  it("refuses another file under a taken name (-10)", async () => {
    expect((await upload(server, wav(1), "plain-1.wav", { base64: false })).code).toBe(-10)
  })

  it("of two concurrent uploads of one name with different content, one is stored intact and the other answers -10", async () => {
    const a = wav(0.5)
    const b = wav(0.7)
    const answers = await Promise.all([upload(server, a, "race.wav"), upload(server, b, "race.wav")])
    expect(answers.map((x) => x.code).sort()).toEqual([-10, 0])
    const winner = answers[0]!.code === 0 ? a : b
    const stored = fs.readFileSync(path.join(server.dataDir, "record", answers.find((x) => x.code === 0)!.path!))
    expect(stored.equals(winner)).toBe(true)
    expect(recordingRows().filter((r) => r.file_name === "race.wav")).toHaveLength(1)
  })

  it("refuses a file whose MD5 does not match (-13), storing nothing", async () => {
    const before = filesUnder(path.join(server.dataDir, "record")).length
    const body = await upload(server, tone, "bad-md5.wav", { md5: "0".repeat(32) })
    expect(body).toMatchObject({ code: -13, message: expect.stringMatching(/fileMd5 does not match/) })
    expect(filesUnder(path.join(server.dataDir, "record")).length).toBe(before)
    expect(recordingRows().some((r) => r.file_name === "bad-md5.wav")).toBe(false)
  })

  it("refuses a file over the configured size (-13), storing nothing", async () => {
    const body = await upload(server, wav(30), "too-big.wav")
    expect(body.code).toBe(-13)
    expect(body.httpStatus).toBe(413)
    expect(recordingRows().some((r) => r.file_name === "too-big.wav")).toBe(false)
  })

  it.each([
    ["../../etc/passwd", "passwd"],
    ["/abs/olute.wav", "olute.wav"],
    ["..\\..\\windows\\win.ini", "win.ini"],
    ["a<b>c|d.wav", "abcd.wav"]
  ])("keeps a hostile name %s inside the record directory (as %s)", async (hostile, kept) => {
    const body = await upload(server, wav(0.1), hostile)
    expect(body.code).toBe(0)
    expect(path.basename(body.path!)).toBe(kept)
    const all = filesUnder(server.dataDir)
    expect(all.every((f) => !f.endsWith(kept) || f.startsWith(path.join(server.dataDir, "record") + path.sep))).toBe(true)
  })

  it.each(["..", ".", "a\0b.wav", "   "])("refuses the file name %j (-14 naming fileName)", async (name) => {
    const body = await upload(server, wav(0.1), name)
    expect(body.code).toBe(-14)
    expect(body.message).toMatch(/^parameter fileName/)
  })

  it("refuses a request without the file (-14) or without credentials (-2)", async () => {
    const fd = new FormData()
    for (const [k, v] of Object.entries({ ...creds(), fileName: "eA==", isBase: "true", fileMd5: "0".repeat(32) })) fd.append(k, v)
    const res = await fetch(`${server.url}/voip/api/upload_record_file.html`, { method: "POST", body: fd })
    expect(await res.json()).toMatchObject({ code: -14, message: expect.stringMatching(/^parameter fileGsm/) })
    expect((await upload(server, tone, "x.wav", { who: { sa_user: "100008800", sa_password: md5("wrong") } })).code).toBe(-2)
  })
})

describe("downloads", () => {
  const tone = wav(3)
  let relPath = ""
  let cdrId = 0

  beforeAll(async () => {
    // the call record first, its recording later: they find each other either way
    const cdr = await callApi(server, { ...creds(), method: "addCdrRecord", dialId: "700", dialPhoneNum: "13800000000", dialStartTime: "2026-11-24 10:00:00", dialRecordFile: "call-700.wav" })
    cdrId = cdr.cdrId as number
    relPath = (await upload(server, tone, "call-700.wav")).path!
  })

  it("findDialrecord answers the recording's path in cdrRecordFile", async () => {
    const { rows } = (await callApi(server, { ...creds(), method: "findDialrecord", scdrId: String(cdrId) })) as unknown as { rows: Array<{ cdrRecordFile: string }> }
    expect(rows[0]!.cdrRecordFile).toBe(relPath)
    // and the other order: recording first, then the call record
    const early = await upload(server, wav(0.2), "call-701.wav")
    const late = await callApi(server, { ...creds(), method: "addCdrRecord", dialId: "701", dialRecordFile: "call-701.wav" })
    const again = (await callApi(server, { ...creds(), method: "findDialrecord", scdrId: String(late.cdrId) })) as unknown as { rows: Array<{ cdrRecordFile: string }> }
    expect(again.rows[0]!.cdrRecordFile).toBe(early.path)
  })

  it("GET /voip/record/<path> streams the whole file with its content type", async () => {
    const res = await fetch(`${server.url}/voip/record/${relPath.split("/").map(encodeURIComponent).join("/")}?${q()}`)
    expect(res.status).toBe(200)
    expect(res.headers.get("content-type")).toBe("audio/wav")
    expect(Buffer.from(await res.arrayBuffer()).equals(tone)).toBe(true)
  })

  it("answers a Range request with 206 and exactly those bytes", async () => {
    const res = await fetch(`${server.url}/voip/record/${relPath.split("/").map(encodeURIComponent).join("/")}?${q()}`, { headers: { range: "bytes=100-199" } })
    expect(res.status).toBe(206)
    expect(res.headers.get("content-range")).toBe(`bytes 100-199/${tone.length}`)
    expect(Buffer.from(await res.arrayBuffer()).equals(tone.subarray(100, 200))).toBe(true)
  })

  it("record.json?id=&ismp3=1 answers MP3 frames, transcoded once and then served from the cache", async () => {
    const url = `${server.url}/voip/api/client/download/record.json?id=${cdrId}&ismp3=1&${q()}`
    const res = await fetch(url)
    expect(res.status).toBe(200)
    expect(res.headers.get("content-type")).toBe("audio/mpeg")
    const mp3 = Buffer.from(await res.arrayBuffer())
    expect(mp3.length).toBeGreaterThan(1000)
    // an MPEG audio frame starts with 11 set sync bits
    expect(mp3[0]).toBe(0xff)
    expect(mp3[1]! & 0xe0).toBe(0xe0)
    const cached = path.join(server.dataDir, "cache", "mp3", `${relPath}.mp3`)
    const first = fs.statSync(cached).mtimeMs
    await new Promise((r) => setTimeout(r, 20))
    const again = Buffer.from(await (await fetch(url)).arrayBuffer())
    expect(again.equals(mp3)).toBe(true)
    expect(fs.statSync(cached).mtimeMs).toBe(first)
  })

  it("ismp3=0 answers the original", async () => {
    const res = await fetch(`${server.url}/voip/api/client/download/record.json?id=${cdrId}&ismp3=0&${q()}`)
    expect(Buffer.from(await res.arrayBuffer()).equals(tone)).toBe(true)
  })

  it("transcodes A-law recordings too", async () => {
    await upload(server, wav(1, "alaw"), "alaw-1.wav")
    const cdr = await callApi(server, { ...creds(), method: "addCdrRecord", dialId: "702", dialRecordFile: "alaw-1.wav" })
    const res = await fetch(`${server.url}/voip/api/client/download/record.json?id=${cdr.cdrId}&ismp3=1&${q()}`)
    expect(res.status).toBe(200)
    const mp3 = Buffer.from(await res.arrayBuffer())
    expect(mp3[0]).toBe(0xff)
  })

  it("requires credentials (-2), and answers 404 for unknown ids and other enterprises' files", async () => {
    expect(await (await fetch(`${server.url}/voip/record/${relPath}`)).json()).toMatchObject({ code: -2 })
    expect(await (await fetch(`${server.url}/voip/api/client/download/record.json?id=${cdrId}`)).json()).toMatchObject({ code: -2 })
    expect((await fetch(`${server.url}/voip/api/client/download/record.json?id=999&${q()}`)).status).toBe(404)
    expect(await (await fetch(`${server.url}/voip/api/client/download/record.json?id=abc&${q()}`)).json()).toMatchObject({ code: -14 })
    expect((await fetch(`${server.url}/voip/record/200001/x.wav?${q()}`)).status).toBe(404)
  })

  it.each([
    "/voip/record/../bridge.db",
    "/voip/record/100008/../../bridge.db",
    "/voip/record/..%2f..%2fbridge.db",
    "/voip/record/100008%2f..%2f..%2fbridge.db",
    "/voip/record/%2e%2e/%2e%2e/bridge.db",
    "/voip/record/100008/..%5c..%5cbridge.db",
    "/voip/record/%2fetc%2fpasswd",
    "/voip/record//etc/passwd",
    "/voip/record/100008/x.wav%00.mp3",
    "/voip/record/100008/%252e%252e/%252e%252e/bridge.db",
    "/voip/record/100008/"
  ])("refuses the traversal %s with 400/404, reading nothing", async (target) => {
    const res = await rawRequest(server.url, "GET", `${target}?${q()}`)
    expect([400, 404]).toContain(res.status)
    expect(res.body.includes(Buffer.from("SQLite format"))).toBe(false)
    expect(res.body.includes(Buffer.from("root:"))).toBe(false)
  })

  it("opens downloads without credentials to configured networks", async () => {
    const open = await startTestServer({ recordings: { maxUploadBytes: 300_000, openTo: ["127.0.0.0/8"] } })
    try {
      const { path: p } = await upload(open, tone, "open.wav")
      const res = await fetch(`${open.url}/voip/record/${p}`)
      expect(res.status).toBe(200)
      expect(Buffer.from(await res.arrayBuffer()).equals(tone)).toBe(true)
    } finally {
      await open.close()
    }
  })
})

describe("the recording.uploaded event", () => {
  it("is raised for each stored recording", async () => {
    await asAdmin(server, "getExtension")
    const db = new Database(path.join(server.dataDir, "bridge.db"), { readonly: true })
    const n = (db.prepare("SELECT count(*) AS n FROM events WHERE type = 'recording.uploaded'").get() as { n: number }).n
    db.close()
    expect(n).toBe(recordingRows().length)
  })
})
