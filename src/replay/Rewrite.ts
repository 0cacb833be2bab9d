/**
 * What a captured request becomes when it is sent again: ids the original server issued
 * replaced by the ones the new server issued for the same step (id following), and
 * credentials replaced by the ones given for this run.
 *
 * Only the values of id-like parameters are replaced (custId, ids, exte_id, sessionId, …),
 * and only whole values or whole items of a comma list: a `limit=5` is never taken for the
 * customer 5.
 */
import { single } from "../../schemas/Param.js"
import { multipartFields, rewriteMultipart, safeDecode } from "../capture/MultipartText.js"
import { paramKey, toRawParams } from "../http/Params.js"
import type { Entry } from "./Input.js"

/** a parameter or JSON key that names something the server issued */
export const isIdKey = (key: string): boolean => {
  const k = key.replace(/\[\d*\]$/, "")
  return /(^|_)ids?$/i.test(k) || /[a-z]Ids?$/.test(k) || /^(callid|mdcCode|deliveryId|sessionId)$/i.test(k)
}

export interface Substitutions {
  /** captured id → id the new server issued */
  readonly ids: ReadonlyMap<string, string>
  /** sa_user → sa_password (32-hex MD5) */
  readonly credentials: ReadonlyMap<string, string>
  /** the admin API's bearer token on the new server */
  readonly adminToken?: string | undefined
}

const mapValue = (value: string, ids: ReadonlyMap<string, string>): string => {
  const whole = ids.get(value)
  if (whole !== undefined) return whole
  if (!value.includes(",")) return value
  return value
    .split(",")
    .map((v) => ids.get(v) ?? v)
    .join(",")
}

/** a query string or urlencoded body, each pair rewritten by `f(name, value)` (undefined: as it was) */
const rewritePairs = (text: string, f: (name: string, value: string) => string | undefined): string =>
  text
    .split("&")
    .map((pair) => {
      const eq = pair.indexOf("=")
      if (eq < 0) return pair
      const next = f(safeDecode(pair.slice(0, eq)), safeDecode(pair.slice(eq + 1)))
      return next === undefined ? pair : `${pair.slice(0, eq)}=${encodeURIComponent(next)}`
    })
    .join("&")

/**
 * How the bridge reads a body of this Content-Type (src/http/Params.ts collect): multipart first
 * (a boundary may contain "json"), then JSON, anything else as a form.
 */
const bodyKind = (contentType: string | undefined): "multipart" | "json" | "form" => {
  const type = (contentType ?? "").toLowerCase()
  return type.startsWith("multipart/form-data") ? "multipart" : type.includes("json") ? "json" : "form"
}

/** pairs of a query string or urlencoded body, decoded */
export const pairsOf = (text: string): Array<[string, string]> =>
  text
    .split("&")
    .filter(Boolean)
    .map((pair) => {
      const eq = pair.indexOf("=")
      return eq < 0 ? [safeDecode(pair), ""] : [safeDecode(pair.slice(0, eq)), safeDecode(pair.slice(eq + 1))]
    })

/**
 * The request's parameters as pairs, in the order the bridge reads them: the query, then a
 * multipart, JSON (top-level members, an array's items each) or form body — a body of any other
 * type is read as a form, as the bridge reads it.
 */
export const requestPairs = (entry: Pick<Entry, "query" | "headers" | "body">): Array<[string, string]> => {
  const out = pairsOf(entry.query)
  const body = entry.body
  if (!body || body.length === 0) return out
  const type = entry.headers["content-type"]
  const kind = bodyKind(type)
  if (kind === "multipart") for (const f of multipartFields(type ?? "", body.toString("latin1"))) out.push([f.name, f.value])
  else if (kind === "json") {
    try {
      const value: unknown = JSON.parse(body.toString("utf8"))
      if (typeof value === "object" && value !== null && !Array.isArray(value))
        for (const [k, v] of Object.entries(value))
          for (const item of Array.isArray(v) ? v : [v]) if (item !== null && item !== undefined) out.push([k, typeof item === "object" ? JSON.stringify(item) : String(item)])
    } catch {
      // not JSON: no parameters from it
    }
  } else for (const [k, v] of pairsOf(body.toString("latin1"))) out.push([k, Buffer.from(v, "latin1").toString("utf8")])
  return out
}

/** The request's parameters by name, the last value of each. */
export const paramsOf = (entry: Pick<Entry, "query" | "headers" | "body">): Map<string, string> => new Map(requestPairs(entry))

/** A parameter the bridge reads as the password (`sa_password`, `sa_password[0]`, `sa_password[]`, in any part of the request). */
const isPassword = (name: string) => paramKey(name) === "sa_password"

/** A JSON body's password members (a string, or an array of them) given `password`. */
const withPassword = (value: unknown, password: string): unknown =>
  typeof value !== "object" || value === null || Array.isArray(value)
    ? value
    : Object.fromEntries(Object.entries(value).map(([k, v]) => [k, !isPassword(k) || v === null ? v : Array.isArray(v) ? v.map(() => password) : password]))

