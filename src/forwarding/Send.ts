/**
 * One POST to a target. On undici's dispatcher (connections kept alive per origin): its plain
 * callbacks cost about half the CPU of node:http's request and response objects, and fetch
 * about three times (delivery shares the one thread with ingest). On node:http for what undici
 * will not do (see `byNode`). Redirects are not followed: a 3xx is an answer like any other,
 * and the worker retries it.
 */
import * as http from "node:http"
import * as https from "node:https"
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

/**
 * What a request needs of a URL, parsed once per URL (most deliveries go to a handful): `new URL`
 * cost more than the rest of a request's set-up. Bounded: a callback's callbackUrl may name any URL.
 */
const PARSED_KEPT = 1_000
interface Parsed {
  readonly origin: string
  readonly protocol: "http:" | "https:"
  /** as node:http takes it: an IPv6 literal without its brackets */
  readonly hostname: string
  readonly port: string
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
    protocol,
    hostname: u.hostname.startsWith("[") ? u.hostname.slice(1, -1) : u.hostname,
    port: u.port,
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

/** How a transport answers: once, with the answer, or why there is none. */
type Settle = (result: Answer | SendFailed) => void
/** A transport sends and answers a cancel; `send`'s settle hears only the first answer, none after a cancel. */
type Transport = (target: Parsed, headers: Readonly<Record<string, string>>, body: string, options: SendOptions, settle: Settle) => () => void

const withAuthorization = (target: Parsed, headers: Readonly<Record<string, string>>) =>
  target.authorization === undefined || Object.keys(headers).some((k) => k.toLowerCase() === "authorization") ? headers : { ...headers, authorization: target.authorization }

const excerptFrom = (chunks: ReadonlyArray<Buffer>, kept: number, bytes: number) => (kept === 0 ? "" : excerptOf(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), bytes))

/** The first of a header's values (repeated, both clients hand over all of them). */
const firstOf = (header: string | ReadonlyArray<string> | undefined) => (typeof header === "string" ? header : (header?.[0] ?? null))

/**
 * undici, loaded at the first request: its module (its HTTP parser is WebAssembly) costs ~9 MiB
 * resident, which a bridge that forwards nothing need not carry (idle RSS is issue 17's item 2).
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
const withAgent = (timeoutMs: number, go: (d: Dispatcher) => void, cannot: () => void) => {
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

/**
 * Origins that answered with an interim 100 nobody asked for: undici drops the connection on it
 * (nodejs/undici#197, declined), node:http reads past it as RFC 9110 §15.2 asks. Bounded.
 */
const interimAnswering = new Set<string>()
const INTERIM_KEPT = 1_000
/** undici's refusal of a request it will not send as given (an Expect, Keep-Alive or Upgrade header, a value it rejects) */
const REFUSED = new Set(["UND_ERR_INVALID_ARG", "UND_ERR_NOT_SUPPORTED"])
const isUnaskedInterim = (e: Error & { code?: string }) => e.code === "UND_ERR_SOCKET" && e.message === "bad response"

const errnoOf = (e: Error & { code?: string }) => (e.code ? `${e.code}: ` : "")

/**
 * undici's dispatcher. What it will not do goes to node:http instead, so a delivery fares as it
 * did before undici: a request it refuses (node:http sends it, or refuses it for good), an origin
 * that answers with an unasked 100 (sent again at once, and that origin's later requests go to
 * node:http: the receiver may see this one twice, with the same webhook-id), undici not loaded.
 */
