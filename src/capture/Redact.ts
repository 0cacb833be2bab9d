/**
 * What a capture must not keep: the credentials a request carries (sa_password, sessionId, a
 * receiver's token, Authorization, an admin target's secret and headers) and the sessionId an
 * answer hands out. Each is replaced by `redacted-<12 hex>`, an HMAC of the value under a key of
 * this process: the same secret reads the same within a capture (replay follows a session by
 * it) and cannot be guessed back from it.
 *
 * Two layers, because the bridge accepts credentials in more spellings than any second parser
 * would foresee (a form sent as text/plain, `sa_password[0]`, a JSON array, odd multipart
 * headers):
 * - by value: the endpoint layer notes the values of credential parameters as the bridge itself
 *   parsed them (`noteSecrets`), and every occurrence of those values — raw, percent-encoded,
 *   JSON-escaped — is masked anywhere in the record (query, body, headers, answer);
 * - by key: forms, JSON and multipart parts, with names compared as the bridge reads them
 *   (decoded, `name[i]` as `name`, any case), for what never reached the endpoint layer (the
 *   admin API, a request refused before its parameters were read) and for the answers.
 */
import * as crypto from "node:crypto"
import { rewriteMultipart, safeDecode } from "./MultipartText.js"

/** parameters and JSON keys whose values are secrets: credentials, and the passwords an extension is given or handed */
export const SECRET_PARAMS: ReadonlySet<string> = new Set(["sa_password", "sessionId", "token", "extePassword", "password"])
/** headers whose values are secrets (lower case, as Node names them) */
export const SECRET_HEADERS: ReadonlySet<string> = new Set(["authorization", "proxy-authorization", "x-bridge-token", "cookie", "set-cookie"])
/**
 * JSON keys (any case, at any depth) whose whole value is secret: the above, an admin target's
 * `secret`, its OAuth2 `clientSecret` and `refreshToken` (and the token endpoint's spellings of
 * them), and a target's `headers` (their values are mostly credentials)
 */
const SECRET_KEYS: ReadonlySet<string> = new Set([
  ...[...SECRET_PARAMS].map((k) => k.toLowerCase()),
  ...SECRET_HEADERS,
  ...["secret", "clientSecret", "client_secret", "refreshToken", "refresh_token", "accessToken", "access_token"].map((k) => k.toLowerCase()),
  "headers"
])
/**
 * Query parameters of a URL-valued member whose values are secret: a target's `url` often
 * carries its credential (DingTalk's `access_token=`, WeCom's `key=`, a signed `sign=`).
 */
const SECRET_QUERY: ReadonlySet<string> = new Set(["access_token", "key", "token", "secret", "sign"])
/** A member holding a URL (`url`, `tokenUrl`, `pushUrl`, any case): its query is searched for SECRET_QUERY. */
const isUrlKey = (key: string) => /url$/i.test(key)

export const REDACTED = /^redacted-[0-9a-f]{12}$/

/** A parameter's name as the bridge reads it: `sa_password[0]` and `sa_password[]` are `sa_password`. */
const baseName = (name: string) => name.replace(/(\[[^\]]*\])+$/, "").toLowerCase()
const isSecretName = (name: string) => SECRET_KEYS.has(baseName(name)) && baseName(name) !== "headers"

/**
 * Values shorter than this are masked by key only: masking every "12" of a record would make it
 * unreadable and hide nothing worth hiding.
 */
const MIN_VALUE = 4

// requests being captured → the secret values their parameters carried (filled by the endpoint layer)
const watched = new WeakMap<object, Set<string>>()

/** Called by the capture for a request it records: from then on `noteSecrets` keeps its secret values. */
export const watchSecrets = (req: object): ReadonlySet<string> => {
  const values = new Set<string>()
  watched.set(req, values)
  return values
}

