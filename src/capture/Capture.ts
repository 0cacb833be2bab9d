/**
 * Capture: every inbound request and its answer as one JSON line (Record below), for testers
 * to replay (`npm start -- replay`). Off by default; on from the start with `capture.file`
 * (BRIDGE_CAPTURE), or switched by POST /admin/api/capture. The host calls `observe` for each
 * request only while `active` is true, so a bridge that does not capture pays one boolean test.
 *
 * A line is written after its answer has gone; a write that fails is logged and counted and
 * never reaches the request. The file is rotated by size to <file>.1 … <file>.3.
 */
import * as fs from "node:fs"
import type * as http from "node:http"
import * as path from "node:path"
import { Effect, Runtime } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { makeRedactor, SECRET_HEADERS, watchSecrets } from "./Redact.js"

/** One captured exchange: a JSONL line. */
export interface CapturedBody {
  /** UTF-8 text, or base64 for anything else (a recording, a multipart body with one) */
  readonly text?: string
  readonly base64?: string
  /** the body's whole length; longer than what is kept when `truncated` */
  readonly bytes: number
  readonly truncated?: boolean
}
export interface CaptureRecord {
  readonly v: 1
  /** ISO time the request arrived */
  readonly time: string
  readonly method: string
  readonly path: string
  /** the raw query string, without `?` */
  readonly query: string
  readonly headers: Record<string, string>
  readonly body?: CapturedBody
  readonly answer: { readonly status: number; readonly headers: Record<string, string>; readonly body?: CapturedBody }
  /** milliseconds from the request's arrival to its answer's end */
  readonly ms: number
  /** the client went away before its answer was finished */
  readonly aborted?: boolean
}

/** rotated files kept besides the live one */
const KEEP = 3

const utf8 = new TextDecoder("utf-8", { fatal: true })
/** `bytes`: what was kept (redacted already), `total`: the body's length as it was sent */
const bodyOf = (bytes: Buffer, total: number, max: number): CapturedBody | undefined => {
  if (total === 0) return undefined
  const kept = bytes.length > max ? bytes.subarray(0, max) : bytes
  // judged on the body as sent: redaction changes lengths
  const truncated = total > max ? { truncated: true } : {}
  try {
    const text = utf8.decode(kept)
    // NUL is valid UTF-8 but no text a tester wants to read or edit: binary
    if (!text.includes("\u0000")) return { text, bytes: total, ...truncated }
  } catch {
    // not UTF-8: kept as base64
  }
  return { base64: kept.toString("base64"), bytes: total, ...truncated }
}

/**
 * Bytes of records that may wait for the disk at once: past it a record is dropped and counted
 * as a failure (a slow or stalled disk must cost neither the requests nor the process's memory).
 * At least a few of the largest records (two bodies of maxBodyBytes, as base64).
 */
export const pendingLimit = (maxBodyBytes: number) => Math.max(16 * 1024 * 1024, 8 * maxBodyBytes)

/** writes between two checks that the path still names the file being written (a tester may `rm` it) */
const CHECK_EVERY = 8

/**
 * An append-only JSONL file rotated by size; errors go to `onError`, never to the caller. The
 * file is opened again when it was deleted or replaced, and after a rotation or a write that
 * failed: one broken moment never ends the capture.
 */
export class Sink {
  private stream: fs.WriteStream | undefined
  /** the inode the stream writes to: the path naming another (or none) means the file was moved away */
  private ino = 0
  private size = 0
  private failing = false
  private sinceCheck = 0
  failures = 0
  dropped = 0
  records = 0

  constructor(
    readonly file: string,
    private readonly maxBytes: number,
    private readonly maxPending: number,
    private readonly onError: (message: string, e: unknown) => void
  ) {}

