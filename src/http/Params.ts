/**
 * Parameters as the contract sends them: query string, urlencoded, multipart or JSON body,
 * possibly mixed, UTF-8 unless the body declares another charset (senders in China often
 * send GBK). All become one ordered list of (name, value) pairs — query first, then body —
 * and then `RawParams`: repeats and indexed keys (`cpPhone[0]`) collapse into arrays; a
 * value left empty counts as not given.
 */
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import type { IncomingMessage } from "node:http"
import * as path from "node:path"
import type { Readable } from "node:stream"
import busboy from "busboy"
import { Effect, Exit, type Fiber, FiberId, Runtime, Schema, type Scope } from "effect"
import { JSON_LIMITS, jsonTooDeep, MAX_LIST_ITEMS, parseJsonExact, type RawParams } from "../../schemas/Param.js"
import { errnoCode } from "../shared/Errno.js"

/** An HTTP request we cannot read: answered with a 4xx status and a coded JSON body. */
export class HttpRequestError extends Schema.TaggedError<HttpRequestError>()("HttpRequestError", {
  status: Schema.Number,
  code: Schema.Number,
  message: Schema.String
}) {}

export type Pairs = Array<readonly [string, string]>

/** A file part, received into a temporary file that is removed when the request's scope closes. */
export interface UploadedFile {
  readonly field: string
  readonly filename: string
  readonly mimeType: string
  /** the temporary file holding the part's bytes */
  readonly path: string
  readonly size: number
  /** hex MD5 of the bytes as received */
  readonly md5: string
}

export interface Collected {
  readonly pairs: Pairs
  readonly files: ReadonlyArray<UploadedFile>
  /** the body as received (for capture and passthrough), when it was not multipart */
  readonly rawBody: Buffer | undefined
  /**
   * The same body as UTF-8 text, what passthrough re-sends: decoded from the charset it
   * declared, and a form sent in another charset re-encoded in UTF-8 (its escapes named that
   * charset's bytes), as the platform itself would have sent it.
   */
  readonly bodyText: string | undefined
  /** the charset the body was read in (`utf-8` unless it declared another) */
  readonly charset: string
}

/** Bytes that requests still being read may hold on disk, shared by those requests. */
export interface ByteBudget {
  /** false (and nothing taken) when n more bytes would go over the budget */
  readonly take: (n: number) => boolean
  readonly give: (n: number) => void
  /** what the answer says when the budget is spent (a general "try again later" without it) */
  readonly refusal?: string
}

export interface FileOptions<E, R> {
  /** largest file part, in bytes */
  readonly maxBytes: number
  readonly maxCount: number
  /** where file parts are written while the request is read (created 0700, files 0600) */
  readonly tempDir: string
  readonly budget?: ByteBudget
  /**
   * Runs on the pairs read so far (query first) when the first file part arrives, before any
   * of it is read; its failure ends the reading and is the request's answer. What it succeeds
   * with is the budget this request's files draw from (undefined: `budget`), so a request
   * that has not shown who it is can be held to a smaller share.
   */
  readonly authorize?: (pairs: Pairs) => Effect.Effect<ByteBudget | undefined, E, R>
}

export interface CollectOptions<E = never, R = never> {
  /** largest non-file body, in bytes */
  readonly bodyLimit: number
  /** accept file parts (default: file parts are read and dropped) */
  readonly files?: FileOptions<E, R>
}

/**
 * Node hands the request target over as latin1; senders that put raw UTF-8 bytes in the
 * query (the contract's own examples do) need those bytes read back as UTF-8.
 */
export const requestTarget = (url: string): string =>
  /[\u0080-\u00ff]/.test(url) ? Buffer.from(url, "latin1").toString("utf8") : url

const hexValue = (b: number | undefined): number =>
  b === undefined ? -1 : b >= 0x30 && b <= 0x39 ? b - 0x30 : (b | 0x20) >= 0x61 && (b | 0x20) <= 0x66 ? (b | 0x20) - 0x57 : -1

