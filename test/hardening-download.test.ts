/**
 * Recording downloads under hostile or heavy use: an MP3 transcode of a long call does not
 * stop the bridge, an agent cannot download another agent's recording, and a range past the
 * end is 416, not 404.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { asAdmin, callApi, creds, startTestServer, type TestServer } from "./support/TestServer.js"
import { rawRequest } from "./support/Raw.js"
import { uploadRecording, wav } from "./support/Recordings.js"

let server: TestServer

/** A mono 8 kHz 16-bit PCM WAV of a 440 Hz tone (as in recordings.test.ts). */
const agentA = creds("100008401", "agent-a-pw")
const agentB = creds("100008402", "agent-b-pw")

const upload = async (file: Buffer, name: string, who: Record<string, string> = creds()) => {
  const body = await uploadRecording(server, file, name, { who })
  expect(body.code).toBe(0)
  return body.path!
}

const addCdr = async (who: Record<string, string>, dialId: string, recordFile: string) => {
  const body = await callApi(server, { ...who, method: "addCdrRecord", dialId, dialPhoneNum: "13800000000", dialStartTime: "2026-11-24 10:00:00", dialRecordFile: recordFile })
  expect(body.code).toBe(0)
  return body.cdrId as number
}

const query = (who: Record<string, string>) => new URLSearchParams(who).toString()
const byId = (id: number, who: Record<string, string>, extra = "") => `${server.url}/voip/api/client/download/record.json?id=${id}&${query(who)}${extra}`
const byPath = (rel: string, who: Record<string, string>) => `${server.url}/voip/record/${rel.split("/").map(encodeURIComponent).join("/")}?${query(who)}`

const healthy = async () => (await fetch(`${server.url}/healthz`)).status === 200
const isMp3 = (b: Buffer) => (b[0] === 0xff && (b[1]! & 0xe0) === 0xe0) || b.subarray(0, 3).toString("latin1") === "ID3"
const filesUnder = (dir: string): Array<string> =>
  fs.existsSync(dir) ? fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(path.join(dir, e.name)) : [path.join(dir, e.name)])) : []
const cacheOf = (rel: string) => path.join(server.dataDir, "cache", "mp3", `${rel}.mp3`)
const partFiles = () => filesUnder(path.join(server.dataDir, "cache")).filter((f) => f.endsWith(".part"))
const until = async (done: () => boolean, ms = 60_000) => {
  const end = Date.now() + ms
  while (!done()) {
    if (Date.now() > end) throw new Error("timed out waiting")
    await new Promise((r) => setTimeout(r, 50))
  }
}

beforeAll(async () => {
  server = await startTestServer({ recordings: { maxUploadBytes: 30 * 1024 * 1024, openTo: [] } })
  expect((await asAdmin(server, "addExtension", { exteExtension: "401", extePassword: "agent-a-pw" })).code).toBe(0)
  expect((await asAdmin(server, "addExtension", { exteExtension: "402", extePassword: "agent-b-pw" })).code).toBe(0)
})
afterAll(() => server.close())