const NONE: ReadonlySet<string> = new Set()
/**
 * The endpoint layer's hook: the credential values among the request's parsed parameters, and
 * those of the parameters the endpoint declares secret (`secrets`: e.g. the upstream callback
 * push's `key`). One WeakMap miss when not capturing.
 */
export const noteSecrets = (req: object, pairs: Iterable<readonly [string, string]>, declared: ReadonlySet<string> = NONE): void => {
  const into = watched.get(req)
  if (!into) return
  for (const [name, value] of pairs) if (value.length >= MIN_VALUE && (isSecretName(name) || declared.has(baseName(name)))) into.add(value)
}

const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")
const hexClass = (n: number) =>
  n
    .toString(16)
    .padStart(2, "0")
    .split("")
    .map((d) => (/[a-f]/.test(d) ? `[${d}${d.toUpperCase()}]` : d))
    .join("")

/**
 * A pattern for one value in latin1 text (the bytes as sent): each character as itself, as
 * percent escapes of its UTF-8 bytes (either case), as a JSON `\uXXXX` escape, a space as `+`.
 */
const valuePattern = (value: string): string =>
  [...value]
    .map((ch) => {
      const bytes = Buffer.from(ch, "utf8")
      const alternatives = [escapeRegex(bytes.toString("latin1")), [...bytes].map((b) => `%${hexClass(b)}`).join("")]
      const code = ch.codePointAt(0)!
      if (code <= 0xffff) alternatives.push(`\\\\[uU]${hexClass(code >> 8)}${hexClass(code & 0xff)}`)
      if (ch === " ") alternatives.push("\\+")
      if (ch === "/") alternatives.push("\\\\/")
      return `(?:${alternatives.join("|")})`
    })
    .join("")