/** `+` and `%XX` turned into the bytes they stand for; a `%` without two hex digits stays as it is (as URLSearchParams does). */
const unescapeBytes = (bytes: Buffer, from: number, to: number): Uint8Array => {
  let i = from
  while (i < to && bytes[i] !== 0x2b && bytes[i] !== 0x25) i++
  if (i === to) return bytes.subarray(from, to)
  const out = Buffer.allocUnsafe(to - from)
  let n = bytes.copy(out, 0, from, i)
  for (; i < to; i++) {
    const b = bytes[i]!
    const hi = b === 0x25 && i + 2 < to ? hexValue(bytes[i + 1]) : -1
    const lo = hi < 0 ? -1 : hexValue(bytes[i + 2])
    if (lo >= 0) {
      out[n++] = hi * 16 + lo
      i += 2
    } else out[n++] = b === 0x2b ? 0x20 : b
  }
  return out.subarray(0, n)
}

/** A name or value: plain ASCII, the common case, is read as it is; anything else is unescaped and decoded. */
const formText = (bytes: Buffer, from: number, to: number, decode: (b: Uint8Array) => string): string => {
  for (let i = from; i < to; i++) {
    const b = bytes[i]!
    if (b === 0x2b || b === 0x25 || b > 0x7f) return decode(unescapeBytes(bytes, from, to))
  }
  return bytes.toString("latin1", from, to)
}

/**
 * The urlencoded parser of the URL standard, over bytes: names and values are percent-decoded
 * to bytes first and only then decoded as text, so `%D5%C5` means 张 in a GBK body and the
 * same bytes are refused in a UTF-8 one (URLSearchParams would read every escape as UTF-8).
 * `decode` throws on bytes its charset cannot read.
 */
const formPairs = (bytes: Buffer, decode: (b: Uint8Array) => string): Pairs => {
  const out: Pairs = []
  let start = 0
  while (start <= bytes.length) {
    let end = bytes.indexOf(0x26, start)
    if (end < 0) end = bytes.length
    if (end > start) {
      let eq = start
      while (eq < end && bytes[eq] !== 0x3d) eq++
      out.push([formText(bytes, start, eq, decode), eq < end ? formText(bytes, eq + 1, end, decode) : ""])
    }
    start = end + 1
  }
  return out
}

// a query cannot declare a charset: UTF-8, read leniently as it always was (many routes read it, none can refuse it)
const lenientUtf8 = new TextDecoder("utf-8", { ignoreBOM: true })
const readLenient = (b: Uint8Array) => lenientUtf8.decode(b)

export const queryPairs = (url: string): Pairs => {
  const q = url.indexOf("?")
  // Node hands the target over as latin1: its bytes are exactly the ones sent
  return q < 0 ? [] : formPairs(Buffer.from(url.slice(q + 1), "latin1"), readLenient)
}

/** A body's charset: what the content type declares, UTF-8 when it declares none. */
interface Charset {
  readonly name: string
  readonly decode: (bytes: Uint8Array) => string
  /** whether `&`, `=`, `%` and `+` are the ASCII bytes, as urlencoded bodies need */
  readonly asciiCompatible: boolean
}

const charsets = new Map<string, Charset>()

const charsetNamed = (label: string): Charset | undefined => {
  const key = label.toLowerCase()
  let charset = charsets.get(key)
  if (charset) return charset
  let decoder: InstanceType<typeof TextDecoder>
  try {
    // fatal: a byte the charset cannot read refuses the body instead of becoming U+FFFD in storage
    // ignoreBOM: a value's bytes are kept as sent, U+FEFF included, as they always were
    decoder = new TextDecoder(key, { fatal: true, ignoreBOM: true })
  } catch {
    return undefined
  }
  charset = { name: key, decode: (b) => decoder.decode(b), asciiCompatible: !decoder.encoding.startsWith("utf-16") }
  // only labels TextDecoder knows get here, a few hundred at most: bounded all the same, senders choose them
  if (charsets.size < 64) charsets.set(key, charset)
  return charset
}