  private open() {
    fs.mkdirSync(path.dirname(this.file), { recursive: true })
    // opened here, not by the stream: its inode is known before the first write
    const fd = fs.openSync(this.file, "a", 0o600)
    const stat = fs.fstatSync(fd)
    this.ino = stat.ino
    this.size = stat.size
    const stream = fs.createWriteStream(this.file, { fd, flags: "a" })
    stream.on("error", (e) => {
      this.fail(e)
      // the next record opens it again
      if (this.stream === stream) this.stream = undefined
    })
    this.stream = stream
    this.sinceCheck = 0
    return stream
  }

  private fail(e: unknown) {
    this.failures++
    // one log line per run of failures, not one per request
    if (!this.failing) this.onError("capture: a record could not be written", e)
    this.failing = true
  }

  /** the stream's file is no longer the one at the path (deleted, or renamed by someone else) */
  private moved(): boolean {
    const now = fs.statSync(this.file, { throwIfNoEntry: false })
    return now === undefined || now.ino !== this.ino
  }

  private drop() {
    const old = this.stream
    this.stream = undefined
    // what it still holds lands in the file it was opened on
    old?.end()
  }

  private rotate() {
    try {
      // renamed under the open stream: its pending writes still land in the rotated file
      for (let i = KEEP - 1; i >= 1; i--) if (fs.existsSync(`${this.file}.${i}`)) fs.renameSync(`${this.file}.${i}`, `${this.file}.${i + 1}`)
      if (!this.moved()) fs.renameSync(this.file, `${this.file}.1`)
    } finally {
      // reopened whether the renames went through or not: the next open reads the size afresh
      this.drop()
    }
  }

  write(line: string) {
    try {
      const bytes = Buffer.byteLength(line)
      if (this.stream && this.stream.writableLength + bytes > this.maxPending) {
        this.dropped++
        this.fail(new Error(`more than ${this.maxPending} bytes of records wait for the disk: record dropped`))
        return
      }
      if (this.stream && ++this.sinceCheck >= CHECK_EVERY) {
        this.sinceCheck = 0
        if (this.moved()) this.drop()
      }
      if (this.stream && this.size > 0 && this.size + bytes > this.maxBytes)
        try {
          this.rotate()
        } catch (e) {
          // counted and logged; the record still goes to the file, reopened, which outgrows maxBytes until rotation works again
          this.fail(e)
        }
      const stream = this.stream ?? this.open()
      this.size += bytes
      stream.write(line, (e) => {
        if (e) return
        this.failing = false
        this.records++
      })
    } catch (e) {
      this.fail(e)
      // a stream that threw is not trusted with the next record
      this.drop()
    }
  }

  /** Resolves once everything written so far is in the file. */
  flush(): Promise<void> {
    const stream = this.stream
    if (!stream || stream.writableLength === 0) return Promise.resolve()
    return new Promise((resolve) => stream.write("", () => resolve()))
  }

  close(): Promise<void> {
    const stream = this.stream
    this.stream = undefined
    if (!stream) return Promise.resolve()
    return new Promise((resolve) => stream.end(() => resolve()))
  }
}

export interface CaptureStatus {
  readonly enabled: boolean
  readonly file: string
  readonly keepCredentials: boolean
  readonly records: number
  /** records not written: write errors, and records dropped while the disk lagged */
  readonly failures: number
}

