/**
 * Combinators for contract parameters. Every value reaches us as text (query string,
 * urlencoded or multipart field), possibly repeated, so each parameter schema decodes
 * from `string | string[]`: scalars take the last value given (body after query), lists
 * take them all. Failures carry a message that names what was expected, which the
 * dispatcher prefixes with the parameter's name for the contract's -14 answer.
 */
import JSON5 from "json5"
import { isSafeNumber, parse as parseLossless } from "lossless-json"
import { ParseResult, Schema } from "effect"

/** What the HTTP layer hands to a params schema for one key. */
export const RawValue = Schema.Union(Schema.String, Schema.Array(Schema.String))
export type RawValue = typeof RawValue.Type
export type RawParams = Readonly<Record<string, RawValue>>

const lastOf = (v: RawValue): string => (typeof v === "string" ? v : (v[v.length - 1] ?? ""))

/** The problems of a failed decode, each at its dotted path ("" for the value as a whole). */
export const problemsOf = (error: ParseResult.ParseError): ReadonlyArray<{ readonly path: string; readonly message: string }> =>
  ParseResult.ArrayFormatter.formatErrorSync(error).map((issue) => ({ path: issue.path.map(String).join("."), message: issue.message }))

/** One parameter as a single text: the last value given (the body's after the query's), as every scalar schema reads it. */
export const single = (params: RawParams, key: string): string | undefined => {
  const v = params[key]
  return v === undefined ? undefined : lastOf(v)
}

/** A single text value (the last one when repeated). */
export const text = Schema.transform(RawValue, Schema.String, {
  strict: true,
  decode: lastOf,
  encode: (s) => s
})

/** Decodes one text value with `parse`; `undefined` means "not what was expected". */
const fromText = <A>(to: Schema.Schema<A>, what: string, parse: (s: string) => A | undefined) =>
  Schema.transformOrFail(Schema.String, to, {
    strict: true,
    decode: (s, _, ast) => {
      const v = parse(s.trim())
      return v === undefined
        ? ParseResult.fail(new ParseResult.Type(ast, s, `expected ${what}, got ${JSON.stringify(s)}`))
        : ParseResult.succeed(v)
    },
    encode: (v) => ParseResult.succeed(String(v))
  })

const parsed = <A>(to: Schema.Schema<A>, what: string, parse: (s: string) => A | undefined) =>
  Schema.compose(text, fromText(to, what, parse))

const INT = /^[+-]?\d{1,15}$/

/** An integer that fits a JavaScript number exactly. */
export const int = parsed(Schema.Number, "an integer", (s) => (INT.test(s) ? Number(s) : undefined))

/** An integer within [min, max]; the message says the range (answered as -14). */
export const intIn = (min: number, max: number) =>
  int.pipe(
    Schema.filter((n) => (n >= min && n <= max) || `expected an integer from ${min} to ${max}, got ${n}`)
  )

/** One of the listed integer codes (enumerations of the contract: 0/1, 1..7, …). */
export const intOneOf = (...allowed: ReadonlyArray<number>) =>
  int.pipe(Schema.filter((n) => allowed.includes(n) || `expected one of ${allowed.join(", ")}, got ${n}`))

/** A decimal number (coordinates, money). */
export const decimal = parsed(Schema.Number, "a number", (s) =>
  /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(s) ? Number(s) : undefined
)

/**
 * A 64-bit id issued by the bridge (or the platform). Ids the bridge issues stay below
 * 2^53, so they decode to numbers; anything larger is refused rather than rounded.
 */
export const id = parsed(Schema.Number, "a numeric id", (s) => {
  if (!/^\d{1,19}$/.test(s)) return undefined
  const n = Number(s)
  return Number.isSafeInteger(n) && n > 0 ? n : undefined
})

/** A 64-bit id from a device or the platform, kept as its decimal text (may exceed 2^53). */
export const idText = parsed(Schema.String, "a numeric id", (s) => (/^\d{1,20}$/.test(s) ? s : undefined))

/** Unix time in milliseconds. */
export const unixMs = parsed(Schema.Number, "Unix milliseconds", (s) =>
  /^\d{1,16}$/.test(s) ? Number(s) : undefined
)