const UTF8 = charsetNamed("utf-8")!
const CHARSET_PARAM = /;\s*charset\s*=\s*(?:"([^"]*)"|([^\s;]*))/i

const charsetOf = (contentType: string): Charset | HttpRequestError => {
  const m = CHARSET_PARAM.exec(contentType)
  const label = m ? (m[1] ?? m[2] ?? "").trim() : ""
  if (label === "") return UTF8
  return charsetNamed(label) ?? new HttpRequestError({ status: 415, code: -14, message: `unsupported charset ${JSON.stringify(label.slice(0, 40))}` })
}

const undecodable = (charset: Charset) => new HttpRequestError({ status: 400, code: -14, message: `body is not valid ${charset.name}` })

const readBody = (req: IncomingMessage, limit: number) =>
  Effect.async<Buffer, HttpRequestError>((resume) => {
    const declared = Number(req.headers["content-length"] ?? "0")
    if (declared > limit) {
      req.resume()
      resume(Effect.fail(tooLarge(limit)))
      return
    }
    const chunks: Array<Buffer> = []
    let size = 0
    let done = false
    const finish = (e: Effect.Effect<Buffer, HttpRequestError>) => {
      if (done) return
      done = true
      resume(e)
    }
    req.on("data", (c: Buffer) => {
      size += c.length
      if (size > limit) {
        req.resume()
        finish(Effect.fail(tooLarge(limit)))
      } else chunks.push(c)
    })
    req.on("end", () => finish(Effect.succeed(Buffer.concat(chunks))))
    req.on("error", (e) => finish(Effect.fail(new HttpRequestError({ status: 400, code: -14, message: `request body could not be read: ${e.message}` }))))
  })

const tooLarge = (limit: number) =>
  new HttpRequestError({ status: 413, code: -12, message: `request body is larger than ${limit} bytes` })

/**
 * A JSON body's top-level members as pairs. Its values are parameters, held to the same
 * depth as a parameter's embedded JSON (a memo sent as an object nests as deeply as one sent
 * as text; the body is one level more), and checked before parsing, as lossless-json recurses.
 */
const jsonPairs = (text: string): Effect.Effect<Pairs, HttpRequestError> => {
  if (jsonTooDeep(text, JSON_LIMITS.depth + 1) !== undefined)
    return Effect.fail(new HttpRequestError({ status: 400, code: -14, message: `JSON body: a value is nested deeper than ${JSON_LIMITS.depth} levels` }))
  return Effect.try({
    try: () => {
      const value: unknown = parseJsonExact(text)
      if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error("expected a JSON object")
      const out: Pairs = []
      for (const [k, v] of Object.entries(value)) {
        for (const item of Array.isArray(v) ? v : [v]) {
          if (item === null || item === undefined) continue
          out.push([k, typeof item === "object" ? JSON.stringify(item) : String(item)])
        }
      }
      return out
    },
    catch: (e) => new HttpRequestError({ status: 400, code: -14, message: `malformed JSON body: ${e instanceof Error ? e.message : String(e)}` })
  })
}

const malformed = (e: unknown) =>
  new HttpRequestError({ status: 400, code: -14, message: `malformed multipart body: ${e instanceof Error ? e.message : String(e)}` })

/** A disk error while a part is written names its code only: a message must never show a server path. */
const notStored = (e: unknown) => {
  const code = errnoCode(e)
  return new HttpRequestError({ status: code === "ENOSPC" || code === "EDQUOT" ? 507 : 500, code: -13, message: `the uploaded file could not be stored (${code})` })
}

interface Parsed {
  readonly pairs: Pairs
  readonly files: Array<UploadedFile>
  /** removes the temporary files and returns their bytes to the budget */
  readonly release: () => void
}