describe("MP3 transcoding runs off the event loop", () => {
  // ~20 MB: 21 minutes of 8 kHz 16-bit mono, seconds of lamejs work
  const long = wav(1250)
  let rel = ""
  let cdrId = 0

  beforeAll(async () => {
    rel = await upload(long, "long-call.wav")
    cdrId = await addCdr(creds(), "900", "long-call.wav")
  })

  it("answers /healthz while a long recording is transcoded, and the MP3 is valid", async () => {
    let mp3Done = false
    const download = fetch(byId(cdrId, creds(), "&ismp3=1")).then(async (res) => {
      const body = Buffer.from(await res.arrayBuffer())
      mp3Done = true
      return { status: res.status, type: res.headers.get("content-type"), body }
    })
    const polls: Array<{ ms: number; beforeMp3: boolean }> = []
    while (!mp3Done) {
      const started = performance.now()
      expect(await healthy()).toBe(true)
      polls.push({ ms: performance.now() - started, beforeMp3: !mp3Done })
      await new Promise((r) => setTimeout(r, 20))
    }
    const mp3 = await download
    // ordering: /healthz answers completed before the MP3 download finished...
    expect(polls.filter((p) => p.beforeMp3).length).toBeGreaterThan(0)
    // ...and none waited for the transcode (on the event loop one poll waits all of its seconds)
    expect(Math.max(...polls.map((p) => p.ms))).toBeLessThan(1000)
    expect(mp3.status).toBe(200)
    expect(mp3.type).toBe("audio/mpeg")
    expect(mp3.body.length).toBeGreaterThan(100_000)
    expect(isMp3(mp3.body)).toBe(true)
    expect(fs.readFileSync(cacheOf(rel)).equals(mp3.body)).toBe(true)
    expect(partFiles()).toEqual([])
  }, 120_000)

  it("concurrent requests for one recording share one transcode, whose cache file is written once", async () => {
    const file = wav(300)
    const shared = await upload(file, "shared-call.wav")
    const id = await addCdr(creds(), "901", "shared-call.wav")
    // every temporary file the transcodes create shows up in this directory
    const dir = path.dirname(cacheOf(shared))
    fs.mkdirSync(dir, { recursive: true })
    const created = new Set<string>()
    const watcher = fs.watch(dir, (_event, name) => {
      if (name?.endsWith(".part")) created.add(name)
    })
    try {
      const answers = await Promise.all(
        Array.from({ length: 4 }, async () => {
          const res = await fetch(byId(id, creds(), "&ismp3=1"))
          return { status: res.status, body: Buffer.from(await res.arrayBuffer()) }
        })
      )
      expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200])
      for (const a of answers) expect(a.body.equals(answers[0]!.body)).toBe(true)
      expect(isMp3(answers[0]!.body)).toBe(true)
      await new Promise((r) => setTimeout(r, 100))
      expect(created.size).toBe(1)
    } finally {
      watcher.close()
    }
    expect(partFiles()).toEqual([])
  }, 120_000)

  it("more transcodes than run at once all finish: the others wait for a slot", async () => {
    const names = ["queued-1.wav", "queued-2.wav", "queued-3.wav", "queued-4.wav"]
    const ids: Array<number> = []
    for (const [i, name] of names.entries()) {
      await upload(wav(60 + i), name)
      ids.push(await addCdr(creds(), `91${i}`, name))
    }
    const answers = await Promise.all(
      ids.map(async (id) => {
        const res = await fetch(byId(id, creds(), "&ismp3=1"))
        return { status: res.status, body: Buffer.from(await res.arrayBuffer()) }
      })
    )
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200])
    expect(answers.every((a) => isMp3(a.body))).toBe(true)
    expect(await healthy()).toBe(true)
  }, 120_000)

  it("a client that goes away leaves no half-written cache file; the transcode finishes for the next request", async () => {
    const file = wav(600)
    const abandoned = await upload(file, "abandoned-call.wav")
    const id = await addCdr(creds(), "902", "abandoned-call.wav")
    const controller = new AbortController()
    const request = fetch(byId(id, creds(), "&ismp3=1"), { signal: controller.signal }).catch((e: Error) => e)
    await new Promise((r) => setTimeout(r, 300))
    // nothing is cached yet: the transcode takes longer than that
    expect(fs.existsSync(cacheOf(abandoned))).toBe(false)
    controller.abort()
    expect(await request).toBeInstanceOf(Error)
    expect(await healthy()).toBe(true)
    // whenever the cache file is there, it is whole
    await until(() => fs.existsSync(cacheOf(abandoned)))
    const cached = fs.readFileSync(cacheOf(abandoned))
    expect(isMp3(cached)).toBe(true)
    const res = await fetch(byId(id, creds(), "&ismp3=1"))
    expect(Buffer.from(await res.arrayBuffer()).equals(cached)).toBe(true)
    expect(partFiles()).toEqual([])
  }, 120_000)
})

