/**
 * The replay itself: entries sent in their captured order to a server, each answer diffed with
 * the captured one (Diff.ts), ids followed (Rewrite.ts), optionally validated (Validate.ts).
 *
 * Order: an entry starts only after every earlier entry has started; entries of one lane — one
 * session, one sa_user, one box, one pushed call — also wait for the previous one of their lane
 * to be answered, so with `concurrency` > 1 only independent streams overlap. An entry that
 * names an id (a sessionId, a custId) that an earlier entry's captured answer issued also waits
 * for that entry to be answered, whatever its lane: the new server's id is learnt from it.
 */
import * as crypto from "node:crypto"
import * as http from "node:http"
import * as https from "node:https"
import { type Difference, diffAnswers, type Matcher, parseJson } from "./Diff.js"
import { type Answer, type BadInput, type Entry, sendableHeaders } from "./Input.js"
import { idValues, learnIds, namedIds, type Outgoing, paramsOf, rewrite, type Substitutions } from "./Rewrite.js"
import { type Problem, surfaceName, validateAnswer } from "./Validate.js"

export interface ReplayOptions {
  readonly to: string
  /** 0: as fast as possible; 1: the captured spacing; 2: twice as fast */
  readonly speed: number
  /** at most this many requests started per second (undefined: no cap) */
  readonly rate?: number | undefined
  readonly concurrency: number
  readonly matcher: Matcher
  readonly validate: boolean
  readonly credentials: ReadonlyMap<string, string>
  readonly adminToken?: string | undefined
  /** the receivers' paths of the server under test, for --validate */
  readonly receivers: ReadonlyArray<string>
  readonly onProgress?: ((done: number, total: number, stats: Totals) => void) | undefined
  /** per-request timeout */
  readonly timeoutMs?: number | undefined
  /** aborted: no more entries are sent and those in flight are cut (Ctrl-C) */
  readonly signal?: AbortSignal | undefined
}

export interface Result {
  readonly index: number
  readonly where: string
  readonly method: string
  readonly path: string
  /** the jsondata method, box cmd or push path */
  readonly name?: string | undefined
  readonly sent: { readonly method: string; readonly url: string; readonly headers: Record<string, string>; readonly body?: Buffer | undefined }
  readonly started: number
  readonly ms: number
  readonly capturedMs?: number | undefined
  readonly captured?: Answer | undefined
  readonly answer?: Answer | undefined
  readonly differences: ReadonlyArray<Difference>
  readonly problems: ReadonlyArray<Problem>
  readonly error?: string | undefined
}

export interface Totals {
  sent: number
  same: number
  different: number
  errors: number
  problems: number
}

const laneOf = (entry: Entry, params: ReadonlyMap<string, string>): string => {
  const session = params.get("sessionId")
  if (session) return `session:${session}`
  const user = params.get("sa_user")
  if (user) return `user:${user}`
  const box = params.get("satellite")
  if (box) return `box:${box.toLowerCase()}`
  const phone = params.get("phone")
  if (phone) return `call:${phone}`
  if (entry.path.startsWith("/admin/api")) return "admin"
  return "other"
}

/** resolves after `ms`, or at once when `signal` is aborted (its timer then cleared: nothing keeps the process) */
const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve()
    const timer = setTimeout(done, Math.max(0, ms))
    function done() {
      clearTimeout(timer)
      signal?.removeEventListener("abort", done)
      resolve()
    }
    signal?.addEventListener("abort", done, { once: true })
  })

/**
 * Where an entry goes: always the server under test. A captured path is the request line as a
 * client sent it, and `//other-host/x` resolved as a URL would name another host.
 */
export const targetUrl = (base: URL, out: { path: string; query: string }): URL =>
  new URL(`${base.origin}${out.path.startsWith("/") ? "" : "/"}${out.path}${out.query ? `?${out.query}` : ""}`)

type Sendable = { method: string; path: string; query: string; headers: Record<string, string>; body?: Buffer | undefined }

/**
 * The request sent on a kept-alive connection. One the server closed as it was reused (its idle
 * time-out passed between two captured requests) fails before any byte of an answer: that one
 * is sent once more, as Node's documentation advises, on a connection of its own (the agent's
 * other idle ones may be closed too) — unless the replay was stopped (Ctrl-C destroys the
 * agent's connections: that reset is not the server's). The client cannot tell such a close
 * from a server that read the request and then died; a push is stored once either way (its
 * dedup key). Any other failure is the replay's to report.
 */
