/**
 * Parameters as the contract sends them: query string, urlencoded, multipart or JSON body,
 * possibly mixed, UTF-8 unless the body declares another charset (senders in China often
 * send GBK). All become one ordered list of (name, value) pairs — query first, then body —
 * and then `RawParams`: repeats and indexed keys (`cpPhone[0]`) collapse into arrays; a
 * value left empty counts as not given.
 */
import type { IncomingMessage } from "node:http"
import busboy from "busboy"
import { Data, Effect } from "effect"
import { JSON_LIMITS, jsonTooDeep, parseJsonExact, type RawParams } from "../../schemas/Param.js"

/** An HTTP request we cannot read: answered with a 4xx status and a coded JSON body. */
export class HttpRequestError extends Data.TaggedError("HttpRequestError")<{
  readonly status: number
  readonly code: number
  readonly message: string
}> {}

export type Pairs = Array<readonly [string, string]>

export interface UploadedFile {
  readonly field: string
  readonly filename: string
  readonly mimeType: string
  readonly data: Buffer
}

export interface Collected {
  readonly pairs: Pairs
  readonly files: ReadonlyArray<UploadedFile>
  /** the body as received (for capture and passthrough), when it was not multipart */
  readonly rawBody: Buffer | undefined
}

export interface CollectOptions {
  /** largest non-file body, in bytes */
  readonly bodyLimit: number
  /** accept file parts up to this size each (default: file parts are read and dropped) */
  readonly files?: { readonly maxBytes: number; readonly maxCount: number }
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

const charsetOf = (contentType: string): Effect.Effect<Charset, HttpRequestError> => {
  const m = CHARSET_PARAM.exec(contentType)
  const label = m ? (m[1] ?? m[2] ?? "").trim() : ""
  if (label === "") return Effect.succeed(UTF8)
  const charset = charsetNamed(label)
  return charset
    ? Effect.succeed(charset)
    : Effect.fail(new HttpRequestError({ status: 415, code: -14, message: `unsupported charset ${JSON.stringify(label.slice(0, 40))}` }))
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

const multipart = (req: IncomingMessage, options: CollectOptions) =>
  Effect.async<{ pairs: Pairs; files: Array<UploadedFile> }, HttpRequestError>((resume) => {
    let bb: busboy.Busboy
    try {
      bb = busboy({
        headers: req.headers,
        defParamCharset: "utf8",
        limits: {
          fieldSize: options.bodyLimit,
          fields: 10_000,
          files: options.files?.maxCount ?? 100,
          fileSize: options.files?.maxBytes ?? options.bodyLimit
        }
      })
    } catch (e) {
      resume(Effect.fail(new HttpRequestError({ status: 400, code: -14, message: `malformed multipart body: ${e instanceof Error ? e.message : String(e)}` })))
      return
    }
    const pairs: Pairs = []
    const files: Array<UploadedFile> = []
    let fieldBytes = 0
    let failed: HttpRequestError | undefined
    const fail = (e: HttpRequestError) => {
      if (!failed) failed = e
      req.unpipe(bb)
      req.resume()
      resume(Effect.fail(e))
    }
    bb.on("field", (name, value, info) => {
      fieldBytes += value.length
      if (info.valueTruncated || fieldBytes > options.bodyLimit) return fail(tooLarge(options.bodyLimit))
      pairs.push([name, value])
    })
    bb.on("file", (field, stream, info) => {
      if (!options.files) {
        stream.resume()
        return
      }
      const chunks: Array<Buffer> = []
      stream.on("data", (c: Buffer) => chunks.push(c))
      stream.on("limit", () =>
        fail(new HttpRequestError({ status: 413, code: -13, message: `file ${field} is larger than ${options.files!.maxBytes} bytes` }))
      )
      stream.on("close", () => {
        if (!failed) files.push({ field, filename: info.filename ?? "", mimeType: info.mimeType, data: Buffer.concat(chunks) })
      })
    })
    bb.on("filesLimit", () => fail(new HttpRequestError({ status: 413, code: -12, message: "too many files in one request" })))
    bb.on("error", (e: unknown) =>
      fail(new HttpRequestError({ status: 400, code: -14, message: `malformed multipart body: ${e instanceof Error ? e.message : String(e)}` }))
    )
    bb.on("close", () => {
      if (!failed) resume(Effect.succeed({ pairs, files }))
    })
    req.pipe(bb)
  })

/** Reads every parameter of the request (query and body). */
export const collect = (req: IncomingMessage, options: CollectOptions): Effect.Effect<Collected, HttpRequestError> =>
  Effect.gen(function* () {
    const query = queryPairs(req.url ?? "")
    const type = (req.headers["content-type"] ?? "").toLowerCase()
    if (type.startsWith("multipart/form-data")) {
      const { pairs, files } = yield* multipart(req, options)
      return { pairs: [...query, ...pairs], files, rawBody: undefined }
    }
    const charset = yield* charsetOf(type)
    const body = yield* readBody(req, options.bodyLimit)
    if (body.length === 0) return { pairs: query, files: [], rawBody: body }
    if (type.includes("json")) {
      const text = yield* Effect.try({ try: () => charset.decode(body), catch: () => undecodable(charset) })
      return { pairs: [...query, ...(yield* jsonPairs(text))], files: [], rawBody: body }
    }
    // urlencoded, and any body without a useful content type, read as a form: that is what the platform's senders mean
    if (!charset.asciiCompatible)
      return yield* Effect.fail(new HttpRequestError({ status: 415, code: -14, message: `a form body cannot be sent in ${charset.name}` }))
    const pairs = yield* Effect.try({ try: () => formPairs(body, charset.decode), catch: () => undecodable(charset) })
    return { pairs: [...query, ...pairs], files: [], rawBody: body }
  })

const INDEXED = /^(.+)\[(\d*)\]$/

/** Pairs → RawParams: repeats and `name[i]` become arrays (in index order); empty values count as absent. */
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
  for (const [k, vs] of indexed) {
    // a stable sort keeps `name[]` repeats in arrival order
    const ordered = [...vs].sort((a, b) => a[0] - b[0]).map(([, v]) => v)
    const prior = plain.get(k) ?? []
    out[k] = [...prior, ...ordered]
  }
  return out
}