export const makeRedactor = (key: Buffer = crypto.randomBytes(32)) => {
  const mask = (value: string) => `redacted-${crypto.createHmac("sha256", key).update(value).digest("hex").slice(0, 12)}`
  const maskOnce = (value: string) => (REDACTED.test(value) ? value : mask(value))

  /** Every occurrence of the given secret values in latin1 text masked; the values themselves are the ones the bridge parsed. */
  const values = (secrets: ReadonlySet<string>) => {
    if (secrets.size === 0) return (text: string) => text
    // longest first: a value that contains another is masked whole
    const list = [...secrets].sort((a, b) => b.length - a.length)
    const patterns = list.map((v) => new RegExp(`^${valuePattern(v)}$`))
    const any = new RegExp(list.map((v) => `(?:${valuePattern(v)})`).join("|"), "g")
    return (text: string) =>
      text.replace(any, (found) => {
        const i = patterns.findIndex((p) => p.test(found))
        return mask(list[i] ?? found)
      })
  }

  /** `a=1&sa_password=…`: the secrets' values masked, every other byte as it was */
  const formText = (text: string): string =>
    text
      .split("&")
      .map((pair) => {
        const eq = pair.indexOf("=")
        if (eq < 0) return pair
        const name = safeDecode(pair.slice(0, eq))
        return isSecretName(name) ? `${pair.slice(0, eq)}=${maskOnce(safeDecode(pair.slice(eq + 1)))}` : pair
      })
      .join("&")

  /**
   * A URL with the values of its secret query parameters masked, every other byte as it was.
   * `stop` ends a value: in JSON text a quote or an escape ends the string too.
   */
  const urlQuery = (url: string, stop = "&#"): string => {
    const q = url.indexOf("?")
    if (q < 0) return url
    const value = new RegExp(`([?&])([^=&#]+)=([^${stop}]*)`, "g")
    return `${url.slice(0, q)}${url.slice(q).replace(value, (whole, sep: string, name: string, v: string) => {
      const n = baseName(safeDecode(name))
      return v !== "" && (SECRET_QUERY.has(n) || isSecretName(n)) ? `${sep}${name}=${maskOnce(safeDecode(v))}` : whole
    })}`
  }

  /** Any value under a secret key (any case, any depth), arrays and objects included; secret query parameters of URL-valued members. */
  const json = (value: unknown, secret = false, key = ""): unknown => {
    if (Array.isArray(value)) return value.map((v) => json(v, secret, key))
    if (typeof value === "object" && value !== null)
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, json(v, secret || SECRET_KEYS.has(baseName(k)), k)]))
    if (secret && (typeof value === "string" || typeof value === "number")) return maskOnce(String(value))
    return typeof value === "string" && isUrlKey(key) ? urlQuery(value) : value
  }

  /** JSON that does not parse (cut at maxBodyBytes, or malformed): values of secret keys found by pattern. */
  const jsonText = (text: string, all = false): string =>
    text.replace(/"((?:[^"\\]|\\.)*)"(\s*:\s*)(\[[^\]]*\]?|\{[^}]*\}?|"(?:[^"\\]|\\.)*"?|[-+\d.eE]+)/g, (whole, k: string, colon: string, v: string) => {
      // an object or array under another key is searched in turn
      if (!all && !SECRET_KEYS.has(baseName(k))) {
        if (/^[[{]/.test(v)) return `"${k}"${colon}${jsonText(v)}`
        return v.startsWith('"') && isUrlKey(k) ? `"${k}"${colon}${urlQuery(v, '&#"\\\\\\s')}` : whole
      }
      const scalar = (x: string) => `"${maskOnce(x.replace(/^"|"$/g, ""))}"`
      const masked = v.startsWith("{") ? jsonText(v, true) : v.startsWith("[") ? v.replace(/"(?:[^"\\]|\\.)*"?|-?\d[\d.eE+-]*/g, scalar) : scalar(v)
      return `"${k}"${colon}${masked}`
    })

  /** A multipart body's fields named by a secret name masked, its parts read as the bridge reads them. */
  const multipart = (contentType: string, text: string): string => rewriteMultipart(contentType, text, (name, value) => (isSecretName(name) ? maskOnce(value) : undefined))

  /**
   * A body by its declared type. Anything neither JSON nor multipart is read as a form, as the
   * bridge reads it (text/plain, no type at all); a pair not named by a secret keeps its bytes.
   */
  const body = (contentType: string | undefined, bytes: Buffer): Buffer => {
    const type = (contentType ?? "").toLowerCase()
    const text = bytes.toString("latin1")
    let masked: string
    if (type.startsWith("multipart/form-data")) masked = multipart(contentType ?? "", text)
    else {
      // JSON by its type, or by its looks: a sender may declare none, or another
      if (type.includes("json") || /^\s*[[{]/.test(text))
        try {
          return Buffer.from(JSON.stringify(json(JSON.parse(bytes.toString("utf8")))))
        } catch {
          // cut at maxBodyBytes, or not JSON after all: by pattern below
        }
      masked = jsonText(type.includes("json") ? text : formText(text))
    }
    return masked === text ? bytes : Buffer.from(masked, "latin1")
  }

  const headers = (h: Readonly<Record<string, string | ReadonlyArray<string> | number | undefined>>): Record<string, string> => {
    const out: Record<string, string> = {}
    for (const [name, value] of Object.entries(h)) {
      if (value === undefined) continue
      const text = Array.isArray(value) ? value.join(", ") : String(value)
      if (!SECRET_HEADERS.has(name.toLowerCase())) {
        // a URL (Referer, Origin, Location) may carry ?sessionId=…
        const q = text.indexOf("?")
        out[name] = q < 0 ? text : `${text.slice(0, q + 1)}${formText(text.slice(q + 1))}`
      } else {
        // the scheme stays readable: replay puts its own token after it
        const m = /^(\w+)\s+(.*)$/.exec(text)
        out[name] = m && name.toLowerCase().endsWith("authorization") ? `${m[1]} ${maskOnce(m[2]!)}` : maskOnce(text)
      }
    }
    return out
  }

  return { mask, values, formText, json, body, headers }
}

export type Redactor = ReturnType<typeof makeRedactor>