const byUndici: Transport = (target, headers, body, options, settle) => {
  let cancelled = false
  let controller: Dispatcher.DispatchController | undefined
  let instead: (() => void) | undefined
  const viaNode = () => {
    if (!cancelled) instead = byNode(target, headers, body, options, settle)
  }
  const chunks: Array<Buffer> = []
  let kept = 0
  let status = 0
  let retryAfter: string | null = null
  const dispatch = (agent: Dispatcher) => {
    // cancelled, or timed out, while undici was loading
    if (cancelled) return
    try {
      agent.dispatch(
        { origin: target.origin, path: target.path, method: options.method ?? "POST", headers: withAuthorization(target, headers), body, headersTimeout: 0, bodyTimeout: 0 },
        {
          onRequestStart: (c) => {
            controller = c
            if (cancelled) c.abort(new Error("cancelled"))
          },
          onResponseStart: (_, statusCode, responseHeaders) => {
            status = statusCode
            retryAfter = firstOf(responseHeaders["retry-after"])
          },
          onResponseData: (_, chunk) => {
            if (kept < options.excerptBytes) {
              chunks.push(chunk)
              kept += chunk.length
            }
          },
          onResponseEnd: () => settle({ status, retryAfter, excerpt: excerptFrom(chunks, kept, options.excerptBytes) }),
          onResponseError: (_, e: Error & { code?: string }) => {
            if (cancelled) return
            if (e.code !== undefined && REFUSED.has(e.code)) return viaNode()
            if (isUnaskedInterim(e)) {
              if (interimAnswering.size >= INTERIM_KEPT) interimAnswering.clear()
              interimAnswering.add(target.origin)
              return viaNode()
            }
            settle(failed(`${errnoOf(e)}${e.message}`))
          }
        }
      )
    } catch {
      viaNode()
    }
  }
  withAgent(options.timeoutMs, dispatch, viaNode)
  return () => {
    cancelled = true
    controller?.abort(new Error("cancelled"))
    instead?.()
  }
}

const nodeAgents = {
  "http:": new http.Agent({ keepAlive: true, scheduling: "lifo" }),
  "https:": new https.Agent({ keepAlive: true, scheduling: "lifo" })
} as const

/** node:http(s), with keep-alive agents: what undici will not do (see `byUndici`). */
const byNode: Transport = (target, headers, body, options, settle) => {
  const payload = Buffer.from(body)
  let request: http.ClientRequest
  try {
    request = (target.protocol === "https:" ? https : http).request({
      protocol: target.protocol,
      hostname: target.hostname,
      port: target.port,
      path: target.path,
      method: options.method ?? "POST",
      agent: nodeAgents[target.protocol],
      headers: { ...withAuthorization(target, headers), "content-length": String(payload.length) }
    })
  } catch (e) {
    // Node refuses the request itself (a header it cannot send): the same request can only be refused again
    settle(failed(`the request could not be sent: ${e instanceof Error ? e.message : String(e)}`, true))
    return () => {}
  }
  // `send`'s settle answers once: an error after the answer, or after a cancel, is not heard
  request.once("error", (e: NodeJS.ErrnoException) => settle(failed(`${errnoOf(e)}${e.message}`)))
  request.once("response", (res) => {
    const chunks: Array<Buffer> = []
    let kept = 0
    res.on("data", (c: Buffer) => {
      if (kept < options.excerptBytes) {
        chunks.push(c)
        kept += c.length
      }
    })
    res.once("end", () => settle({ status: res.statusCode ?? 0, retryAfter: firstOf(res.headers["retry-after"]), excerpt: excerptFrom(chunks, kept, options.excerptBytes) }))
    res.once("error", (e) => settle(failed(e.message)))
  })
  try {
    request.end(payload)
  } catch (e) {
    settle(failed(e instanceof Error ? e.message : String(e)))
  }
  return () => request.destroy()
}

/**
 * The request sent, `done` called once with its answer or why there is none (never throws).
 * Answers a cancel: the request goes, answered or not, and `done` is not called. In plain code:
 * the worker's plain deliveries (Worker.ts) send with it, `post` wraps it for an Effect.
 */
export const send = (url: string, headers: Readonly<Record<string, string>>, body: string, options: SendOptions, done: Settle): (() => void) => {
  const target = parse(url)
  if (target instanceof SendFailed) {
    done(target)
    return () => {}
  }
  let settled = false
  let cancel = () => {}
  const settle: Settle = (result) => {
    if (settled) return
    settled = true
    clearTimeout(timer)
    done(result)
  }
  const timer = setTimeout(() => {
    if (settled) return
    settle(failed(`timed out after ${options.timeoutMs} ms`))
    cancel()
  }, options.timeoutMs)
  cancel = (interimAnswering.has(target.origin) ? byNode : byUndici)(target, headers, body, options, settle)
  return () => {
    clearTimeout(timer)
    settled = true
    cancel()
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