describe("an agent downloads only the recordings findDialrecord shows it", () => {
  const tone = wav(1)
  let bRel = ""
  let bCdr = 0
  let aUploaded = ""
  let orphan = ""

  beforeAll(async () => {
    // B's call, its recording uploaded by the admin
    bCdr = await addCdr(agentB, "100", "b-call.wav")
    bRel = await upload(tone, "b-call.wav")
    // A's own upload, no call names it
    aUploaded = await upload(wav(0.5), "a-upload.wav", agentA)
    // a file in the record directory that no recordings row describes
    orphan = `${path.dirname(bRel)}/orphan.wav`
    fs.writeFileSync(path.join(server.dataDir, "record", orphan), tone)
  })

  it("agent A cannot download B's call by id or by path: 404 -11, as for what does not exist", async () => {
    const hidden = await fetch(byId(bCdr, agentA))
    expect(hidden.status).toBe(404)
    const hiddenBody = await hidden.json()
    expect(hiddenBody).toMatchObject({ code: -11 })
    const missing = await fetch(byId(987654, agentA))
    expect(await missing.json()).toEqual(hiddenBody)

    const byPathHidden = await fetch(byPath(bRel, agentA))
    expect(byPathHidden.status).toBe(404)
    const pathBody = await byPathHidden.json()
    expect(pathBody).toMatchObject({ code: -11 })
    const pathMissing = await fetch(byPath(`${path.dirname(bRel)}/no-such.wav`, agentA))
    expect(await pathMissing.json()).toEqual(pathBody)
    // nor as MP3
    expect((await fetch(byId(bCdr, agentA, "&ismp3=1"))).status).toBe(404)
    expect(await healthy()).toBe(true)
  })

  it("findDialrecord hides the same call from A", async () => {
    const found = await callApi(server, { ...agentA, method: "findDialrecord", scdrId: String(bCdr) })
    expect(found.total).toBe(0)
  })

  it("agent B, whose call it is, and the admin download it", async () => {
    for (const who of [agentB, creds()]) {
      const one = await fetch(byId(bCdr, who))
      expect(one.status).toBe(200)
      expect(Buffer.from(await one.arrayBuffer()).equals(tone)).toBe(true)
      const two = await fetch(byPath(bRel, who))
      expect(two.status).toBe(200)
      expect(Buffer.from(await two.arrayBuffer()).equals(tone)).toBe(true)
    }
  })

  it("an agent downloads a recording it uploaded; another agent does not", async () => {
    expect((await fetch(byPath(aUploaded, agentA))).status).toBe(200)
    const other = await fetch(byPath(aUploaded, agentB))
    expect(other.status).toBe(404)
    expect(await other.json()).toMatchObject({ code: -11 })
  })

  it("a call record of A's naming B's upload does not give A the recording (by path, by id, or a link in findDialrecord)", async () => {
    const secret = wav(0.25)
    const rel = await upload(secret, "secret-b.wav", agentB)
    const bOwn = await addCdr(agentB, "110", "secret-b.wav")
    // A writes a call record of its own that names B's file
    const forged = await addCdr(agentA, "111", "secret-b.wav")
    const byPathA = await fetch(byPath(rel, agentA))
    expect(byPathA.status).toBe(404)
    expect(await byPathA.json()).toMatchObject({ code: -11 })
    for (const extra of ["", "&ismp3=1"]) {
      const byIdA = await fetch(byId(forged, agentA, extra))
      expect(byIdA.status).toBe(404)
      expect(await byIdA.json()).toMatchObject({ code: -11 })
    }
    // A still sees its call record, without the recording's path
    const listed = await callApi(server, { ...agentA, method: "findDialrecord", scdrId: String(forged) })
    expect(listed.total).toBe(1)
    const row = (listed.rows as Array<Record<string, unknown>>)[0]!
    expect(row.cdrRecordFile).toBe("")
    expect(JSON.stringify(listed)).not.toContain(rel)
    // B, who uploaded it, and the admin still reach it, and see the link
    for (const [who, id] of [[agentB, bOwn], [creds(), bOwn], [creds(), forged]] as const) {
      const res = await fetch(byId(id, who))
      expect(res.status).toBe(200)
      expect(Buffer.from(await res.arrayBuffer()).equals(secret)).toBe(true)
      const found = await callApi(server, { ...who, method: "findDialrecord", scdrId: String(id) })
      expect((found.rows as Array<Record<string, unknown>>)[0]!.cdrRecordFile).toBe(rel)
    }
    expect((await fetch(byPath(rel, agentB))).status).toBe(200)
    expect(await healthy()).toBe(true)
  })

  it("a file without a recordings row is the admin's only", async () => {
    for (const who of [agentA, agentB]) {
      const res = await fetch(byPath(orphan, who))
      expect(res.status).toBe(404)
      expect(await res.json()).toMatchObject({ code: -11 })
    }
    const admin = await fetch(byPath(orphan, creds()))
    expect(admin.status).toBe(200)
    expect(Buffer.from(await admin.arrayBuffer()).equals(tone)).toBe(true)
  })

  it("addresses in recordings.openTo still download without credentials", async () => {
    const open = await startTestServer({ recordings: { maxUploadBytes: 300_000, openTo: ["127.0.0.0/8"] } })
    try {
      await asAdmin(open, "addExtension", { exteExtension: "402", extePassword: "agent-b-pw" })
      await callApi(open, { ...agentB, method: "addCdrRecord", dialId: "1", dialRecordFile: "open.wav" })
      const { path: rel } = await uploadRecording(open, tone, "open.wav", { base64: false })
      const res = await fetch(`${open.url}/voip/record/${rel!}`)
      expect(res.status).toBe(200)
      expect(Buffer.from(await res.arrayBuffer()).equals(tone)).toBe(true)
    } finally {
      await open.close()
    }
  })
})

