/**
 * Log lines as jq, Loki and journald expect them: one JSON object per line with `time`,
 * `level`, `msg`, then the context (annotations, then what else was logged, and the error).
 * Effect's own JSON logger nests the context and names the fields its own way.
 */
import { Cause, HashMap, Inspectable, List, Logger } from "effect"

const LEVEL: Record<string, string> = { TRACE: "trace", DEBUG: "debug", INFO: "info", WARN: "warn", ERROR: "error", FATAL: "fatal" }
const CORE = new Set(["time", "level", "msg"])

/** Anything logged, as JSON can hold it: errors by their tag, message and code, never a stack or a cycle. */
const plain = (u: unknown, depth = 0): unknown => {
  if (u === null || typeof u !== "object") return typeof u === "bigint" ? u.toString() : u
  if (depth > 6) return "[…]"
  if (Cause.isCause(u)) return Cause.isEmpty(u) ? undefined : Cause.pretty(u, { renderErrorCause: true })
  if (Buffer.isBuffer(u) || u instanceof Uint8Array) return `(${u.byteLength} bytes)`
  if (u instanceof Error) {
    const tagged = u as Error & { _tag?: unknown; code?: unknown; cause?: unknown }
    return {
      ...(typeof tagged._tag === "string" ? { tag: tagged._tag } : { name: u.name }),
      message: u.message,
      ...(tagged.code !== undefined ? { code: tagged.code } : {}),
      ...(tagged.cause !== undefined ? { cause: plain(tagged.cause, depth + 1) } : {})
    }
  }
  if (Array.isArray(u)) return u.map((x) => plain(x, depth + 1))
  const json = Inspectable.toJSON(u)
  if (json !== u) return plain(json, depth + 1)
  return Object.fromEntries(Object.entries(u as Record<string, unknown>).map(([k, v]) => [k, plain(v, depth + 1)]))
}

export const conventionalJson = Logger.make(({ annotations, cause, date, logLevel, message, spans }) => {
  const parts = Array.isArray(message) ? (message as ReadonlyArray<unknown>) : [message]
  const [first, ...rest] = parts
  const time = date.toISOString()
  const level = LEVEL[logLevel.label] ?? logLevel.label.toLowerCase()
  // a logger never throws: whatever cannot be written (a getter that throws, a cycle) is said so
  try {
    const line: Record<string, unknown> = { time, level, msg: typeof first === "string" ? first : JSON.stringify(plain(first)) }
    for (const [k, v] of HashMap.toEntries(annotations)) if (!CORE.has(k)) line[k] = plain(v)
    if (rest.length > 0) line.detail = rest.length === 1 ? plain(rest[0]) : rest.map((r) => plain(r))
    const error = plain(cause)
    if (error !== undefined) line.error = error
    const open = List.toArray(spans)
    if (open.length > 0) line.spans = Object.fromEntries(open.map((s) => [s.label, date.getTime() - s.startTime]))
    return JSON.stringify(line)
  } catch {
    return JSON.stringify({ time, level, msg: typeof first === "string" ? first : "(message could not be written)", detail: "(context could not be written as JSON)" })
  }
})
