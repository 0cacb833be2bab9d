/**
 * Hostile and unlucky uploads: a body cut short, unauthenticated bulk, names that leak or do
 * not round-trip, a disk that fills during the upload or before the row's commit.
 */
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import Database from "better-sqlite3"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { rawRequest } from "./support/Raw.js"
import { creds, md5, startTestServer, type TestServer } from "./support/TestServer.js"
import { fillLeaving, mountTmpfs, type Tmpfs } from "./support/Tmpfs.js"

type Part = { readonly name: string; readonly value: string } | { readonly name: string; readonly filename: string; readonly data: Buffer }

const BOUNDARY = "----vb-hardening"
/** A multipart body as a list of buffers: a file's bytes are referenced, never copied. */
const multipartBody = (parts: ReadonlyArray<Part>, close = true): Array<Buffer> => {
  const out: Array<Buffer> = []
  for (const p of parts) {
    const disposition = "filename" in p ? `form-data; name="${p.name}"; filename="${p.filename}"\r\nContent-Type: application/octet-stream` : `form-data; name="${p.name}"`
    out.push(Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: ${disposition}\r\n\r\n`))
    out.push("filename" in p ? p.data : Buffer.from(p.value))
    out.push(Buffer.from("\r\n"))
  }
  if (close) out.push(Buffer.from(`--${BOUNDARY}--\r\n`))
  return out
}

interface Answer {
  readonly status: number
  readonly headers: string
  readonly body: { code: number; message: string; path?: string; size?: number }
}

/**
 * Sends a multipart request over a plain socket, writing with backpressure; the server may
 * answer and close before the body is all sent (that is the point), so write errors after
 * an answer are expected. `abortAfter` bytes: the client goes away instead.
 */
const send = (base: string, target: string, chunks: ReadonlyArray<Buffer>, abortAfter?: number) =>
  new Promise<Answer | undefined>((resolve, reject) => {
    const url = new URL(base)
    const length = chunks.reduce((n, c) => n + c.length, 0)
    const received: Array<Buffer> = []
    const socket = net.connect(Number(url.port), url.hostname)
    let sent = 0
    const finish = () => {
      const all = Buffer.concat(received)
      const split = all.indexOf("\r\n\r\n")
      if (split < 0) return abortAfter !== undefined ? resolve(undefined) : reject(new Error("no answer"))
      const head = all.subarray(0, split).toString("latin1")
      resolve({ status: Number(head.split(" ")[1]), headers: head, body: JSON.parse(all.subarray(split + 4).toString("utf8")) as Answer["body"] })
    }
    socket.on("data", (c: Buffer) => received.push(c))
    socket.on("close", finish)
    socket.on("error", () => undefined) // EPIPE / ECONNRESET once the server has answered and closed
    socket.on("connect", async () => {
      socket.write(`POST ${target} HTTP/1.1\r\nHost: ${url.host}\r\nConnection: close\r\nContent-Type: multipart/form-data; boundary=${BOUNDARY}\r\nContent-Length: ${length}\r\n\r\n`)
      for (const c of chunks) {
        if (socket.destroyed) return
        if (abortAfter !== undefined && sent + c.length > abortAfter) {
          socket.write(c.subarray(0, abortAfter - sent))
          await new Promise((r) => setTimeout(r, 200))
          return void socket.destroy()
        }
        sent += c.length
        if (!socket.write(c)) await new Promise((r) => socket.once("drain", r).once("close", r))
      }
    })
  })

const hex = (b: Buffer) => crypto.createHash("md5").update(b).digest("hex")
const uploadParts = (file: Buffer, name: string, opts: { who?: Record<string, string>; base64?: boolean; credsAfter?: boolean; copies?: number } = {}): Array<Part> => {
  const who = Object.entries(opts.who ?? creds()).map(([name, value]) => ({ name, value }))
  const fields = [
    { name: "fileName", value: opts.base64 === false ? name : Buffer.from(name, "utf8").toString("base64") },
    { name: "isBase", value: opts.base64 === false ? "false" : "true" },
    { name: "fileMd5", value: hex(file) }
  ]
  const files = Array.from({ length: opts.copies ?? 1 }, (_, i) => ({ name: i === 0 ? "fileGsm" : `extra${i}`, filename: "a.wav", data: file }))
  return opts.credsAfter ? [...fields, ...files, ...who] : [...who, ...fields, ...files]
}
const UPLOAD = "/voip/api/upload_record_file.html"

const filesUnder = (dir: string): Array<string> =>
  fs.existsSync(dir) ? fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(path.join(dir, e.name)) : [path.join(dir, e.name)])) : []
const rows = (dataDir: string, name: string) => {
  const db = new Database(path.join(dataDir, "bridge.db"), { readonly: true })
  try {
    return db.prepare("SELECT rel_path FROM recordings WHERE file_name = ?").all(name)
  } finally {
    db.close()
  }
}
/** GET /voip/record/<path>, each segment URL-encoded as a client would. */
const download = async (server: { url: string }, relPath: string) => {
  const res = await fetch(`${server.url}/voip/record/${relPath.split("/").map(encodeURIComponent).join("/")}?${new URLSearchParams(creds())}`)
  return { status: res.status, bytes: Buffer.from(await res.arrayBuffer()) }
}
const healthy = async (server: { url: string }) => expect((await fetch(`${server.url}/healthz`)).status).toBe(200)

/** Bytes that look like a recording, different per seed. */
const recording = (bytes: number, seed = 1) => {
  const b = Buffer.alloc(bytes)
  for (let i = 0; i < bytes; i += 4096) b.writeUInt32LE((i * 2654435761 + seed) >>> 0, i)
  b.write("RIFF", 0)
  return b
}

describe("multipart bodies", () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startTestServer()
  })
  afterAll(() => server.close())

  it.each(["/voip/api/jsondata.html", UPLOAD, "/api/voip.json"])("a body cut short in a file part answers 400 / -14 on %s, and the process keeps serving", async (target) => {
    const body = Buffer.from(
      '--B\r\nContent-Disposition: form-data; name="method"\r\n\r\ngetExtension\r\n--B\r\nContent-Disposition: form-data; name="fileGsm"; filename="a.wav"\r\n\r\nRIFF0000'
    )
    const res = await rawRequest(server.url, "POST", target, { "Content-Type": "multipart/form-data; boundary=B" }, body)
    expect(res.status).toBe(400)
    expect(JSON.parse(res.body.toString("utf8"))).toMatchObject({ code: -14, message: expect.stringMatching(/^malformed multipart body/) })
    await healthy(server)
    expect(filesUnder(path.join(server.dataDir, "tmp"))).toEqual([])
  })
})

describe("unauthenticated and oversized uploads", () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startTestServer({ recordings: { maxUploadBytes: 25_000_000, openTo: [] } })
  })
  afterAll(() => server.close())

  it("refuses wrong credentials before reading the files: three parallel 4 × 20 MB uploads cost little memory and leave nothing", async () => {
    const file = recording(20_000_000)
    const wrong = { sa_user: "100008800", sa_password: md5("wrong") }
    global.gc?.()
    const before = process.memoryUsage().rss
    const answers = await Promise.all([1, 2, 3].map(() => send(server.url, UPLOAD, multipartBody(uploadParts(file, "bulk.wav", { who: wrong, copies: 4 })))))
    const growth = process.memoryUsage().rss - before
    for (const a of answers) {
      expect(a!.body.code).toBe(-2)
      expect(a!.headers).toMatch(/connection: close/i)
    }
    expect(growth).toBeLessThan(100 * 1024 * 1024)
    expect(filesUnder(path.join(server.dataDir, "tmp"))).toEqual([])
    expect(filesUnder(path.join(server.dataDir, "record"))).toEqual([])
    await healthy(server)
  })

  it("still stores a correct upload, which downloads with the right MD5", async () => {
    const file = recording(3_000_000, 2)
    const a = await send(server.url, UPLOAD, multipartBody(uploadParts(file, "good.wav")))
    expect(a!.body).toMatchObject({ code: 0, size: file.length })
    const got = await download(server, a!.body.path!)
    expect(got.status).toBe(200)
    expect(hex(got.bytes)).toBe(hex(file))
    expect(filesUnder(path.join(server.dataDir, "tmp"))).toEqual([])
  })

  it("credentials after the file: the file is read to a temporary file and the credentials checked after", async () => {
    const file = recording(500_000, 3)
    const ok = await send(server.url, UPLOAD, multipartBody(uploadParts(file, "late-creds.wav", { credsAfter: true })))
    expect(ok!.body.code).toBe(0)
    const refused = await send(server.url, UPLOAD, multipartBody(uploadParts(file, "late-wrong.wav", { credsAfter: true, who: { sa_user: "100008800", sa_password: md5("x") } })))
    expect(refused!.body.code).toBe(-2)
    expect(rows(server.dataDir, "late-wrong.wav")).toEqual([])
    expect(filesUnder(path.join(server.dataDir, "tmp"))).toEqual([])
  })

  it("a client that goes away in the middle of its file leaves no temporary file", async () => {
    const file = recording(5_000_000, 4)
    const answer = await send(server.url, UPLOAD, multipartBody(uploadParts(file, "gone.wav")), 2_000_000)
    expect(answer).toBeUndefined()
    for (let i = 0; i < 50 && filesUnder(path.join(server.dataDir, "tmp")).length > 0; i++) await new Promise((r) => setTimeout(r, 20))
    expect(filesUnder(path.join(server.dataDir, "tmp"))).toEqual([])
    expect(rows(server.dataDir, "gone.wav")).toEqual([])
    await healthy(server)
  })
})

describe("a restart", () => {
  it("removes what an earlier run left in <dataDir>/tmp", async () => {
    const server = await startTestServer()
    try {
      fs.mkdirSync(path.join(server.dataDir, "tmp"))
      fs.writeFileSync(path.join(server.dataDir, "tmp", "upload-1-deadbeef"), "left by a crash")
      expect((await send(server.url, UPLOAD, multipartBody(uploadParts(recording(10_000), "after-crash.wav"))))!.body.code).toBe(0)
      expect(filesUnder(path.join(server.dataDir, "tmp"))).toEqual([])
    } finally {
      await server.close()
    }
  })
})

describe("uploads in flight", () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startTestServer({ recordings: { maxUploadBytes: 4_000_000, maxInFlightBytes: 1_000_000, openTo: [] } })
  })
  afterAll(() => server.close())

  it("over recordings.maxInFlightBytes answers 503 / -12 and keeps nothing; within it, uploads go on", async () => {
    const big = await send(server.url, UPLOAD, multipartBody(uploadParts(recording(2_000_000, 5), "big.wav")))
    expect(big!.status).toBe(503)
    expect(big!.body.code).toBe(-12)
    expect(filesUnder(path.join(server.dataDir, "tmp"))).toEqual([])
    const small = await send(server.url, UPLOAD, multipartBody(uploadParts(recording(600_000, 6), "small.wav")))
    expect(small!.body.code).toBe(0)
    // the budget came back: the same again fits
    expect((await send(server.url, UPLOAD, multipartBody(uploadParts(recording(600_000, 7), "small-2.wav"))))!.body.code).toBe(0)
  })
})

describe("uploads without credentials before their file", () => {
  let server: TestServer
  // anonymous uploads share an eighth of it: 100,000 bytes
  beforeAll(async () => {
    server = await startTestServer({ recordings: { maxUploadBytes: 4_000_000, maxInFlightBytes: 800_000, openTo: [] } })
  })
  afterAll(() => server.close())

  const tmpBytes = () => filesUnder(path.join(server.dataDir, "tmp")).reduce((n, f) => n + fs.statSync(f).size, 0)

  it("one that holds its share does not make an authenticated upload fail; a second from the same address answers 503 / -12", async () => {
    // no credentials, the file first, 90,000 bytes sent and the rest held back
    const url = new URL(server.url)
    const slow = net.connect(Number(url.port), url.hostname)
    const slowAnswer: Array<Buffer> = []
    slow.on("data", (c: Buffer) => slowAnswer.push(c))
    slow.on("error", () => undefined)
    await new Promise((r) => slow.once("connect", r))
    const head = Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="fileGsm"; filename="a.wav"\r\n\r\n`)
    slow.write(`POST ${UPLOAD} HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: multipart/form-data; boundary=${BOUNDARY}\r\nContent-Length: 50000000\r\n\r\n`)
    slow.write(Buffer.concat([head, recording(90_000, 20)]))
    try {
      for (let i = 0; i < 200 && tmpBytes() < 90_000; i++) await new Promise((r) => setTimeout(r, 20))
      expect(tmpBytes()).toBeGreaterThanOrEqual(90_000)

      // 750,000 + the 90,000 held would be over 800,000 in one budget
      const file = recording(750_000, 21)
      const authenticated = await send(server.url, UPLOAD, multipartBody(uploadParts(file, "while-anonymous.wav")))
      expect(authenticated!.body).toMatchObject({ code: 0, size: file.length })
      expect(hex((await download(server, authenticated!.body.path!)).bytes)).toBe(hex(file))

      // a second one from the same address, small enough for the share
      const second = await send(server.url, UPLOAD, multipartBody(uploadParts(recording(1_000, 22), "second-anonymous.wav", { credsAfter: true })))
      expect(second!.status).toBe(503)
      expect(second!.body.code).toBe(-12)
      expect(rows(server.dataDir, "second-anonymous.wav")).toEqual([])
      // the first is still being received, unanswered
      expect(slowAnswer).toEqual([])
      await healthy(server)
    } finally {
      slow.destroy()
    }
    // the client gone: its bytes and its address's turn come back
    for (let i = 0; i < 100 && tmpBytes() > 0; i++) await new Promise((r) => setTimeout(r, 20))
    expect(filesUnder(path.join(server.dataDir, "tmp"))).toEqual([])
    let after = await send(server.url, UPLOAD, multipartBody(uploadParts(recording(1_000, 23), "after-anonymous.wav", { credsAfter: true })))
    for (let i = 0; i < 50 && after!.status === 503; i++) {
      await new Promise((r) => setTimeout(r, 20))
      after = await send(server.url, UPLOAD, multipartBody(uploadParts(recording(1_000, 23), "after-anonymous.wav", { credsAfter: true })))
    }
    expect(after!.body.code).toBe(0)
  })

  it("one larger than the share answers 503 / -12, keeps nothing, and says to send the credentials first", async () => {
    const a = await send(server.url, UPLOAD, multipartBody(uploadParts(recording(200_000, 24), "over-share.wav", { credsAfter: true })))
    expect(a!.status).toBe(503)
    expect(a!.body.code).toBe(-12)
    expect(a!.body.message).toMatch(/before the file/)
    expect(rows(server.dataDir, "over-share.wav")).toEqual([])
    for (let i = 0; i < 50 && filesUnder(path.join(server.dataDir, "tmp")).length > 0; i++) await new Promise((r) => setTimeout(r, 20))
    expect(filesUnder(path.join(server.dataDir, "tmp"))).toEqual([])
    // with the credentials first, the same file is stored
    expect((await send(server.url, UPLOAD, multipartBody(uploadParts(recording(200_000, 24), "over-share.wav"))))!.body.code).toBe(0)
    await healthy(server)
  })
})