describe("a range past the end of the file", () => {
  it("answers 416 with Content-Range bytes */<size> and a coded body", async () => {
    const tone = wav(0.5)
    const rel = await upload(tone, "ranged.wav")
    const id = await addCdr(creds(), "950", "ranged.wav")
    for (const target of [byPath(rel, creds()), byId(id, creds())]) {
      const url = new URL(target)
      const res = await rawRequest(server.url, "GET", `${url.pathname}${url.search}`, { Range: "bytes=999999999-" })
      expect(res.status).toBe(416)
      expect(res.headers).toMatch(new RegExp(`\\r\\nContent-Range: bytes \\*/${tone.length}\\r\\n`, "i"))
      expect(res.headers).toMatch(/\r\nContent-Type: application\/json/i)
      expect(res.headers).not.toMatch(/content-disposition/i)
      expect(JSON.parse(res.body.toString("utf8"))).toEqual({ code: -12, message: "range not satisfiable" })
    }
    // a satisfiable range still answers 206
    const ok = await fetch(byPath(rel, creds()), { headers: { range: "bytes=0-9" } })
    expect(ok.status).toBe(206)
    expect(Buffer.from(await ok.arrayBuffer()).equals(tone.subarray(0, 10))).toBe(true)
    expect(await healthy()).toBe(true)
  })
})

describe("a transcode that cannot write its MP3", () => {
  it("answers -13 naming the error's code, never a server path, and the bridge still serves", async () => {
    // a bridge of its own: no earlier MP3 has made the cache directories
    const own = await startTestServer()
    try {
      const tone = wav(0.5)
      const up = await uploadRecording(own, tone, "unwritable.wav", { base64: false })
      expect(up.code).toBe(0)
      const cdr = await callApi(own, { ...creds(), method: "addCdrRecord", dialId: "960", dialPhoneNum: "13800000000", dialRecordFile: "unwritable.wav" })
      expect(cdr.code).toBe(0)
      const url = (mp3: boolean) => `${own.url}/voip/api/client/download/record.json?id=${String(cdr.cdrId)}&ismp3=${mp3 ? 1 : 0}&${new URLSearchParams(creds())}`
      // the month's cache directory is a plain file: the worker's mkdir fails with a path in its message
      const monthDir = path.join(own.dataDir, "cache", "mp3", ...up.path!.split("/").slice(0, 2))
      fs.mkdirSync(path.dirname(monthDir), { recursive: true })
      fs.writeFileSync(monthDir, "not a directory")
      const res = await fetch(url(true))
      expect(res.status).toBe(200)
      const body = (await res.json()) as { code: number; message: string }
      expect(body.code).toBe(-13)
      expect(body.message).toMatch(/\((ENOTDIR|EEXIST)\)/)
      expect(body.message).not.toContain("/")
      expect((await fetch(`${own.url}/healthz`)).status).toBe(200)
      // nothing half-written, and the original is still served
      expect(filesUnder(path.join(own.dataDir, "cache")).filter((f) => f.endsWith(".part"))).toEqual([])
      expect(Buffer.from(await (await fetch(url(false))).arrayBuffer()).equals(tone)).toBe(true)
      // with the directory back, the same request transcodes
      fs.rmSync(monthDir)
      const retry = await fetch(url(true))
      expect(retry.status).toBe(200)
      expect(isMp3(Buffer.from(await retry.arrayBuffer()))).toBe(true)
    } finally {
      await own.close()
    }
  }, 60_000)
})

describe("a transcode when the bridge stops", () => {
  it("is stopped with it: no worker writes on, no temporary file is left, the data directory stays gone", async () => {
    const own = await startTestServer()
    const dataDir = own.dataDir
    try {
      const file = wav(900)
      const up = await uploadRecording(own, file, "stopping.wav")
      expect(up.code).toBe(0)
      const cdr = await callApi(own, { ...creds(), method: "addCdrRecord", dialId: "990", dialPhoneNum: "13800000000", dialStartTime: "2026-11-24 10:00:00", dialRecordFile: "stopping.wav" })
      expect(cdr.code).toBe(0)
      const controller = new AbortController()
      const request = fetch(`${own.url}/voip/api/client/download/record.json?id=${String(cdr.cdrId)}&ismp3=1&${new URLSearchParams(creds())}`, { signal: controller.signal }).catch((e: Error) => e)
      // the transcode is under way (a part file or nothing yet), then the bridge stops
      await new Promise((r) => setTimeout(r, 400))
      controller.abort()
      await request
    } finally {
      await own.close()
    }
    // a worker left running would write its cache file (recreating the directory) within seconds
    await new Promise((r) => setTimeout(r, 3000))
    expect(fs.existsSync(dataDir)).toBe(false)
  }, 60_000)
})