const rewriteJson = (value: unknown, subs: Substitutions, key?: string): unknown => {
  if (Array.isArray(value)) return value.map((v) => rewriteJson(v, subs, key))
  if (typeof value === "object" && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, rewriteJson(v, subs, k)]))
  if (key !== undefined && isIdKey(key) && (typeof value === "string" || typeof value === "number")) {
    const next = subs.ids.get(String(value))
    if (next !== undefined) return typeof value === "number" && /^-?\d+$/.test(next) ? Number(next) : next
  }
  return value
}

export interface Outgoing {
  readonly method: string
  readonly path: string
  readonly query: string
  readonly headers: Record<string, string>
  readonly body?: Buffer | undefined
}

export const rewrite = (entry: Entry, headers: Record<string, string>, subs: Substitutions): Outgoing => {
  // the user as the bridge will read it, whichever way the request spells it
  const user = single(toRawParams(requestPairs(entry)), "sa_user")
  const password = user === undefined ? undefined : subs.credentials.get(user)
  const pair = (name: string, value: string) => {
    if (isPassword(name) && password !== undefined) return password
    if (isIdKey(name)) {
      const next = mapValue(value, subs.ids)
      return next === value ? undefined : next
    }
    return undefined
  }
  const query = entry.query === "" ? "" : rewritePairs(entry.query, pair)
  let body = entry.body
  const type = headers["content-type"]
  const kind = bodyKind(type)
  if (body && kind === "multipart") {
    const text = body.toString("latin1")
    const next = rewriteMultipart(type ?? "", text, pair)
    if (next !== text) body = Buffer.from(next, "latin1")
  } else if (body && kind === "json") {
    try {
      const value: unknown = JSON.parse(body.toString("utf8"))
      body = Buffer.from(JSON.stringify(rewriteJson(password === undefined ? value : withPassword(value, password), subs)))
    } catch {
      // sent as captured
    }
  } else if (body && body.length > 0) {
    // urlencoded, or a body of no other type, which the bridge reads as a form; bytes not rewritten stay as they were
    const text = body.toString("latin1")
    const next = rewritePairs(text, (n, v) => pair(n, Buffer.from(v, "latin1").toString("utf8")))
    if (next !== text) body = Buffer.from(next, "latin1")
  }
  // an admin API path names events, deliveries by their ids
  const path = entry.path
    .split("/")
    .map((seg) => (/^\d+$/.test(seg) ? (subs.ids.get(seg) ?? seg) : seg))
    .join("/")
  const out = { ...headers }
  if (subs.adminToken !== undefined && entry.path.startsWith("/admin/api") && out.authorization !== undefined) out.authorization = `Bearer ${subs.adminToken}`
  return { method: entry.method, path, query, headers: out, body }
}

/** The values of id-like fields anywhere in a JSON value: what an answer issues (a sessionId, a custId). */
export const idValues = (value: unknown, into: Set<string> = new Set(), key?: string): Set<string> => {
  if (Array.isArray(value)) for (const v of value) idValues(v, into, key)
  else if (typeof value === "object" && value !== null) for (const [k, v] of Object.entries(value)) idValues(v, into, k)
  else if (key !== undefined && isIdKey(key) && (typeof value === "string" || typeof value === "number") && String(value) !== "") into.add(String(value))
  return into
}

/** The ids a request names: id-like parameters (items of a comma list too), and numbers in an admin API path. */
export const namedIds = (entry: Pick<Entry, "path" | "query" | "headers" | "body">): Set<string> => {
  const out = new Set<string>()
  for (const [k, v] of paramsOf(entry)) if (isIdKey(k)) for (const item of v.split(",")) if (item !== "") out.add(item)
  if (entry.body && bodyKind(entry.headers["content-type"]) === "json") {
    try {
      idValues(JSON.parse(entry.body.toString("utf8")), out)
    } catch {
      // not JSON: its parameters were read above as far as they could be
    }
  }
  for (const seg of entry.path.split("/")) if (/^\d+$/.test(seg)) out.add(seg)
  return out
}

/**
 * Ids to follow from one exchange: where the captured answer and the new one carry an id-like
 * field at the same place with different values, later requests naming the old value get the new.
 */
export const learnIds = (captured: unknown, replayed: unknown, into: Map<string, string>, key?: string) => {
  if (Array.isArray(captured) && Array.isArray(replayed)) {
    captured.forEach((c, i) => learnIds(c, replayed[i], into, key))
    return
  }
  if (typeof captured === "object" && captured !== null && typeof replayed === "object" && replayed !== null && !Array.isArray(replayed)) {
    for (const [k, v] of Object.entries(captured)) learnIds(v, (replayed as Record<string, unknown>)[k], into, k)
    return
  }
  if (key === undefined || !isIdKey(key)) return
  if ((typeof captured === "string" || typeof captured === "number") && (typeof replayed === "string" || typeof replayed === "number")) {
    const from = String(captured)
    const to = String(replayed)
    if (from === to) into.delete(from)
    else if (from !== "" && to !== "") into.set(from, to)
  }
}