/**
 * Fields are kept in memory (bounded by bodyLimit); file parts go to temporary files as they
 * arrive, hashed and counted on the way, so an upload never sits in memory. The first file
 * part waits for `authorize`: a request whose credentials came before its file is refused
 * before one byte of the file is read.
 */
const multipart = <E, R>(req: IncomingMessage, query: Pairs, options: CollectOptions<E, R>) =>
  Effect.flatMap(Effect.runtime<R>(), (runtime) =>
    Effect.async<Parsed, HttpRequestError | E>((resume) => {
      const fileOptions = options.files
      let bb: busboy.Busboy
      try {
        bb = busboy({
          headers: req.headers,
          defParamCharset: "utf8",
          limits: {
            fieldSize: options.bodyLimit,
            fields: 10_000,
            files: fileOptions?.maxCount ?? 100,
            fileSize: fileOptions?.maxBytes ?? options.bodyLimit
          }
        })
      } catch (e) {
        resume(Effect.fail(malformed(e)))
        return
      }
      const pairs: Pairs = []
      const files: Array<UploadedFile> = []
      const temps: Array<string> = []
      const writing = new Set<fs.WriteStream>()
      let fieldBytes = 0
      let taken = 0
      // authorize may choose another before the first byte is taken
      let budget = fileOptions?.budget
      let parts = 0
      let parsed = false
      let settled = false
      let authorization: "pending" | "running" | "done" = fileOptions?.authorize ? "pending" : "done"
      const waiting: Array<() => void> = []
      let authorizing: Fiber.RuntimeFiber<ByteBudget | undefined, E> | undefined

      // a stream still open (or still opening) would recreate or keep its file: the files go once every stream has closed
      const release = (done: () => void) => {
        let open = writing.size + 1
        const closed = () => {
          if (--open > 0) return
          for (const temp of temps.splice(0)) fs.rmSync(temp, { force: true })
          budget?.give(taken)
          taken = 0
          done()
        }
        for (const ws of writing) ws.once("close", closed).destroy()
        writing.clear()
        closed()
      }
      // the rest of the body is not read: the request is paused, and the server discards or closes it after the answer
      const stop = (done: () => void) => {
        settled = true
        req.unpipe(bb)
        authorizing?.unsafeInterruptAsFork(FiberId.none)
        release(done)
      }
      const fail = (e: HttpRequestError | E) => {
        if (settled) return
        stop(() => resume(Effect.fail(e)))
      }
      const maybeDone = () => {
        if (settled || !parsed || parts > 0) return
        settled = true
        resume(Effect.succeed({ pairs, files, release: () => release(() => undefined) }))
      }

      const receive = (field: string, stream: Readable, info: busboy.FileInfo, spec: FileOptions<E, R>) => {
        if (settled) return
        let ws: fs.WriteStream
        let temp: string
        try {
          fs.mkdirSync(spec.tempDir, { recursive: true, mode: 0o700 })
          temp = path.join(spec.tempDir, `upload-${process.pid}-${crypto.randomBytes(8).toString("hex")}`)
          temps.push(temp)
          ws = fs.createWriteStream(temp, { flags: "wx", mode: 0o600 })
        } catch (e) {
          return fail(notStored(e))
        }
        writing.add(ws)
        const hash = crypto.createHash("md5")
        let size = 0
        stream.on("data", (c: Buffer) => {
          if (settled) return
          size += c.length
          hash.update(c)
          if (budget && !budget.take(c.length))
            return fail(new HttpRequestError({ status: 503, code: -12, message: budget.refusal ?? "too many uploads are in progress; try again later" }))
          taken += c.length
        })
        stream.on("limit", () => fail(new HttpRequestError({ status: 413, code: -13, message: `file ${field} is larger than ${spec.maxBytes} bytes` })))
        ws.on("error", (e) => fail(notStored(e)))
        ws.on("close", () => {
          writing.delete(ws)
          if (settled) return
          files.push({ field, filename: info.filename ?? "", mimeType: info.mimeType, path: temp, size, md5: hash.digest("hex") })
          parts--
          maybeDone()
        })
        stream.pipe(ws)
      }

      const authorize = (check: (pairs: Pairs) => Effect.Effect<ByteBudget | undefined, E, R>) => {
        authorization = "running"
        authorizing = Runtime.runFork(runtime)(check([...query, ...pairs]))
        authorizing.addObserver((exit) => {
          authorizing = undefined
          if (settled) return
          if (Exit.isFailure(exit)) return stop(() => resume(Effect.failCause(exit.cause)))
          // no part has been read yet: nothing was taken from the budget this replaces
          if (exit.value !== undefined) budget = exit.value
          authorization = "done"
          for (const start of waiting.splice(0)) start()
        })
      }

      bb.on("field", (name, value, info) => {
        fieldBytes += value.length
        if (info.valueTruncated || fieldBytes > options.bodyLimit) return fail(tooLarge(options.bodyLimit))
        pairs.push([name, value])
      })
      bb.on("file", (field, stream, info) => {
        // a body cut short fails the part's stream as well as the parser: unhandled, that error would end the process
        stream.on("error", (e) => fail(malformed(e)))
        if (!fileOptions || settled) return void stream.resume()
        parts++
        // until authorized the part is not read, and busboy, and so the request, wait with it
        const start = () => receive(field, stream, info, fileOptions)
        if (authorization === "done") return start()
        waiting.push(start)
        if (authorization === "pending" && fileOptions.authorize) authorize(fileOptions.authorize)
      })
      bb.on("filesLimit", () => fail(new HttpRequestError({ status: 413, code: -12, message: "too many files in one request" })))
      bb.on("error", (e: unknown) => fail(malformed(e)))
      bb.on("close", () => {
        parsed = true
        maybeDone()
      })
      req.on("error", (e) => fail(new HttpRequestError({ status: 400, code: -14, message: `request body could not be read: ${e.message}` })))
      req.pipe(bb)
      // the client went away: nothing it sent is kept
      return Effect.async<void>((done) => (settled ? done(Effect.void) : stop(() => done(Effect.void))))
    })
  )

