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

/** The POST, aborted if interrupted; no answer in `timeoutMs` fails it. */
export const post = (
  url: string,
  headers: Readonly<Record<string, string>>,
  body: string,
  options: { readonly timeoutMs: number; readonly excerptBytes: number; readonly method?: "GET" | "POST" | "PATCH" }
): Effect.Effect<Answer, SendFailed> =>
  Effect.async<Answer, SendFailed>((resume, signal) => {
    const resolve = (answer: Answer) => resume(Effect.succeed(answer))
    const reject = (e: SendFailed) => resume(Effect.fail(e))
    let target: URL
    try {
      target = new URL(url)
    } catch {
      return reject(failed(`invalid URL ${url}`))
    }
    const protocol = target.protocol === "https:" ? "https:" : target.protocol === "http:" ? "http:" : undefined
    if (!protocol) return reject(failed(`unsupported protocol ${target.protocol}`))
    const payload = Buffer.from(body)
    let request: http.ClientRequest
    try {
      request = (protocol === "https:" ? https : http).request(target, {
        method: options.method ?? "POST",
        agent: agents[protocol],
        headers: { ...headers, "content-length": String(payload.length) },
        signal
      })
    } catch (e) {
      // Node refuses the request itself (a header it cannot send): the same request can only be refused again
      return reject(failed(`the request could not be sent: ${e instanceof Error ? e.message : String(e)}`, true))
    }
    let settled = false
    const fail = (e: SendFailed) => {
      if (settled) return
      settled = true
      request.destroy()
      reject(e)
    }
    const timer = setTimeout(() => fail(failed(`timed out after ${options.timeoutMs} ms`)), options.timeoutMs)
    request.once("error", (e: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      fail(failed(e.name === "AbortError" ? "aborted" : `${e.code ? `${e.code}: ` : ""}${e.message}`))
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
        if (settled) return
        settled = true
        const header = res.headers["retry-after"]
        resolve({
          status: res.statusCode ?? 0,
          retryAfter: typeof header === "string" ? header : null,
          excerpt: excerptOf(Buffer.concat(chunks), options.excerptBytes)
        })
      })
      res.once("error", (e) => {
        clearTimeout(timer)
        fail(failed(e.message))
      })
    })
    request.end(payload)
  }).pipe(
    // anything else thrown while sending is a send that failed, like a connection that did
    Effect.catchAllDefect((e) => Effect.fail(failed(e instanceof Error ? e.message : String(e))))
  )