const TRUE = new Set(["true", "1", "yes", "on"])
const FALSE = new Set(["false", "0", "no", "off"])
/** A boolean written as true/false, 1/0, yes/no or on/off. */
export const bool = parsed(Schema.Boolean, "true or false", (s) => {
  const l = s.toLowerCase()
  return TRUE.has(l) ? true : FALSE.has(l) ? false : undefined
})

const pad = (n: string) => n.padStart(2, "0")
const DATETIME = /^(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{1,2})(?::(\d{1,2}))?)?$/
/**
 * `yyyy-mm-dd hh:nn:ss` in the configured zone, normalised (zero-padded; a date alone
 * means midnight; seconds optional, as the contract's own examples write `2017-1-1` and
 * `2018-7-1 23:59`). Conversion to an instant needs the zone, so it happens in the handler.
 */
export const datetime = parsed(Schema.String, "a time as yyyy-mm-dd hh:nn:ss", (s) => datetimeOf(s))

/** `datetime`'s reading of one trimmed text (a push's memo has its own: `pushedInstant`, src/shared/Time.ts) */
const datetimeOf = (s: string): string | undefined => {
  const m = DATETIME.exec(s)
  if (!m) return undefined
  const [, y, mo, d, h = "0", mi = "0", se = "0"] = m
  const [Y, M, D, H, N, S] = [y, mo, d, h, mi, se].map(Number) as [number, number, number, number, number, number]
  if (M < 1 || M > 12 || D < 1 || D > 31 || H > 23 || N > 59 || S > 59) return undefined
  const probe = new Date(Date.UTC(Y, M - 1, D))
  if (probe.getUTCMonth() !== M - 1) return undefined
  return `${y}-${pad(mo!)}-${pad(d!)} ${pad(h)}:${pad(mi)}:${pad(se)}`
}

/** `yyyy-mm-dd` */
export const date = parsed(Schema.String, "a date as yyyy-mm-dd", (s) => {
  const m = /^(\d{4})-(\d{1,2})-(\d{1,2})$/.exec(s)
  if (!m) return undefined
  const probe = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])))
  if (probe.getUTCMonth() !== Number(m[2]) - 1 || probe.getUTCDate() !== Number(m[3])) return undefined
  return `${m[1]}-${pad(m[2]!)}-${pad(m[3]!)}`
})

/** A telephone number: digits with an optional leading +, 3 to 20 digits, inner spaces and dashes dropped. */
const phoneText = (s: string) => {
  const n = s.replace(/[\s-]/g, "")
  return /^\+?\d{3,20}$/.test(n) ? n : undefined
}
export const phone = parsed(Schema.String, "a telephone number", phoneText)

/** A mobile number of mainland China (11 digits starting with 1), +86/0086 tolerated. */
export const mobile = parsed(Schema.String, "an 11-digit mobile number", (s) => {
  const n = s.replace(/[\s-]/g, "").replace(/^(\+86|0086)/, "")
  return /^1\d{10}$/.test(n) ? n : undefined
})

/** JSON embedded in a parameter: strict JSON or the relaxed JS-object form (`{status:0}`). */
export interface EmbeddedJson {
  readonly raw: string
  /** false when neither strict nor relaxed JSON parsed: the raw text is kept, never dropped */
  readonly parsed: boolean
  readonly value: unknown
}

/**
 * Limits on JSON we take in. Everything we store is serialised again later (JSON.stringify
 * and lossless-json recurse), so a value nested a few thousand levels deep, once stored,
 * would overflow the stack of every listing and delivery that touches it; no push or
 * parameter of the contract nests more than a handful of levels. The relaxed grammar
 * (JSON5) parses about 7 MB/s on the one thread, so it is only tried on text small enough
 * not to hold up the other requests; larger text must be strict JSON.
 */
export const JSON_LIMITS = { depth: 64, relaxedChars: 64 * 1024 } as const

/**
 * How deeply `text` nests objects and arrays, counting brackets outside strings (either
 * quote, as JSON5 allows) and comments, without parsing it: a linear scan, so no text can
 * overflow it. Stops counting once past `stopAt`.
 */