const send = (agent: http.Agent, base: URL, out: Sendable, timeoutMs: number, stopped: () => boolean): Promise<Answer> =>
  sendOnce(agent, base, out, timeoutMs).catch((e: unknown) => {
    if (e instanceof ReusedSocketClosed && !stopped()) return sendOnce(false, base, out, timeoutMs)
    throw e instanceof ReusedSocketClosed ? e.cause : e
  })

class ReusedSocketClosed extends Error {}

const sendOnce = (agent: http.Agent | false, base: URL, out: Sendable, timeoutMs: number) =>
  new Promise<Answer>((resolve, reject) => {
    const url = targetUrl(base, out)
    const headers: Record<string, string | number> = { ...out.headers }
    if (out.body && out.body.length > 0) headers["content-length"] = out.body.length
    const req = (url.protocol === "https:" ? https : http).request(url, { method: out.method, headers, agent, timeout: timeoutMs }, (res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (c: Buffer) => chunks.push(c))
      res.on("end", () => {
        const h: Record<string, string> = {}
        for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) h[k] = Array.isArray(v) ? v.join(", ") : v
        resolve({ status: res.statusCode ?? 0, headers: h, body: Buffer.concat(chunks) })
      })
      res.on("error", reject)
    })
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)))
    req.on("error", (e: NodeJS.ErrnoException) =>
      reject(req.reusedSocket && (e.code === "ECONNRESET" || e.code === "EPIPE") ? new ReusedSocketClosed(e.message, { cause: e }) : e)
    )
    req.end(out.body && out.body.length > 0 ? out.body : undefined)
  })

/**
 * An extension made during the replay (addExtension, registerExtension, initExtensionPassword's
 * answer names it by exteId only, so not that one): its password is the one sent or answered,
 * and its later requests log in with it. A capture hides passwords: the placeholder sent is
 * then the password, consistently.
 */
const learnCredentials = (out: Outgoing, answer: Answer, into: Map<string, string>) => {
  const b = parseJson(answer.body)
  if (!b.ok || typeof b.value !== "object" || b.value === null) return
  const v = b.value as Record<string, unknown>
  if (v.code !== 0 || typeof v.extension !== "string") return
  const password = typeof v.password === "string" ? v.password : paramsOf(out).get("extePassword")
  if (password !== undefined) into.set(v.extension, crypto.createHash("md5").update(password).digest("hex"))
}