/**
 * Reads every parameter of the request (query and body). With `files`, the parts' temporary
 * files live as long as the caller's scope.
 */
export function collect(req: IncomingMessage, options: CollectOptions & { readonly files?: undefined }): Effect.Effect<Collected, HttpRequestError>
export function collect<E, R>(req: IncomingMessage, options: CollectOptions<E, R>): Effect.Effect<Collected, HttpRequestError | E, R | Scope.Scope>
export function collect<E, R>(req: IncomingMessage, options: CollectOptions<E, R>): Effect.Effect<Collected, HttpRequestError | E, R | Scope.Scope> {
  const query = queryPairs(req.url ?? "")
  const type = (req.headers["content-type"] ?? "").toLowerCase()
  if (type.startsWith("multipart/form-data"))
    return Effect.map(
      // no gap between reading and owning the temporary files, where an interruption would strand them;
      // without `files` there are none, and no scope is asked for (see the overloads)
      options.files
        ? Effect.uninterruptibleMask((restore) =>
            Effect.tap(restore(multipart(req, query, options)), (parsed) => Effect.addFinalizer(() => Effect.sync(parsed.release)))
          )
        : multipart(req, query, options),
      ({ pairs, files }): Collected => ({ pairs: [...query, ...pairs], files, rawBody: undefined, bodyText: undefined, charset: UTF8.name })
    )
  // every jsondata call and push not sent as multipart comes this way: two steps, the body's read and what is made of it
  const charset = charsetOf(type)
  if (charset instanceof HttpRequestError) return Effect.fail(charset)
  return Effect.flatMap(readBody(req, options.bodyLimit), (body) => fromBody(query, type, charset, body))
}