describe("file names", () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startTestServer()
  })
  afterAll(() => server.close())

  it("a name over 200 UTF-8 bytes answers -14 and the message names no server path", async () => {
    const a = await send(server.url, UPLOAD, multipartBody(uploadParts(recording(10_000), "中".repeat(100))))
    expect(a!.body.code).toBe(-14)
    expect(a!.body.message).toMatch(/^parameter fileName/)
    expect(a!.body.message).not.toContain(server.dataDir)
    expect(a!.body.message).not.toMatch(/record\/|ENAMETOOLONG/)
    // 65 × 3 bytes + ".wav" = 199 bytes: accepted
    const fits = await send(server.url, UPLOAD, multipartBody(uploadParts(recording(10_000), `${"中".repeat(65)}.wav`)))
    expect(fits!.body.code).toBe(0)
    expect((await download(server, fits!.body.path!)).status).toBe(200)
  })

  it.each([
    ["..%2f..%2fevil.wav", "evil.wav"],
    ["100%.wav", "100.wav"],
    ["%E9%80%9A%E8%AF%9D.wav", "通话.wav"]
  ])("the name %s is stored as %s and downloads by the path answered", async (name, kept) => {
    const file = recording(20_000, name.length)
    const a = await send(server.url, UPLOAD, multipartBody(uploadParts(file, name, { base64: false })))
    expect(a!.body.code).toBe(0)
    expect(path.basename(a!.body.path!)).toBe(kept)
    const got = await download(server, a!.body.path!)
    expect(got.status).toBe(200)
    expect(got.bytes.equals(file)).toBe(true)
  })
})

