/**
 * What replay reads: the bridge's own JSONL capture, HAR 1.2 (browsers, proxies) and files
 * of curl command lines — all read into one Entry shape. A line or entry that cannot be read
 * is reported with where it is and skipped; it never stops the others.
 */
import * as fs from "node:fs"

export interface Answer {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body?: Buffer | undefined
  /** the capture kept only the start of the body (capture.maxBodyBytes): its whole length */
  readonly truncatedBytes?: number | undefined
}

export interface Entry {
  /** where it was read: file:line, or file#entry */
  readonly where: string
  readonly method: string
  readonly path: string
  /** raw query string, without `?` */
  readonly query: string
  /** lower-case names */
  readonly headers: Readonly<Record<string, string>>
  readonly body?: Buffer | undefined
  /** when it was originally sent (Unix ms), for --speed */
  readonly at?: number | undefined
  /** what was answered then (absent for curl lines) */
  readonly answer?: Answer | undefined
  /** how long the original answer took */
  readonly ms?: number | undefined
}

export interface BadInput {
  readonly where: string
  readonly message: string
}

export interface Read {
  readonly entries: ReadonlyArray<Entry>
  readonly bad: ReadonlyArray<BadInput>
}

type Json = Record<string, unknown>
const isObject = (u: unknown): u is Json => typeof u === "object" && u !== null && !Array.isArray(u)

/** headers no replay should copy: the connection's own, and what the new body's length decides */
const HOP = new Set(["host", "connection", "keep-alive", "content-length", "transfer-encoding", "upgrade", "te", "trailer", "proxy-connection", "expect"])
export const sendableHeaders = (h: Readonly<Record<string, string>>): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(h)) {
    const name = k.toLowerCase()
    // HTTP/2 pseudo-headers (:authority) in browsers' HAR files
    if (!HOP.has(name) && !name.startsWith(":")) out[name] = v
  }
  return out
}

const bodyFrom = (u: unknown): Buffer | undefined => {
  if (!isObject(u)) return undefined
  if (typeof u.text === "string") return Buffer.from(u.text, "utf8")
  if (typeof u.base64 === "string") return Buffer.from(u.base64, "base64")
  return undefined
}

const stringRecord = (u: unknown): Record<string, string> => {
  const out: Record<string, string> = {}
  if (isObject(u)) for (const [k, v] of Object.entries(u)) if (typeof v === "string" || typeof v === "number") out[k.toLowerCase()] = String(v)
  return out
}

/** One JSONL line of a capture. */
export const fromCaptureLine = (line: string, where: string): Entry | BadInput => {
  let value: unknown
  try {
    value = JSON.parse(line)
  } catch (e) {
    return { where, message: `not JSON: ${e instanceof Error ? e.message : String(e)}` }
  }
  if (!isObject(value)) return { where, message: "expected a JSON object" }
  if (typeof value.method !== "string" || !/^[A-Za-z]+$/.test(value.method)) return { where, message: "method: expected an HTTP method" }
  if (typeof value.path !== "string" || !value.path.startsWith("/")) return { where, message: "path: expected a path starting with /" }
  if (isObject(value.body) && value.body.truncated === true) return { where, message: "the request's body was cut at capture.maxBodyBytes: it cannot be sent again" }
  const answerBody = isObject(value.answer) ? value.answer.body : undefined
  const answer = isObject(value.answer) && typeof value.answer.status === "number"
    ? {
        status: value.answer.status,
        headers: stringRecord(value.answer.headers),
        body: bodyFrom(answerBody),
        truncatedBytes: isObject(answerBody) && answerBody.truncated === true && typeof answerBody.bytes === "number" ? answerBody.bytes : undefined
      }
    : undefined
  const at = typeof value.time === "string" ? Date.parse(value.time) : undefined
  return {
    where,
    method: value.method.toUpperCase(),
    path: value.path,
    query: typeof value.query === "string" ? value.query.replace(/^\?/, "") : "",
    headers: stringRecord(value.headers),
    body: bodyFrom(value.body),
    at: at !== undefined && !Number.isNaN(at) ? at : undefined,
    answer,
    ms: typeof value.ms === "number" ? value.ms : undefined
  }
}

const harHeaders = (u: unknown): Record<string, string> => {
  const out: Record<string, string> = {}
  if (Array.isArray(u)) for (const h of u) if (isObject(h) && typeof h.name === "string" && typeof h.value === "string") out[h.name.toLowerCase()] = h.value
  return out
}

