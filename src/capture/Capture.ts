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
import { makeRedactor } from "./Redact.js"

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

/** An append-only JSONL file rotated by size; errors go to `onError`, never to the caller. */
class Sink {
  private stream: fs.WriteStream | undefined
  private size = 0
  private failing = false
  failures = 0
  records = 0

  constructor(
    readonly file: string,
    private readonly maxBytes: number,
    private readonly onError: (message: string, e: unknown) => void
  ) {}

  private open() {
    fs.mkdirSync(path.dirname(this.file), { recursive: true })
    this.size = fs.existsSync(this.file) ? fs.statSync(this.file).size : 0
    const stream = fs.createWriteStream(this.file, { flags: "a", mode: 0o600 })
    stream.on("error", (e) => {
      this.fail(e)
      // the next record opens it again
      if (this.stream === stream) this.stream = undefined
    })
    this.stream = stream
    return stream
  }

  private fail(e: unknown) {
    this.failures++
    // one log line per run of failures, not one per request
    if (!this.failing) this.onError("capture: a record could not be written", e)
    this.failing = true
  }

  private rotate() {
    const old = this.stream
    // renamed under the open stream: its pending writes still land in the rotated file
    for (let i = KEEP - 1; i >= 1; i--) if (fs.existsSync(`${this.file}.${i}`)) fs.renameSync(`${this.file}.${i}`, `${this.file}.${i + 1}`)
    fs.renameSync(this.file, `${this.file}.1`)
    old?.end()
    this.stream = undefined
  }

  write(line: string) {
    try {
      const bytes = Buffer.byteLength(line)
      if (this.stream && this.size > 0 && this.size + bytes > this.maxBytes) this.rotate()
      const stream = this.stream ?? this.open()
      this.size += bytes
      stream.write(line, (e) => {
        if (e) return
        this.failing = false
        this.records++
      })
    } catch (e) {
      this.fail(e)
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
    let sink: Sink | undefined = config.file ? new Sink(file, config.maxBytes, logError) : undefined

    const record = (req: http.IncomingMessage, res: http.ServerResponse, started: number, reqChunks: ReadonlyArray<Buffer>, reqBytes: number, resChunks: ReadonlyArray<Buffer>, resBytes: number, ended: number) => {
      const target = sink
      if (!target) return
      try {
        const url = req.url ?? "/"
        const q = url.indexOf("?")
        const keep = config.keepCredentials
        const reqType = req.headers["content-type"]
        const resType = res.getHeader("content-type")
        const reqBody = keep ? Buffer.concat(reqChunks) : redact.body(reqType, Buffer.concat(reqChunks))
        const resBody = keep ? Buffer.concat(resChunks) : redact.body(typeof resType === "string" ? resType : undefined, Buffer.concat(resChunks))
        const line: CaptureRecord = {
          v: 1,
          time: new Date(performance.timeOrigin + started).toISOString(),
          method: req.method ?? "GET",
          path: q < 0 ? url : url.slice(0, q),
          query: q < 0 ? "" : keep ? url.slice(q + 1) : redact.formText(url.slice(q + 1)),
          headers: keep ? stringHeaders(req.headers) : redact.headers(req.headers),
          ...(reqBytes > 0 ? { body: bodyOf(reqBody, reqBytes, max)! } : {}),
          answer: {
            status: res.statusCode,
            headers: stringHeaders(res.getHeaders()),
            ...(resBytes > 0 ? { body: bodyOf(resBody, resBytes, max)! } : {})
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
      res.once("finish", () => (ended = performance.now()))
      res.once("close", () => record(req, res, started, reqChunks, reqBytes, resChunks, resBytes, ended === started ? performance.now() : ended))
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
          if (enabled && !sink) sink = new Sink(file, config.maxBytes, logError)
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