export const replay = async (entries: ReadonlyArray<Entry>, options: ReplayOptions): Promise<{ results: Array<Result>; ids: Map<string, string> }> => {
  const base = new URL(options.to)
  const agentOptions = { keepAlive: true, maxSockets: Math.max(1, options.concurrency) }
  const agent = base.protocol === "https:" ? new https.Agent(agentOptions) : new http.Agent(agentOptions)
  const ids = new Map<string, string>()
  // given ones, and those of extensions the replay creates (their passwords are known once sent or answered)
  const credentials = new Map(options.credentials)
  const subs: Substitutions = { ids, credentials, adminToken: options.adminToken }
  const results: Array<Result> = new Array(entries.length)
  const totals: Totals = { sent: 0, same: 0, different: 0, errors: 0, problems: 0 }
  const lanes = new Map<string, Promise<void>>()
  /** captured id → the entry whose captured answer issued it (the latest such) */
  const issuedBy = new Map<string, Promise<void>>()
  let inFlight = 0
  let slotFreed: (() => void) | undefined
  let done = 0
  const begin = performance.now()
  const t0 = entries.find((e) => e.at !== undefined)?.at
  let nextAllowed = begin

  const run = async (entry: Entry, index: number) => {
    const params = paramsOf(entry)
    const out = rewrite(entry, sendableHeaders(entry.headers), subs)
    const name = surfaceName({ path: entry.path, params, receivers: options.receivers })
    const url = targetUrl(base, out).toString()
    const started = Date.now()
    const t = performance.now()
    let answer: Answer | undefined
    let error: string | undefined
    try {
      answer = await send(agent, base, out, options.timeoutMs ?? 60_000, () => options.signal?.aborted === true)
    } catch (e) {
      error = e instanceof Error ? e.message : String(e)
    }
    const ms = performance.now() - t
    let differences: Array<Difference> = []
    let problems: Array<Problem> = []
    if (answer) {
      if (entry.answer) {
        differences = diffAnswers(entry.answer, answer, options.matcher)
        const a = parseJson(entry.answer.body)
        const b = parseJson(answer.body)
        if (a.ok && b.ok) learnIds(a.value, b.value, ids)
      }
      learnCredentials(out, answer, credentials)
      if (options.validate) problems = validateAnswer({ path: entry.path, params, receivers: options.receivers }, answer)
    }
    totals.sent++
    if (error) totals.errors++
    else if (differences.length > 0) totals.different++
    else totals.same++
    if (problems.length > 0) totals.problems++
    results[index] = {
      index,
      where: entry.where,
      method: entry.method,
      path: entry.path,
      name,
      sent: { method: out.method, url, headers: out.headers, body: out.body },
      started,
      ms,
      capturedMs: entry.ms,
      captured: entry.answer,
      answer,
      differences,
      problems,
      error
    }
    done++
    options.onProgress?.(done, entries.length, totals)
  }

  options.signal?.addEventListener(
    "abort",
    () => {
      agent.destroy()
      slotFreed?.()
    },
    { once: true }
  )
  const aborted = () => options.signal?.aborted === true
  try {
    for (let i = 0; i < entries.length && !aborted(); i++) {
      const entry = entries[i]!
      // the captured spacing, scaled
      if (options.speed > 0 && t0 !== undefined && entry.at !== undefined) await sleep(begin + (entry.at - t0) / options.speed - performance.now(), options.signal)
      if (options.rate !== undefined && options.rate > 0) {
        await sleep(nextAllowed - performance.now(), options.signal)
        nextAllowed = Math.max(nextAllowed, performance.now()) + 1000 / options.rate
      }
      while (inFlight >= Math.max(1, options.concurrency) && !aborted()) await new Promise<void>((resolve) => (slotFreed = resolve))
      if (aborted()) break
      inFlight++
      const lane = laneOf(entry, paramsOf(entry))
      const waits = [lanes.get(lane) ?? Promise.resolve()]
      for (const id of namedIds(entry)) {
        const producer = issuedBy.get(id)
        if (producer) waits.push(producer)
      }
      const next = Promise.all(waits).then(() => (aborted() ? undefined : run(entry, i))).finally(() => {
        inFlight--
        const wake = slotFreed
        slotFreed = undefined
        wake?.()
      })
      lanes.set(lane, next)
      // the ids its captured answer issued: later entries naming them wait for this one's answer
      const issued = entry.answer ? parseJson(entry.answer.body) : undefined
      if (issued?.ok) for (const id of idValues(issued.value)) issuedBy.set(id, next)
    }
    await Promise.all(lanes.values())
  } finally {
    agent.destroy()
  }
  // an interrupted replay: the entries never sent have no result
  return { results: results.filter((r) => r !== undefined), ids }
}

export interface Report {
  readonly totals: Totals & { readonly entries: number; readonly badInput: number; readonly filtered: number }
  readonly latency: { readonly captured: Percentiles | null; readonly replayed: Percentiles | null }
  readonly badInput: ReadonlyArray<BadInput>
  readonly requests: ReadonlyArray<{
    readonly index: number
    readonly where: string
    readonly request: string
    readonly status: { readonly captured: number | null; readonly replayed: number | null }
    readonly ms: number
    readonly differences: ReadonlyArray<Difference>
    readonly problems: ReadonlyArray<Problem>
    readonly error?: string
  }>
  readonly exitCode: 0 | 1 | 2
}

export interface Percentiles {
  readonly p50: number
  readonly p90: number
  readonly p99: number
  readonly max: number
}

export const percentiles = (values: ReadonlyArray<number>): Percentiles | null => {
  if (values.length === 0) return null
  const sorted = [...values].sort((a, b) => a - b)
  const at = (p: number) => Math.round(sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]! * 100) / 100
  return { p50: at(50), p90: at(90), p99: at(99), max: Math.round(sorted[sorted.length - 1]! * 100) / 100 }
}

const label = (r: Result) => `${r.method} ${r.path}${r.name ? ` (${r.name})` : ""}`

export const makeReport = (results: ReadonlyArray<Result>, bad: ReadonlyArray<BadInput>, filtered: number): Report => {
  const totals = { entries: results.length + bad.length + filtered, sent: 0, same: 0, different: 0, errors: 0, problems: 0, badInput: bad.length, filtered }
  for (const r of results) {
    totals.sent++
    if (r.error) totals.errors++
    else if (r.differences.length > 0) totals.different++
    else totals.same++
    if (r.problems.length > 0) totals.problems++
  }
  const exitCode = totals.errors > 0 || bad.length > 0 ? 2 : totals.different > 0 || totals.problems > 0 ? 1 : 0
  return {
    totals,
    latency: {
      captured: percentiles(results.flatMap((r) => (r.capturedMs === undefined ? [] : [r.capturedMs]))),
      replayed: percentiles(results.map((r) => r.ms))
    },
    badInput: bad,
    requests: results
      .filter((r) => r.error || r.differences.length > 0 || r.problems.length > 0)
      .map((r) => ({
        index: r.index,
        where: r.where,
        request: label(r),
        status: { captured: r.captured?.status ?? null, replayed: r.answer?.status ?? null },
        ms: Math.round(r.ms * 100) / 100,
        differences: r.differences,
        problems: r.problems,
        ...(r.error ? { error: r.error } : {})
      })),
    exitCode
  }
}

