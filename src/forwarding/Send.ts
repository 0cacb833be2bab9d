/**
 * One POST to a target, on undici's dispatcher (connections kept alive per origin). Its plain
 * callbacks cost about half the CPU of node:http's request and response objects, and fetch
 * about three times (delivery shares the one thread with ingest). Redirects are not followed:
 * a 3xx is an answer like any other, and the worker retries it.
 */
import { Effect, Schema } from "effect"
import type { Dispatcher } from "undici"

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

type DispatchController = Dispatcher.DispatchController

/**
 * Keeps connections to each origin alive between deliveries. Loaded at the first request:
 * undici's module (its HTTP parser is WebAssembly) costs ~9 MiB resident, which a bridge
 * that forwards nothing need not carry (idle RSS is issue 17's item 2).
 *
 * One agent per timeout, whose connect timeout is that timeout: undici bounds a connect by its
 * agent's own (10 s unless told), which cut a target's longer timeoutMs short, and a request
 * still waiting for its connection cannot be aborted, so our timer alone would leave the connect
 * running. Timeouts are few (a target's, the ad-hoc policy's, OAuth's); an agent whose
 * connections have closed holds next to nothing.
 */
type AgentFor = (timeoutMs: number) => Dispatcher
let agentFor: AgentFor | undefined
let loading: Promise<AgentFor> | undefined
const withDispatcher = (timeoutMs: number, go: (d: Dispatcher) => void, cannot: (e: unknown) => void) => {
  if (agentFor !== undefined) return go(agentFor(timeoutMs))
  // its CommonJS exports, under `default` both in Node and in the bundle (where a named export is not there)
  loading ??= import("undici").then((u) => {
    const agents = new Map<number, Dispatcher>()
    return (agentFor = (ms) => {
      let agent = agents.get(ms)
      if (agent === undefined) agents.set(ms, (agent = new u.default.Agent({ connectTimeout: ms })))
      return agent
    })
  })
  loading.then((of) => go(of(timeoutMs)), cannot)
}

/** undici's codes for a request it will not send as given (an invalid header, an `expect` header) */
const REFUSED = new Set(["UND_ERR_INVALID_ARG", "UND_ERR_NOT_SUPPORTED"])

const errnoOf = (e: Error & { code?: string }) => (e.code ? `${e.code}: ` : "")

const hasAuthorization = (headers: Readonly<Record<string, string>>) => Object.keys(headers).some((k) => k.toLowerCase() === "authorization")

/**
 * What a request needs of a URL, parsed once per URL (most deliveries go to a handful): `new URL`
 * cost more than the rest of a request's set-up. Bounded: a callback's callbackUrl may name any URL.
 */
const PARSED_KEPT = 1_000
interface Parsed {
  readonly origin: string
  readonly path: string
  /** Basic, from the URL's userinfo: sent unless the request names its own authorization */
  readonly authorization?: string
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
    origin: u.origin,
    path: `${u.pathname}${u.search}`,
    ...(auth === undefined ? {} : { authorization: `Basic ${Buffer.from(auth).toString("base64")}` })
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
  let controller: DispatchController | undefined
  let timer: ReturnType<typeof setTimeout> | undefined
  const settle = (result: Answer | SendFailed) => {
    if (settled) return
    settled = true
    clearTimeout(timer)
    done(result)
  }
  const target = parse(url)
  if (target instanceof SendFailed) {
    settle(target)
    return () => {}
  }
  const fail = (e: SendFailed) => {
    if (settled) return
    settle(e)
    controller?.abort(new Error(e.message))
  }
  timer = setTimeout(() => fail(failed(`timed out after ${options.timeoutMs} ms`)), options.timeoutMs)
  const chunks: Array<Buffer> = []
  let kept = 0
  let status = 0
  let retryAfter: string | null = null
  const dispatch = (dispatcher: Dispatcher) => {
    // cancelled, or timed out, while undici was loading
    if (settled) return
    try {
      dispatcher.dispatch(
        {
          origin: target.origin,
          path: target.path,
          method: options.method ?? "POST",
          headers: target.authorization === undefined || hasAuthorization(headers) ? headers : { ...headers, authorization: target.authorization },
          body,
          // our own timer bounds the whole exchange
          headersTimeout: 0,
          bodyTimeout: 0
        },
        {
          onRequestStart: (c) => {
            controller = c
            if (settled) c.abort(new Error("cancelled"))
          },
          onResponseStart: (_, statusCode, responseHeaders) => {
            status = statusCode
            // repeated, undici hands over every value: the first counts, as it did on node:http
            const header = responseHeaders["retry-after"]
            retryAfter = (Array.isArray(header) ? header[0] : header) ?? null
          },
          onResponseData: (_, chunk) => {
            if (kept < options.excerptBytes) {
              chunks.push(chunk)
              kept += chunk.length
            }
          },
          onResponseEnd: () =>
            settle({ status, retryAfter, excerpt: kept === 0 ? "" : excerptOf(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), options.excerptBytes) }),
          onResponseError: (_, e: Error & { code?: string }) =>
            // a request undici refuses to send (a header it cannot send) can only be refused again
            fail(e.code !== undefined && REFUSED.has(e.code) ? failed(`the request could not be sent: ${e.message}`, true) : failed(`${errnoOf(e)}${e.message}`))
        }
      )
    } catch (e) {
      settle(failed(`the request could not be sent: ${e instanceof Error ? e.message : String(e)}`, true))
    }
  }
  withDispatcher(options.timeoutMs, dispatch, (e) => settle(failed(`the HTTP client could not be loaded: ${e instanceof Error ? e.message : String(e)}`)))
  return () => {
    clearTimeout(timer)
    settled = true
    controller?.abort(new Error("cancelled"))
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
