/**
 * A multipart/form-data body read as text (latin1, one character per byte) the way the bridge's
 * parser (busboy) reads the parts' headers: Content-Disposition found in any case, its
 * parameters by exact name in any case (`NAME=`, not `xname=`), quoted or not, `name*` decoded.
 * Capture redaction and replay's rewriting both read parts through here, so that a spelling the
 * bridge accepts is one that both see.
 */

/** Form decoding (`+` a space, percent escapes), the text as it was where an escape is invalid. */
export const safeDecode = (s: string): string => {
  try {
    return decodeURIComponent(s.replace(/\+/g, " "))
  } catch {
    return s
  }
}

export interface TextField {
  /** the part's name, as the bridge reads it */
  readonly name: string
  /** the part's value, decoded as UTF-8 */
  readonly value: string
  /** where the value's bytes start and end in the text */
  readonly start: number
  readonly end: number
}

const boundaryOf = (contentType: string): string | undefined => {
  const m = /boundary\s*=\s*(?:"([^"]+)"|([^;\s]+))/i.exec(contentType)
  return m?.[1] ?? m?.[2]
}

/** The part's name from its headers; undefined for a file, or a part without a name. */
const fieldName = (head: string): string | undefined => {
  const disposition = head.split("\r\n").find((line) => /^\s*content-disposition\s*:/i.test(line))
  if (!disposition) return undefined
  const params = new Map<string, string>()
  for (const p of disposition.matchAll(/;\s*([^\s=;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)/g)) {
    const raw = p[2]!.trim()
    params.set(p[1]!.toLowerCase(), raw.startsWith('"') ? raw.slice(1, -1).replace(/\\(.)/g, "$1") : raw)
  }
  if (params.has("filename") || params.has("filename*")) return undefined
  const extended = params.get("name*")
  return extended !== undefined ? safeDecode(extended.replace(/^[^']*'[^']*'/, "")) : params.get("name")
}

/** The body's named fields (files left out), in order. */
export const multipartFields = (contentType: string, text: string): Array<TextField> => {
  const boundary = boundaryOf(contentType)
  if (!boundary) return []
  const delimiter = `--${boundary}`
  const out: Array<TextField> = []
  for (let at = text.indexOf(delimiter); at >= 0; ) {
    const start = at + delimiter.length
    const next = text.indexOf(delimiter, start)
    const segment = text.slice(start, next < 0 ? text.length : next)
    at = next
    const headEnd = segment.indexOf("\r\n\r\n")
    if (headEnd < 0) continue
    const name = fieldName(segment.slice(0, headEnd))
    if (name === undefined) continue
    const body = segment.slice(headEnd + 4)
    const length = body.endsWith("\r\n") ? body.length - 2 : body.length
    const from = start + headEnd + 4
    out.push({ name, value: Buffer.from(body.slice(0, length), "latin1").toString("utf8"), start: from, end: from + length })
  }
  return out
}

/** The text with the fields `f` gives a value (UTF-8) replaced, every other byte as it was. */
export const rewriteMultipart = (contentType: string, text: string, f: (name: string, value: string) => string | undefined): string => {
  let out = ""
  let done = 0
  for (const field of multipartFields(contentType, text)) {
    const next = f(field.name, field.value)
    if (next === undefined) continue
    out += `${text.slice(done, field.start)}${Buffer.from(next, "utf8").toString("latin1")}`
    done = field.end
  }
  return done === 0 ? text : `${out}${text.slice(done)}`
}