/** One entry of a HAR 1.2 log. */
export const fromHarEntry = (e: unknown, where: string): Entry | BadInput => {
  if (!isObject(e) || !isObject(e.request)) return { where, message: "expected an entry with a request" }
  const req = e.request
  if (typeof req.method !== "string" || typeof req.url !== "string") return { where, message: "request: expected method and url" }
  let url: URL
  try {
    url = new URL(req.url)
  } catch {
    return { where, message: `request.url: not a URL: ${String(req.url).slice(0, 100)}` }
  }
  let body: Buffer | undefined
  const post = req.postData
  if (isObject(post)) {
    if (typeof post.text === "string") body = Buffer.from(post.text, "utf8")
    else if (Array.isArray(post.params))
      body = Buffer.from(
        post.params
          .filter(isObject)
          .map((p) => `${encodeURIComponent(String(p.name ?? ""))}=${encodeURIComponent(String(p.value ?? ""))}`)
          .join("&")
      )
  }
  const headers = harHeaders(req.headers)
  if (body && isObject(post) && typeof post.mimeType === "string" && !headers["content-type"]) headers["content-type"] = post.mimeType
  let answer: Answer | undefined
  const res = e.response
  if (isObject(res) && typeof res.status === "number" && res.status > 0) {
    const content = isObject(res.content) ? res.content : {}
    const text = typeof content.text === "string" ? content.text : undefined
    answer = {
      status: res.status,
      headers: harHeaders(res.headers),
      body: text === undefined ? undefined : Buffer.from(text, content.encoding === "base64" ? "base64" : "utf8")
    }
  }
  const at = typeof e.startedDateTime === "string" ? Date.parse(e.startedDateTime) : NaN
  return {
    where,
    method: req.method.toUpperCase(),
    path: url.pathname,
    query: url.search.replace(/^\?/, ""),
    headers,
    body,
    at: Number.isNaN(at) ? undefined : at,
    answer,
    ms: typeof e.time === "number" && e.time >= 0 ? e.time : undefined
  }
}

/** Splits a shell command line into words: quotes, backslash escapes and $'…' as curl users write them. */
export const shellWords = (line: string): Array<string> | string => {
  const words: Array<string> = []
  let word: string | undefined
  let i = 0
  const add = (s: string) => (word = (word ?? "") + s)
  while (i < line.length) {
    const c = line[i]!
    if (/\s/.test(c)) {
      if (word !== undefined) words.push(word)
      word = undefined
      i++
    } else if (c === "'") {
      const end = line.indexOf("'", i + 1)
      if (end < 0) return "unterminated ' quote"
      add(line.slice(i + 1, end))
      i = end + 1
    } else if (c === "$" && line[i + 1] === "'") {
      let j = i + 2
      let s = ""
      for (; j < line.length && line[j] !== "'"; j++) {
        if (line[j] === "\\" && j + 1 < line.length) {
          const n = line[++j]!
          s += n === "n" ? "\n" : n === "r" ? "\r" : n === "t" ? "\t" : n
        } else s += line[j]
      }
      if (j >= line.length) return "unterminated $' quote"
      add(s)
      i = j + 1
    } else if (c === '"') {
      let j = i + 1
      let s = ""
      for (; j < line.length && line[j] !== '"'; j++) {
        if (line[j] === "\\" && j + 1 < line.length && '"\\$`'.includes(line[j + 1]!)) s += line[++j]
        else s += line[j]
      }
      if (j >= line.length) return 'unterminated " quote'
      add(s)
      i = j + 1
    } else if (c === "\\" && i + 1 < line.length) {
      add(line[i + 1]!)
      i += 2
    } else {
      add(c)
      i++
    }
  }
  if (word !== undefined) words.push(word)
  return words
}