export class Capture extends Effect.Service<Capture>()("Capture", {
  scoped: Effect.gen(function* () {
    const config = (yield* AppConfig).capture
    const dataDir = (yield* AppConfig).dataDir
    const runtime = yield* Effect.runtime<never>()
    const logError = (message: string, e: unknown) =>
      Runtime.runFork(runtime)(Effect.logWarning(message).pipe(Effect.annotateLogs({ error: e instanceof Error ? e.message : String(e) })))
    const redact = makeRedactor()
    const file = path.resolve(config.file ?? path.join(dataDir, "capture.jsonl"))
    const max = config.maxBodyBytes
    let sink: Sink | undefined = config.file ? new Sink(file, config.maxBytes, pendingLimit(config.maxBodyBytes), logError) : undefined

    /** The record's texts with the request's secrets masked: by value (as the bridge parsed them, and its credential headers), then by key. */
    const redacted = (req: http.IncomingMessage, resHeaders: Record<string, string>, secrets: ReadonlySet<string>, url: string, reqBody: Buffer, resBody: Buffer) => {
      const known = new Set(secrets)
      for (const name of SECRET_HEADERS) {
        const v = req.headers[name]
        for (const text of typeof v === "string" ? [v] : (v ?? [])) {
          // the credential after its scheme (`Bearer …`): the scheme stays readable
          const part = name.endsWith("authorization") ? text.replace(/^\w+\s+/, "") : text
          if (part.length >= 4) known.add(part)
        }
      }
      const byValue = redact.values(known)
      const bytes = (b: Buffer) => {
        const text = b.toString("latin1")
        const masked = byValue(text)
        return masked === text ? b : Buffer.from(masked, "latin1")
      }
      const headers = (h: Readonly<Record<string, string | ReadonlyArray<string> | number | undefined>>) =>
        redact.headers(Object.fromEntries(Object.entries(stringHeaders(h)).map(([k, v]) => [k, byValue(v)])))
      return {
        url: byValue(url),
        reqBody: redact.body(req.headers["content-type"], bytes(reqBody)),
        resBody: redact.body(resHeaders["content-type"], bytes(resBody)),
        reqHeaders: headers(req.headers),
        resHeaders: headers(resHeaders)
      }
    }

    const record = (req: http.IncomingMessage, res: http.ServerResponse, secrets: ReadonlySet<string>, headWritten: Record<string, string>, started: number, reqChunks: ReadonlyArray<Buffer>, reqBytes: number, resChunks: ReadonlyArray<Buffer>, resBytes: number, ended: number) => {
      const target = sink
      if (!target) return
      try {
        const keep = config.keepCredentials
        const resHeaders = { ...stringHeaders(res.getHeaders()), ...headWritten }
        const r = keep
          ? { url: req.url ?? "/", reqBody: Buffer.concat(reqChunks), resBody: Buffer.concat(resChunks), reqHeaders: stringHeaders(req.headers), resHeaders }
          : redacted(req, resHeaders, secrets, req.url ?? "/", Buffer.concat(reqChunks), Buffer.concat(resChunks))
        const q = r.url.indexOf("?")
        const line: CaptureRecord = {
          v: 1,
          time: new Date(performance.timeOrigin + started).toISOString(),
          method: req.method ?? "GET",
          path: q < 0 ? r.url : r.url.slice(0, q),
          query: q < 0 ? "" : keep ? r.url.slice(q + 1) : redact.formText(r.url.slice(q + 1)),
          headers: r.reqHeaders,
          ...(reqBytes > 0 ? { body: bodyOf(r.reqBody, reqBytes, max)! } : {}),
          answer: {
            status: res.statusCode,
            headers: r.resHeaders,
            ...(resBytes > 0 ? { body: bodyOf(r.resBody, resBytes, max)! } : {})
          },
          ms: Math.round((ended - started) * 100) / 100,
          ...(res.writableFinished ? {} : { aborted: true })
        }
        target.write(`${JSON.stringify(line)}\n`)
      } catch (e) {
        logError("capture: a request could not be recorded", e)
      }
    }

    /** Called by the host for each request while `active`: tees the body read and the answer written. */
    const observe = (req: http.IncomingMessage, res: http.ServerResponse) => {
      const started = performance.now()
      // the endpoint layer adds the credential values it parses (Redact.noteSecrets)
      const secrets = watchSecrets(req)
      let ended = started
      const reqChunks: Array<Buffer> = []
      let reqBytes = 0
      let reqKept = 0
      const resChunks: Array<Buffer> = []
      let resBytes = 0
      let resKept = 0
      // every byte of the body passes push, whether or when a route reads it
      const push = req.push.bind(req)
      req.push = (chunk: unknown, encoding?: BufferEncoding) => {
        if (Buffer.isBuffer(chunk)) {
          reqBytes += chunk.length
          if (reqKept < max) (reqChunks.push(chunk), (reqKept += chunk.length))
        }
        return push(chunk, encoding)
      }
      const tee = (chunk: unknown, encoding: unknown) => {
        if (chunk === undefined || chunk === null || typeof chunk === "function") return
        const b = Buffer.isBuffer(chunk) ? chunk : chunk instanceof Uint8Array ? Buffer.from(chunk) : Buffer.from(String(chunk), typeof encoding === "string" ? (encoding as BufferEncoding) : "utf8")
        resBytes += b.length
        if (resKept < max) (resChunks.push(b), (resKept += b.length))
      }
      const write = res.write.bind(res) as (...args: Array<unknown>) => boolean
      const end = res.end.bind(res) as (...args: Array<unknown>) => http.ServerResponse
      res.write = ((...args: Array<unknown>) => (tee(args[0], args[1]), write(...args))) as typeof res.write
      res.end = ((...args: Array<unknown>) => (tee(args[0], args[1]), end(...args))) as typeof res.end
      // headers handed to writeHead (the admin API's Node server sends them so) are not in
      // getHeaders() unless some were set before: noted here, the record has them as any answer's
      let headWritten: Record<string, string> = {}
      const writeHead = res.writeHead.bind(res) as (...args: Array<unknown>) => http.ServerResponse
      res.writeHead = ((...args: Array<unknown>) => {
        const given = args.find((a, i): a is object => i > 0 && typeof a === "object" && a !== null)
        if (given !== undefined) headWritten = headersGiven(given)
        return writeHead(...args)
      }) as typeof res.writeHead
      res.once("finish", () => (ended = performance.now()))
      res.once("close", () => record(req, res, secrets, headWritten, started, reqChunks, reqBytes, resChunks, resBytes, ended === started ? performance.now() : ended))
    }

    yield* Effect.addFinalizer(() => Effect.promise(() => sink?.close() ?? Promise.resolve()))

    const status = (): CaptureStatus => ({
      enabled: sink !== undefined,
      file,
      keepCredentials: config.keepCredentials,
      records: sink?.records ?? 0,
      failures: sink?.failures ?? 0
    })
    return {
      /** whether requests are being captured: the host's one test per request (a function: the service's fields are copied once) */
      active: () => sink !== undefined,
      observe,
      file,
      status,
      /** Starts or stops capturing (into the configured file, or <dataDir>/capture.jsonl). */
      set: (enabled: boolean) =>
        Effect.promise(async () => {
          if (enabled && !sink) sink = new Sink(file, config.maxBytes, pendingLimit(config.maxBodyBytes), logError)
          if (!enabled && sink) {
            const s = sink
            sink = undefined
            await s.close()
          }
          return status()
        }),
      /** Everything recorded so far is in the file. */
      flush: Effect.promise(() => sink?.flush() ?? Promise.resolve())
    }
  })
}) {}

const stringHeaders = (h: Readonly<Record<string, string | ReadonlyArray<string> | number | undefined>>): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(h)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(", ") : String(v)
  return out
}

/** writeHead's headers — an object, or a flat array of names and values — by lower-case name, repeats joined. */
const headersGiven = (given: object): Record<string, string> => {
  const pairs: Array<readonly [string, unknown]> = []
  if (Array.isArray(given)) for (let i = 0; i + 1 < given.length; i += 2) pairs.push([String(given[i]), given[i + 1]])
  else pairs.push(...Object.entries(given))
  const out: Record<string, Array<string>> = {}
  for (const [k, v] of pairs) if (v !== undefined) (out[k.toLowerCase()] ??= []).push(...(Array.isArray(v) ? v.map(String) : [String(v)]))
  return stringHeaders(out)
}
