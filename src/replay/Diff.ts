/**
 * The structural difference between a captured answer and a new one. JSON bodies are compared
 * field by field; other bodies by content type, length and SHA-256. Volatile fields — ids the
 * server issues, times, sessionId, waterLine — are ignored by default (`--ignore` adds,
 * `--only` restricts).
 *
 * Paths read `rows[].custName`: array positions are written `[]` in patterns (every element)
 * and `[3]` in reports. A pattern without `.` or `[` names a key anywhere; `*` is any run of
 * characters within one key.
 */
import * as crypto from "node:crypto"
import type { Answer } from "./Input.js"
import { isIdKey } from "./Rewrite.js"

export interface Difference {
  readonly path: string
  /** absent: the field was not there */
  readonly captured?: unknown
  readonly replayed?: unknown
}

/** ids, times and per-run tokens: what differs in every run without anything being wrong */
export const DEFAULT_IGNORES: ReadonlyArray<string> = ["*Id", "*Ids", "id", "ids", "*_id", "callid", "mdcCode", "sessionId", "waterLine", "time", "*Time", "*time", "*At", "*Date", "password"]

const globRe = (glob: string) => new RegExp(`^${glob.split("*").map((s) => s.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join("[^.]*")}$`)

export interface Matcher {
  /** not compared at all (nor anything under it) */
  readonly ignored: (path: string, key: string | undefined) => boolean
  /** a difference here is reported (`--only`: the field or one above it is named) */
  readonly selected: (path: string) => boolean
}

export const makeMatcher = (options: { readonly ignore: ReadonlyArray<string>; readonly only: ReadonlyArray<string>; readonly defaults: boolean }): Matcher => {
  const compile = (patterns: ReadonlyArray<string>) =>
    patterns.map((p) => {
      const keyOnly = !p.includes(".") && !p.includes("[")
      return { keyOnly, re: globRe(keyOnly ? p : p.replace(/\[\]/g, "[*]")) }
    })
  const ignore = compile([...(options.defaults ? DEFAULT_IGNORES : []), ...options.ignore])
  const only = compile(options.only)
  const general = (path: string) => path.replace(/\[\d+\]/g, "[*]")
  return {
    ignored: (path, key) => ignore.some((m) => (m.keyOnly ? key !== undefined && m.re.test(key) : m.re.test(general(path)))),
    selected: (path) => {
      if (only.length === 0) return true
      const g = general(path)
      const keys = g.split(/\.|\[\*\]/).filter(Boolean)
      const prefixes: Array<string> = []
      for (let i = 0; i < g.length; i++) if (g[i] === "." || g[i] === "[") prefixes.push(g.slice(0, i))
      prefixes.push(g)
      return only.some((m) => (m.keyOnly ? keys.some((k) => m.re.test(k)) : prefixes.some((p) => m.re.test(p))))
    }
  }
}

const walk = (a: unknown, b: unknown, path: string, key: string | undefined, m: Matcher, out: Array<Difference>) => {
  if (path !== "" && m.ignored(path, key)) return
  const push = (d: Difference) => {
    if (m.selected(d.path)) out.push(d)
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      const p = `${path}[${i}]`
      if (i >= a.length) push({ path: p, replayed: b[i] })
      else if (i >= b.length) push({ path: p, captured: a[i] })
      else walk(a[i], b[i], p, key, m, out)
    }
    return
  }
  if (typeof a === "object" && a !== null && !Array.isArray(a) && typeof b === "object" && b !== null && !Array.isArray(b)) {
    const ra = a as Record<string, unknown>
    const rb = b as Record<string, unknown>
    for (const k of new Set([...Object.keys(ra), ...Object.keys(rb)])) {
      const p = path === "" ? k : `${path}.${k}`
      if (!(k in rb)) {
        if (!m.ignored(p, k)) push({ path: p, captured: ra[k] })
      } else if (!(k in ra)) {
        if (!m.ignored(p, k)) push({ path: p, replayed: rb[k] })
      } else walk(ra[k], rb[k], p, k, m, out)
    }
    return
  }
  if (JSON.stringify(a) !== JSON.stringify(b)) push({ path: path === "" ? "(body)" : path, captured: a, replayed: b })
}

export const parseJson = (body: Buffer | undefined): { ok: true; value: unknown } | { ok: false } => {
  if (!body || body.length === 0) return { ok: false }
  try {
    return { ok: true, value: JSON.parse(body.toString("utf8")) }
  } catch {
    return { ok: false }
  }
}

const mediaType = (h: Readonly<Record<string, string>>) => (h["content-type"] ?? "").split(";")[0]!.trim().toLowerCase()
const sha = (b: Buffer | undefined) => crypto.createHash("sha256").update(b ?? Buffer.alloc(0)).digest("hex").slice(0, 16)

export const diffAnswers = (captured: Answer, replayed: Answer, m: Matcher): Array<Difference> => {
  const out: Array<Difference> = []
  if (captured.status !== replayed.status && !m.ignored("(status)", "(status)")) out.push({ path: "(status)", captured: captured.status, replayed: replayed.status })
  const a = parseJson(captured.body)
  const b = parseJson(replayed.body)
  if (a.ok && b.ok) {
    walk(a.value, b.value, "", undefined, m, out)
    return out
  }
  const ta = mediaType(captured.headers)
  const tb = mediaType(replayed.headers)
  if (ta !== tb && !m.ignored("(type)", "(type)") && m.selected("(type)")) out.push({ path: "(type)", captured: ta, replayed: tb })
  const la = captured.truncatedBytes ?? captured.body?.length ?? 0
  const lb = replayed.body?.length ?? 0
  if (la !== lb && !m.ignored("(length)", "(length)") && m.selected("(length)")) out.push({ path: "(length)", captured: la, replayed: lb })
  // a body the capture cut short is compared by its length only
  else if (captured.truncatedBytes === undefined && sha(captured.body) !== sha(replayed.body) && !m.ignored("(hash)", "(hash)") && m.selected("(hash)")) out.push({ path: "(hash)", captured: sha(captured.body), replayed: sha(replayed.body) })
  return out
}

export { isIdKey }
