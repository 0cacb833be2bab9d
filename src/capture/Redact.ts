/**
 * What a capture must not keep: the credentials a request carries (sa_password, sessionId, a
 * receiver's token, Authorization) and the sessionId an answer hands out. Each is replaced by
 * `redacted-<12 hex>`, an HMAC of the value under a key of this process: the same secret reads
 * the same within a capture (replay follows a session by it) and cannot be guessed back from it.
 */
import * as crypto from "node:crypto"

/** parameters and JSON keys whose values are secrets: credentials, and the passwords an extension is given or handed */
export const SECRET_PARAMS: ReadonlySet<string> = new Set(["sa_password", "sessionId", "token", "extePassword", "password"])
/** headers whose values are secrets (lower case, as Node names them) */
export const SECRET_HEADERS: ReadonlySet<string> = new Set(["authorization", "proxy-authorization", "x-bridge-token", "cookie"])

export const REDACTED = /^redacted-[0-9a-f]{12}$/

export const makeRedactor = (key: Buffer = crypto.randomBytes(32)) => {
  const mask = (value: string) => `redacted-${crypto.createHmac("sha256", key).update(value).digest("hex").slice(0, 12)}`

  /** `a=1&sa_password=…`: the secrets' values masked, every other byte as it was */
  const formText = (text: string): string =>
    text
      .split("&")
      .map((pair) => {
        const eq = pair.indexOf("=")
        if (eq < 0) return pair
        const name = safeDecode(pair.slice(0, eq))
        return SECRET_PARAMS.has(name) ? `${pair.slice(0, eq)}=${mask(safeDecode(pair.slice(eq + 1)))}` : pair
      })
      .join("&")

  const json = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(json)
    if (typeof value !== "object" || value === null) return value
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, SECRET_PARAMS.has(k) && (typeof v === "string" || typeof v === "number") ? mask(String(v)) : json(v)])
    )
  }

  /** A body by its declared type; one of another type (a recording, plain text) is left as it is. */
  const body = (contentType: string | undefined, bytes: Buffer): Buffer => {
    const type = (contentType ?? "").toLowerCase()
    if (type.startsWith("application/x-www-form-urlencoded")) return Buffer.from(formText(bytes.toString("latin1")), "latin1")
    if (type.includes("json")) {
      try {
        return Buffer.from(JSON.stringify(json(JSON.parse(bytes.toString("utf8")))))
      } catch {
        // not JSON after all: kept as sent (its secrets, if any, could not be found)
        return bytes
      }
    }
    if (type.startsWith("multipart/form-data")) {
      // a part's headers are ASCII: latin1 keeps every other byte (a file's) exactly
      const text = bytes.toString("latin1")
      const masked = text.replace(/(name="([^"]*)"[^\r\n]*\r\n(?:[^\r\n]+\r\n)*\r\n)([\s\S]*?)(\r\n--)/g, (whole, head: string, name: string, value: string, end: string) =>
        SECRET_PARAMS.has(name) ? `${head}${mask(Buffer.from(value, "latin1").toString("utf8"))}${end}` : whole
      )
      return masked === text ? bytes : Buffer.from(masked, "latin1")
    }
    return bytes
  }

  const headers = (h: Readonly<Record<string, string | ReadonlyArray<string> | number | undefined>>): Record<string, string> => {
    const out: Record<string, string> = {}
    for (const [name, value] of Object.entries(h)) {
      if (value === undefined) continue
      const text = Array.isArray(value) ? value.join(", ") : String(value)
      if (!SECRET_HEADERS.has(name.toLowerCase())) out[name] = text
      else {
        // the scheme stays readable: replay puts its own token after it
        const m = /^(\w+)\s+(.*)$/.exec(text)
        out[name] = m && name.toLowerCase().endsWith("authorization") ? `${m[1]} ${mask(m[2]!)}` : mask(text)
      }
    }
    return out
  }

  return { mask, formText, json, body, headers }
}

export type Redactor = ReturnType<typeof makeRedactor>

export const safeDecode = (s: string): string => {
  try {
    return decodeURIComponent(s.replace(/\+/g, " "))
  } catch {
    return s
  }
}