const show = (v: unknown) => {
  if (v === undefined) return "(absent)"
  const s = JSON.stringify(v)
  return s.length > 80 ? `${s.slice(0, 77)}...` : s
}

export const reportText = (report: Report): string => {
  const lines: Array<string> = []
  for (const b of report.badInput) lines.push(`bad input ${b.where}: ${b.message} (skipped)`)
  for (const r of report.requests) {
    lines.push(`#${r.index + 1} ${r.where} ${r.request}: ${r.error ? `ERROR ${r.error}` : `HTTP ${r.status.captured ?? "-"} → ${r.status.replayed ?? "-"}`}`)
    for (const d of r.differences) lines.push(`    ${d.path}: ${show(d.captured)} → ${show(d.replayed)}`)
    for (const p of r.problems) lines.push(`    invalid ${p.what} ${p.field}: ${p.message}`)
  }
  const t = report.totals
  lines.push(
    `${t.sent} sent: ${t.same} same, ${t.different} different, ${t.errors} failed` +
      (t.problems > 0 ? `, ${t.problems} invalid` : "") +
      (t.badInput > 0 ? `; ${t.badInput} bad input skipped` : "") +
      (t.filtered > 0 ? `; ${t.filtered} filtered out` : "")
  )
  const pct = (p: Percentiles | null) => (p ? `p50 ${p.p50} ms, p90 ${p.p90} ms, p99 ${p.p99} ms, max ${p.max} ms` : "-")
  lines.push(`latency captured: ${pct(report.latency.captured)}`)
  lines.push(`latency replayed: ${pct(report.latency.replayed)}`)
  lines.push(`exit ${report.exitCode}: ${["no differences", "differences", "errors"][report.exitCode]}`)
  return lines.join("\n")
}

/** What was sent and answered, as HAR 1.2 (--har-out). */
export const toHar = (results: ReadonlyArray<Result>) => {
  const headers = (h: Readonly<Record<string, string>>) => Object.entries(h).map(([name, value]) => ({ name, value }))
  const content = (a: Answer) => {
    const body = a.body ?? Buffer.alloc(0)
    const text = body.toString("utf8")
    const binary = Buffer.from(text, "utf8").equals(body) && !text.includes("\u0000") ? {} : { encoding: "base64" }
    return { size: body.length, mimeType: a.headers["content-type"] ?? "", text: "encoding" in binary ? body.toString("base64") : text, ...binary }
  }
  return {
    log: {
      version: "1.2",
      creator: { name: "voip-bridge replay", version: "1" },
      entries: results.map((r) => {
        const url = new URL(r.sent.url)
        return {
          startedDateTime: new Date(r.started).toISOString(),
          time: Math.round(r.ms * 100) / 100,
          request: {
            method: r.sent.method,
            url: r.sent.url,
            httpVersion: "HTTP/1.1",
            cookies: [],
            headers: headers(r.sent.headers),
            queryString: [...url.searchParams].map(([name, value]) => ({ name, value })),
            ...(r.sent.body && r.sent.body.length > 0 ? { postData: { mimeType: r.sent.headers["content-type"] ?? "", text: r.sent.body.toString("utf8") } } : {}),
            headersSize: -1,
            bodySize: r.sent.body?.length ?? 0
          },
          response: r.answer
            ? { status: r.answer.status, statusText: "", httpVersion: "HTTP/1.1", cookies: [], headers: headers(r.answer.headers), content: content(r.answer), redirectURL: "", headersSize: -1, bodySize: r.answer.body?.length ?? 0 }
            : { status: 0, statusText: r.error ?? "", httpVersion: "HTTP/1.1", cookies: [], headers: [], content: { size: 0, mimeType: "" }, redirectURL: "", headersSize: -1, bodySize: 0 },
          cache: {},
          timings: { send: 0, wait: Math.round(r.ms * 100) / 100, receive: 0 },
          ...(r.differences.length > 0 ? { _differences: r.differences } : {}),
          ...(r.problems.length > 0 ? { _problems: r.problems } : {})
        }
      })
    }
  }
}