// mounting needs root (the tests' normal case); elsewhere these two are reported as skipped
describe("a full disk (a 4 MiB tmpfs as the data directory)", () => {
  const fsys: Tmpfs | undefined = mountTmpfs(4 * 1024 * 1024)
  let server: TestServer
  let dataDir: string
  beforeAll(async () => {
    if (!fsys) return
    dataDir = path.join(fsys.dir, "data")
    server = await startTestServer({ dataDir })
  })
  afterAll(async () => {
    if (!fsys) return
    await server.close()
    fsys.unmount()
  })
  const nothingLeft = (name: string) => {
    expect(filesUnder(path.join(dataDir, "record")).filter((f) => f.endsWith(name))).toEqual([])
    expect(filesUnder(dataDir).filter((f) => f.endsWith(".part"))).toEqual([])
    expect(filesUnder(path.join(dataDir, "tmp"))).toEqual([])
    expect(rows(dataDir, name)).toEqual([])
  }

  it.skipIf(!fsys)("with 200 KB free a 1 MB upload answers -13 and keeps nothing; with room it is stored whole", async () => {
    const file = recording(1_000_000, 8)
    const filler = fillLeaving(fsys!.dir, 200_000)
    try {
      const a = await send(server.url, UPLOAD, multipartBody(uploadParts(file, "full.wav")))
      expect(a!.body.code).toBe(-13)
      expect(a!.body.message).not.toContain(dataDir)
      nothingLeft("full.wav")
      await healthy(server)
    } finally {
      fs.rmSync(filler)
    }
    const b = await send(server.url, UPLOAD, multipartBody(uploadParts(file, "full.wav")))
    expect(b!.body).toMatchObject({ code: 0, size: file.length })
    expect(hex((await download(server, b!.body.path!)).bytes)).toBe(hex(file))
  })

  it.skipIf(!fsys)("room for the file but not for the row's commit: -6 or -13, and the file is not stranded", async () => {
    const file = recording(400_000, 9)
    // the file is received into the tmpfs and renamed in place: just its pages are free, none for the WAL
    const filler = fillLeaving(fsys!.dir, file.length + 4096)
    try {
      const a = await send(server.url, UPLOAD, multipartBody(uploadParts(file, "no-commit.wav")))
      expect([-6, -13]).toContain(a!.body.code)
      nothingLeft("no-commit.wav")
      await healthy(server)
    } finally {
      fs.rmSync(filler)
    }
    const b = await send(server.url, UPLOAD, multipartBody(uploadParts(file, "no-commit.wav")))
    expect(b!.body.code).toBe(0)
    expect(hex((await download(server, b!.body.path!)).bytes)).toBe(hex(file))
  })
})