export const nestingOf = (text: string, stopAt = Number.POSITIVE_INFINITY): number => {
  let depth = 0
  let deepest = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 0x22 || c === 0x27) {
      // a string: up to the same quote, not an escaped one
      for (i++; i < text.length && text.charCodeAt(i) !== c; i++) if (text.charCodeAt(i) === 0x5c) i++
    } else if (c === 0x2f && text.charCodeAt(i + 1) === 0x2f) {
      const eol = text.indexOf("\n", i)
      i = eol < 0 ? text.length : eol
    } else if (c === 0x2f && text.charCodeAt(i + 1) === 0x2a) {
      const close = text.indexOf("*/", i + 2)
      i = close < 0 ? text.length : close + 1
    } else if (c === 0x7b || c === 0x5b) {
      depth++
      if (depth > deepest) deepest = depth
      if (deepest > stopAt) return deepest
    } else if (c === 0x7d || c === 0x5d) depth = Math.max(0, depth - 1)
  }
  return deepest
}

/** Why `text` is refused before any parser sees it, or undefined. */
export const jsonTooDeep = (text: string, depth: number = JSON_LIMITS.depth) =>
  nestingOf(text, depth) > depth ? `nested deeper than ${depth} levels` : undefined

/**
 * JSON.parse, except that an integer too large for a double (a 19-digit id) is kept exactly,
 * as its digits in a string, rather than rounded. Only text with such a run of digits pays
 * for the slower parser. lossless-json recurses: callers bound the depth first (jsonTooDeep).
 */