/** One curl command (its continuation lines joined). */
export const fromCurl = (command: string, where: string): Entry | BadInput => {
  const words = shellWords(command)
  if (typeof words === "string") return { where, message: words }
  if (words[0] !== "curl") return { where, message: "expected a command starting with curl" }
  let method: string | undefined
  let url: string | undefined
  let get = false
  const headers: Record<string, string> = {}
  const data: Array<string> = []
  const form: Array<[string, string]> = []
  for (let i = 1; i < words.length; i++) {
    const w = words[i]!
    const next = () => words[++i]
    if (w === "-X" || w === "--request") method = next()
    else if (w === "-H" || w === "--header") {
      const h = next() ?? ""
      const colon = h.indexOf(":")
      if (colon > 0) headers[h.slice(0, colon).trim().toLowerCase()] = h.slice(colon + 1).trim()
    } else if (w === "-d" || w === "--data" || w === "--data-raw" || w === "--data-binary" || w === "--data-ascii") data.push(next() ?? "")
    else if (w === "--data-urlencode") {
      const v = next() ?? ""
      const eq = v.indexOf("=")
      data.push(eq < 0 ? encodeURIComponent(v) : `${v.slice(0, eq)}=${encodeURIComponent(v.slice(eq + 1))}`)
    } else if (w === "-F" || w === "--form") {
      const v = next() ?? ""
      const eq = v.indexOf("=")
      if (eq < 0) return { where, message: `--form ${v}: expected name=value` }
      if (v[eq + 1] === "@") return { where, message: `--form ${v.slice(0, eq)}: files (@) are not replayed from curl lines` }
      form.push([v.slice(0, eq), v.slice(eq + 1)])
    } else if (w === "-G" || w === "--get") get = true
    else if (w === "--url") url = next()
    else if (w === "-u" || w === "--user") headers.authorization = `Basic ${Buffer.from(next() ?? "").toString("base64")}`
    else if (w.startsWith("-")) {
      // flags of curl's own behaviour (-s, -i, -L, --compressed …) change nothing sent; those with a value skip it
      if (["-o", "--output", "-m", "--max-time", "-A", "--user-agent", "-e", "--referer", "-b", "--cookie", "--connect-timeout"].includes(w)) {
        const v = next()
        if (w === "-A" || w === "--user-agent") headers["user-agent"] = v ?? ""
        if (w === "-b" || w === "--cookie") headers.cookie = v ?? ""
      }
    } else url = w
  }
  if (!url) return { where, message: "no URL" }
  let parsed: URL
  try {
    parsed = new URL(/^https?:\/\//i.test(url) ? url : `http://${url}`)
  } catch {
    return { where, message: `not a URL: ${url.slice(0, 100)}` }
  }
  let query = parsed.search.replace(/^\?/, "")
  let body: Buffer | undefined
  if (form.length > 0) {
    const boundary = `----bridge-replay-${form.length}-${where.length}`
    body = Buffer.concat([
      ...form.map(([k, v]) => Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`)),
      Buffer.from(`--${boundary}--\r\n`)
    ])
    headers["content-type"] = `multipart/form-data; boundary=${boundary}`
  } else if (data.length > 0) {
    if (get) query = [query, ...data].filter(Boolean).join("&")
    else {
      body = Buffer.from(data.join("&"))
      headers["content-type"] ??= "application/x-www-form-urlencoded"
    }
  }
  return {
    where,
    method: (method ?? (body ? "POST" : "GET")).toUpperCase(),
    path: parsed.pathname,
    query,
    headers,
    body
  }
}

const isBad = (x: Entry | BadInput): x is BadInput => "message" in x && !("method" in x)

/** Reads one file whatever its kind: HAR (a JSON document with `log`), curl lines, or JSONL. */
export const readInput = (file: string): Read => {
  let text: string
  try {
    text = fs.readFileSync(file, "utf8")
  } catch (e) {
    return { entries: [], bad: [{ where: file, message: `cannot read: ${e instanceof Error ? e.message : String(e)}` }] }
  }
  const entries: Array<Entry> = []
  const bad: Array<BadInput> = []
  const take = (x: Entry | BadInput) => (isBad(x) ? bad.push(x) : entries.push(x))
  const trimmed = text.trimStart()
  if (trimmed.startsWith("{") && /^\{\s*"log"\s*:/.test(trimmed)) {
    let doc: unknown
    try {
      doc = JSON.parse(text)
    } catch (e) {
      return { entries, bad: [{ where: file, message: `HAR: not JSON: ${e instanceof Error ? e.message : String(e)}` }] }
    }
    const list = isObject(doc) && isObject(doc.log) && Array.isArray(doc.log.entries) ? doc.log.entries : undefined
    if (!list) return { entries, bad: [{ where: file, message: "HAR: expected log.entries" }] }
    list.forEach((e, i) => take(fromHarEntry(e, `${file}#entry ${i}`)))
    return { entries, bad }
  }
  const lines = text.split(/\r?\n/)
  if (/^curl\s/.test(trimmed)) {
    for (let i = 0; i < lines.length; i++) {
      const start = i
      let command = lines[i]!
      while (command.endsWith("\\") && i + 1 < lines.length) command = command.slice(0, -1) + " " + lines[++i]!
      if (command.trim() === "" || command.trimStart().startsWith("#")) continue
      take(fromCurl(command.trim(), `${file}:${start + 1}`))
    }
    return { entries, bad }
  }
  lines.forEach((line, i) => {
    if (line.trim() === "") return
    take(fromCaptureLine(line, `${file}:${i + 1}`))
  })
  return { entries, bad }
}