/** A body read whole (not multipart): its parameters after the query's. */
const fromBody = (query: Pairs, type: string, charset: Charset, body: Buffer): Effect.Effect<Collected, HttpRequestError> => {
  if (body.length === 0) return Effect.succeed({ pairs: query, files: [], rawBody: body, bodyText: "", charset: charset.name })
  if (type.includes("json")) {
    let text: string
    try {
      text = charset.decode(body)
    } catch {
      return Effect.fail(undecodable(charset))
    }
    return Effect.map(jsonPairs(text), (pairs) => ({ pairs: [...query, ...pairs], files: [], rawBody: body, bodyText: text, charset: charset.name }))
  }
  // urlencoded, and any body without a useful content type, read as a form: that is what the platform's senders mean
  if (!charset.asciiCompatible) return Effect.fail(new HttpRequestError({ status: 415, code: -14, message: `a form body cannot be sent in ${charset.name}` }))
  let pairs: Pairs
  try {
    pairs = formPairs(body, charset.decode)
  } catch {
    return Effect.fail(undecodable(charset))
  }
  const bodyText = charset === UTF8 ? body.toString("utf8") : new URLSearchParams(pairs.map(([k, v]): [string, string] => [k, v])).toString()
  return Effect.succeed({ pairs: [...query, ...pairs], files: [], rawBody: body, bodyText, charset: charset.name })
}

const INDEXED = /^(.+)\[(\d*)\]$/

/** The parameter a pair's name is read as: `sa_password[0]` and `sa_password[]` are values of `sa_password`. */
export const paramKey = (name: string): string => INDEXED.exec(name)?.[1] ?? name

/**
 * Places one request's lists may be padded with at most, all names together: padding keeps
 * side-by-side lists aligned, and a request is far smaller than the lists a gap could ask for
 * (`a[999]=1&b[999]=1&…` would otherwise make a thousand entries of every 12 bytes sent).
 */
const PAD_BUDGET = 2 * MAX_LIST_ITEMS

/**
 * Pairs → RawParams: repeats and `name[i]` become arrays (in index order, a missing index as "");
 * empty values count as absent. A plain `name` sent beside `name[i]` (the seed's saveCustomer
 * sends `cpPhone` with `cpPhone[0..n]`) is the list's own first value repeated: the indexed list wins.
 */
export const toRawParams = (pairs: Pairs): RawParams => {
  const plain = new Map<string, Array<string>>()
  const indexed = new Map<string, Array<readonly [number, string]>>()
  for (const [key, value] of pairs) {
    if (value === "") continue
    const m = INDEXED.exec(key)
    if (m) {
      const list = indexed.get(m[1]!) ?? []
      list.push([m[2] === "" ? Number.MAX_SAFE_INTEGER : Number(m[2]), value])
      indexed.set(m[1]!, list)
    } else {
      const list = plain.get(key) ?? []
      list.push(value)
      plain.set(key, list)
    }
  }
  const out: Record<string, string | ReadonlyArray<string>> = {}
  for (const [k, vs] of plain) out[k] = vs.length === 1 ? vs[0]! : vs
  let padBudget = PAD_BUDGET
  for (const [k, vs] of indexed) {
    // a stable sort keeps `name[]` repeats in arrival order
    const ordered: Array<string> = []
    for (const [i, v] of [...vs].sort((a, b) => a[0] - b[0])) {
      // an index left out (or sent empty) keeps its place as "": lists sent side by side
      // (cpPhone[i], cpType[i]) stay aligned. Only within a list's bound and the request's budget
      const gap = i < MAX_LIST_ITEMS ? i - ordered.length : 0
      if (gap > 0 && gap <= padBudget) {
        padBudget -= gap
        while (ordered.length < i) ordered.push("")
      }
      ordered.push(v)
    }
    out[k] = ordered
  }
  return out
}