export const parseJsonExact = (text: string): unknown => {
  // a number value of 16+ digits (not digits inside a string: an ID-card number in a field)
  if (!/[:,[]\s*-?\d{16}/.test(text)) return JSON.parse(text)
  try {
    return parseLossless(text, null, (digits) => (/^-?\d+$/.test(digits) && !isSafeNumber(digits) ? digits : Number(digits)))
  } catch {
    // lossless-json refuses what JSON.parse takes (a key given twice): the usual parse then
    return JSON.parse(text)
  }
}

/**
 * Strict JSON, else relaxed, else the raw text kept and said so. Text nested deeper than the
 * limit is not parsed at all (kept raw): the `json` parameter refuses it before it gets here.
 */
export const parseEmbeddedJson = (raw: string): EmbeddedJson => {
  if (jsonTooDeep(raw) !== undefined) return { raw, parsed: false, value: undefined }
  const parsers = raw.length <= JSON_LIMITS.relaxedChars ? [parseJsonExact, JSON5.parse] : [parseJsonExact]
  for (const parse of parsers) {
    try {
      return { raw, parsed: true, value: parse(raw) }
    } catch {
      // try the next, more relaxed, grammar; failing both is reported through `parsed`
    }
  }
  return { raw, parsed: false, value: undefined }
}
export const EmbeddedJsonSchema = Schema.Struct({
  raw: Schema.String,
  parsed: Schema.Boolean,
  value: Schema.Unknown
})
/** An embedded JSON parameter; one nested too deeply is refused (-14), a permanent answer a sender must not retry. */
export const json = Schema.transformOrFail(text, EmbeddedJsonSchema, {
  strict: true,
  decode: (raw, _, ast) => {
    const problem = jsonTooDeep(raw)
    return problem === undefined ? ParseResult.succeed(parseEmbeddedJson(raw)) : ParseResult.fail(new ParseResult.Type(ast, raw, problem))
  },
  encode: (j) => ParseResult.succeed(j.raw)
})

/**
 * Marks a check whose failure means "over a maximum": answered -12, not -14 (the request is
 * well-formed, it just asks for more than the bridge takes at once).
 */
export const OverMaximumId: unique symbol = Symbol.for("voip-bridge/OverMaximum")

/**
 * Most values a list parameter takes. Lists end up as SQL parameters (SQLite takes at most
 * 32,766 in one statement) and as work per item: a thousand is far above any screen's
 * selection and far below both.
 */
export const MAX_LIST_ITEMS = 1000

const atMostListItems = <I>(self: Schema.Schema<ReadonlyArray<string>, I>) =>
  self.pipe(
    Schema.filter((v) => v.length <= MAX_LIST_ITEMS || `expected at most ${MAX_LIST_ITEMS} values, got ${v.length}`, { schemaId: OverMaximumId })
  )

/** A list given as repeats or indexed keys (`cpPhone[0]`, `cpPhone[1]`). */
export const list = <A>(item: Schema.Schema<A, string>) =>
  Schema.compose(
    Schema.transform(RawValue, Schema.Array(Schema.String), {
      strict: true,
      decode: (v) => (typeof v === "string" ? [v] : v),
      encode: (v) => v
    }).pipe(atMostListItems),
    Schema.Array(item)
  )

/**
 * A comma-separated list in one value (`13002300000, 13002300001`); ASCII and full-width
 * commas, surrounding spaces ignored, empty items dropped, duplicates removed in order.
 */
export const commaList = <A>(item: Schema.Schema<A, string>) =>
  Schema.compose(
    Schema.transform(text, Schema.Array(Schema.String), {
      strict: true,
      decode: (s) => [...new Set(s.split(/[,，;；\s]+/).map((x) => x.trim()).filter((x) => x !== ""))],
      encode: (v) => v.join(",")
    }).pipe(
      Schema.filter((v) => v.length > 0 || "expected at least one value"),
      atMostListItems
    ),
    Schema.Array(item)
  )

/** Item schemas for `list`/`commaList` (they decode a single string). */
export const item = {
  phone: fromText(Schema.String, "a telephone number", phoneText),
  extension: fromText(Schema.String, "an extension number", (s) => (/^\d{4,20}$/.test(s) ? s : undefined)),
  int: fromText(Schema.Number, "an integer", (s) => (INT.test(s) ? Number(s) : undefined)),
  text: Schema.String
}

/** One extension number (坐席号), e.g. 100008800. */
export const extension = Schema.compose(text, item.extension)

/** Text bounded in length where the contract calls a longer one "too much" (-12, not -14), e.g. an SMS of more than 70 characters. */
export const textAtMost = (max: number) =>
  text.pipe(Schema.filter((s) => s.length <= max || `expected at most ${max} characters, got ${s.length}`, { schemaId: OverMaximumId }))

/** Text bounded in length (characters), the message saying the bound. */
export const textMax = (max: number) =>
  text.pipe(Schema.filter((s) => s.length <= max || `expected at most ${max} characters, got ${s.length}`))

/** Annotates a parameter or result field with the contract's own description. */
export const doc =
  (description: string) =>
  <S extends Schema.Schema.All>(schema: S): S =>
    schema.annotations({ description }) as S

/**
 * How a parameter looks on the wire, for the documentation: a text parameter's schema says only
 * "a string" once decoded, so a check it makes (a pattern, a set of values) is stated here.
 */
export const SentAsId: unique symbol = Symbol.for("voip-bridge/SentAs")
export const sentAs =
  (wire: Readonly<Record<string, unknown>>) =>
  <S extends Schema.Schema.All>(schema: S): S =>
    schema.annotations({ [SentAsId]: wire }) as S

/** 0 … N−1 (tail-recursive, so N up to ~1000 type-checks). */
type Below<N extends number, Acc extends ReadonlyArray<number> = []> = Acc["length"] extends N ? Acc[number] : Below<N, [...Acc, Acc["length"]]>
/** 1 … N, the numbers of the contract's numbered fields (`woOther1`…`woOther50`, `woStep1Time`…). */
export type UpTo<N extends number> = Exclude<Below<N>, 0> | N

/**
 * Fields `${prefix}1${suffix}` … `${prefix}${count}${suffix}`, generated rather than written
 * out, yet typed key by key so handlers see `woOther7`, not an index signature.
 */
export const numbered = <const Prefix extends string, const N extends number, const Suffix extends string, F extends Schema.Struct.Field>(
  prefix: Prefix,
  count: N,
  suffix: Suffix,
  field: (n: number) => F
) =>
  Object.fromEntries(Array.from({ length: count }, (_, i) => [`${prefix}${i + 1}${suffix}`, field(i + 1)])) as {
    readonly [K in `${Prefix}${UpTo<N>}${Suffix}`]: F
  }
