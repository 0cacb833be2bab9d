/**
 * One POST to a target, on node:http(s) with keep-alive agents. (fetch cost about three
 * times the CPU per request, and delivery shares the one thread with ingest.) Redirects are
 * not followed: a 3xx is an answer like any other, and the worker retries it.
 */
import * as http from "node:http"
import * as https from "node:https"
import { Effect, Schema } from "effect"

/** At most `bytes` bytes of UTF-8: a character the cut would split is left out, not replaced by a wider U+FFFD. */
export const excerptOf = (body: Buffer, bytes: number) => {
  if (body.length <= bytes) return body.toString("utf8")
  let end = bytes
  // step back over continuation bytes (10xxxxxx) to the start of the character the cut falls in
  while (end > 0 && (body[end]! & 0xc0) === 0x80) end--
  return body.subarray(0, end).toString("utf8")
}

export interface Answer {
  readonly status: number
  readonly retryAfter: string | null
  /** the first `excerptBytes` of the body, as text */
  readonly excerpt: string
}

/** The request got no answer: DNS, connection, timeout. */
export class SendFailed extends Schema.TaggedError<SendFailed>()("SendFailed", {
  message: Schema.String,
  /** true: no later attempt can do better (the request itself is refused by Node) */
  permanent: Schema.Boolean
}) {}

const failed = (message: string, permanent = false) => new SendFailed({ message, permanent })

const agents = {
  "http:": new http.Agent({ keepAlive: true, scheduling: "lifo" }),
  "https:": new https.Agent({ keepAlive: true, scheduling: "lifo" })
} as const

/**
 * What node:http needs of a URL, parsed once per URL (most deliveries go to a handful): `new URL`
 * and Node's own conversion of it cost more than the rest of a request's set-up. Bounded: a
 * callback's callbackUrl may name any URL.
 */
const PARSED_KEPT = 1_000
interface Parsed {
  readonly protocol: "http:" | "https:"
  readonly hostname: string
  readonly port: string
  readonly path: string
  readonly auth?: string
}
const parsed = new Map<string, Parsed | SendFailed>()

/** A URL as an error may show it: its credentials (a password in the userinfo) left out. */
const shownUrl = (url: string) => url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#]*@/i, "$1(credentials)@")

const parseNew = (url: string): Parsed | SendFailed => {
  let u: URL
  try {
    u = new URL(url)
  } catch {
    return failed(`invalid URL ${shownUrl(url)}`)
  }
  const protocol = u.protocol === "https:" ? "https:" : u.protocol === "http:" ? "http:" : undefined
  if (!protocol) return failed(`unsupported protocol ${u.protocol}`)
  let auth: string | undefined
  try {
    auth = u.username || u.password ? `${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}` : undefined
  } catch (e) {
    // what Node itself answers for it (a request it cannot make): the same URL can only fail again
    return failed(`the request could not be sent: ${e instanceof Error ? e.message : String(e)}`, true)
  }
  return {
    protocol,
    // an IPv6 literal is written in brackets in a URL, without them in a hostname
    hostname: u.hostname.startsWith("[") ? u.hostname.slice(1, -1) : u.hostname,
    port: u.port,
    path: `${u.pathname}${u.search}`,
    ...(auth === undefined ? {} : { auth })
  }
}

const parse = (url: string) => {
  let p = parsed.get(url)
  if (p !== undefined) return p
  p = parseNew(url)
  if (parsed.size >= PARSED_KEPT) parsed.clear()
  parsed.set(url, p)
  return p
}

export interface SendOptions {
  readonly timeoutMs: number
  readonly excerptBytes: number
  readonly method?: "GET" | "POST" | "PATCH"
}

/**
 * The request sent, `done` called once with its answer or why there is none (never throws).
 * Answers a cancel: the request goes, answered or not, and `done` is not called. In plain code:
 * the worker's plain deliveries (Worker.ts) send with it, `post` wraps it for an Effect.
 */
export const send = (url: string, headers: Readonly<Record<string, string>>, body: string, options: SendOptions, done: (result: Answer | SendFailed) => void): (() => void) => {
  let settled = false
  const settle = (result: Answer | SendFailed) => {
    if (settled) return
    settled = true
    done(result)
  }
  const target = parse(url)
  if (target instanceof SendFailed) {
    settle(target)
    return () => {}
  }
  const payload = Buffer.from(body)
  let request: http.ClientRequest
  try {
    request = (target.protocol === "https:" ? https : http).request({
      protocol: target.protocol,
      hostname: target.hostname,
      port: target.port,
      path: target.path,
      ...(target.auth === undefined ? {} : { auth: target.auth }),
      method: options.method ?? "POST",
      agent: agents[target.protocol],
      headers: { ...headers, "content-length": String(payload.length) }
    })
  } catch (e) {
    // Node refuses the request itself (a header it cannot send): the same request can only be refused again
    settle(failed(`the request could not be sent: ${e instanceof Error ? e.message : String(e)}`, true))
    return () => {}
  }
  const fail = (e: SendFailed) => {
    if (settled) return
    request.destroy()
    settle(e)
  }
  const timer = setTimeout(() => fail(failed(`timed out after ${options.timeoutMs} ms`)), options.timeoutMs)
  request.once("error", (e: NodeJS.ErrnoException) => {
    clearTimeout(timer)
    fail(failed(`${e.code ? `${e.code}: ` : ""}${e.message}`))
  })
  request.once("response", (res) => {
    const chunks: Array<Buffer> = []
    let kept = 0
    res.on("data", (c: Buffer) => {
      if (kept < options.excerptBytes) {
        chunks.push(c)
        kept += c.length
      }
    })
    res.once("end", () => {
      clearTimeout(timer)
      const header = res.headers["retry-after"]
      settle({
        status: res.statusCode ?? 0,
        retryAfter: typeof header === "string" ? header : null,
        excerpt: kept === 0 ? "" : excerptOf(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), options.excerptBytes)
      })
    })
    res.once("error", (e) => {
      clearTimeout(timer)
      fail(failed(e.message))
    })
  })
  try {
    request.end(payload)
  } catch (e) {
    fail(failed(e instanceof Error ? e.message : String(e)))
  }
  return () => {
    clearTimeout(timer)
    settled = true
    request.destroy()
  }
}

/** The POST, aborted if interrupted; no answer in `timeoutMs` fails it. */
export const post = (url: string, headers: Readonly<Record<string, string>>, body: string, options: SendOptions): Effect.Effect<Answer, SendFailed> =>
  // registered with one parameter: Effect makes no AbortController for it (one per request cost
  // more than the request's own set-up); an interruption runs the cancel returned instead
  Effect.async<Answer, SendFailed>((resume) => {
    const cancel = send(url, headers, body, options, (result) => resume(result instanceof SendFailed ? Effect.fail(result) : Effect.succeed(result)))
    return Effect.sync(cancel)
  })
