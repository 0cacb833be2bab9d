/**
 * The platform's pushes (§2.10.4, §2.12.9, §2.3.1). Answered `{"code":0,"message":"OK"}`
 * only once the event — and its deliveries and state change — is committed to disk; a
 * sender's retry (same natural key) is acknowledged again and stored once.
 */
import type { IncomingMessage } from "node:http"
import { Effect, Either } from "effect"
import { InvalidParam } from "../api/Errors.js"
import { coded, type Endpoint, endpoint, NO_PARAMS } from "../http/Endpoint.js"
import { type Collected, queryPairs, requestTarget } from "../http/Params.js"
import { ingest } from "./Ingest.js"
import { type Receiver, receivers, requestKey } from "./receivers.js"

/** the parameter that carries a receiver's shared token (or the X-Bridge-Token header) */
const TOKEN = "token"

/** The names the token arrives under: `token`, or an indexed `token[0]`/`token[]` that toRawParams reads as it. */
const isTokenName = (name: string) => name === TOKEN || (name.startsWith(`${TOKEN}[`) && /^\[\d*\]$/.test(name.slice(TOKEN.length)))

/**
 * `a=1&token=x&b=2` without the token, every other byte as it came. Each name is decoded as
 * the parameters were (`tok%65n`, `%74oken` and `token[]` are the token too).
 */
const withoutTokenParam = (text: string) =>
  text
    .split("&")
    .filter((part) => {
      for (const [name] of new URLSearchParams(part)) return !isTokenName(name)
      return true
    })
    .join("&")

const SPACE = new Set([" ", "\t", "\n", "\r"])
const skipSpace = (text: string, i: number) => {
  while (i < text.length && SPACE.has(text[i]!)) i++
  return i
}
/** The index after the string that opens at `i`, or -1 when it never closes. */
const stringEnd = (text: string, i: number) => {
  for (let j = i + 1; j < text.length; j++) {
    if (text[j] === "\\") j++
    else if (text[j] === '"') return j + 1
  }
  return -1
}

/**
 * The top-level members of a JSON object's text: each one's key, decoded (`"\u0074oken"` is
 * `token`), and where it starts and ends. Undefined when the text is not a JSON object.
 * Brackets are counted, not recursed into: the body's depth is bounded before, but this
 * scan needs no bound.
 */
const membersOf = (text: string) => {
  const members: Array<{ readonly key: string; readonly start: number; readonly end: number }> = []
  let i = skipSpace(text, 0)
  if (text[i] !== "{") return undefined
  i = skipSpace(text, i + 1)
  if (text[i] === "}") return members
  for (;;) {
    if (text[i] !== '"') return undefined
    const start = i
    const keyEnd = stringEnd(text, i)
    if (keyEnd < 0) return undefined
    const key: unknown = JSON.parse(text.slice(i, keyEnd))
    i = skipSpace(text, keyEnd)
    if (typeof key !== "string" || text[i] !== ":") return undefined
    let depth = 0
    for (i++; i < text.length; i++) {
      const c = text[i]
      if (c === '"') {
        const end = stringEnd(text, i)
        if (end < 0) return undefined
        i = end - 1
      } else if (c === "{" || c === "[") depth++
      else if (depth > 0 && (c === "}" || c === "]")) depth--
      else if (depth === 0 && (c === "," || c === "}")) break
    }
    let end = i
    while (end > start && SPACE.has(text[end - 1]!)) end--
    members.push({ key, start, end })
    if (text[i] === "}") return members
    if (text[i] !== ",") return undefined
    i = skipSpace(text, i + 1)
  }
}

/**
 * The JSON body without its top-level token members, however their key is spelt and however
 * often given; every other byte as it came (numbers keep their exact digits). Undefined when
 * that cannot be done.
 */
const withoutTokenMember = (text: string) => {
  const members = membersOf(text)
  if (members === undefined) return undefined
  const kept = members.filter((m) => !isTokenName(m.key))
  if (kept.length === members.length) return text
  // between two members kept, the separator that followed the first one as it came
  const after = (m: (typeof members)[number]) => text.slice(m.end, members[members.indexOf(m) + 1]!.start)
  return (
    text.slice(0, members[0]!.start) +
    kept.map((m, j) => text.slice(m.start, m.end) + (j < kept.length - 1 ? after(m) : "")).join("") +
    text.slice(members[members.length - 1]!.end)
  )
}

/** What is stored must not hold the token: what cannot be cleaned of it is refused, not stored. */
const tokenLeft = new InvalidParam({ param: TOKEN, problem: "the token could not be removed from the body; send it in the query or the X-Bridge-Token header" })

/** What is left of a JSON body still parses and has no member that reads as the token. */
const cleanJson = (text: string) => {
  try {
    JSON.parse(text)
  } catch {
    return false
  }
  return membersOf(text)?.every((m) => !isTokenName(m.key)) === true
}

/**
 * The request as received, so a passthrough can re-send the original bytes — less the
 * receiver's own `token`, which is ours and must not travel on to the targets. A multipart
 * body keeps its fields without the query's (the passthrough joins the two again).
 */
const rawOf = (req: IncomingMessage, collected: Collected, token: string | undefined): Either.Either<string, InvalidParam> => {
  const { pairs, bodyText } = collected
  const target = requestTarget(req.url ?? "")
  const query = target.includes("?") ? target.slice(target.indexOf("?") + 1) : ""
  const declared = req.headers["content-type"] ?? null
  // the body is kept as UTF-8 text (Collected.bodyText): its content type must say so
  const contentType = declared !== null && collected.charset !== "utf-8" ? declared.replace(/;\s*charset\s*=\s*("[^"]*"|[^\s;]*)/i, "; charset=utf-8") : declared
  if (token === undefined)
    return Either.right(JSON.stringify({ method: req.method, query, contentType, ...(bodyText !== undefined ? { body: bodyText } : { fields: pairs.slice(queryPairs(req.url ?? "").length) }) }))
  const cleanQuery = withoutTokenParam(query)
  let rest: { readonly body: string } | { readonly fields: ReadonlyArray<readonly [string, string]> }
  if (bodyText === undefined) rest = { fields: pairs.slice(queryPairs(req.url ?? "").length).filter(([k]) => !isTokenName(k)) }
  else if (/json/i.test(contentType ?? "")) {
    const stripped = withoutTokenMember(bodyText)
    if (stripped === undefined || !cleanJson(stripped)) return Either.left(tokenLeft)
    rest = { body: stripped }
  } else rest = { body: withoutTokenParam(bodyText) }
  // a token left in some other spelling (another parameter's value, a name we do not read as it) is still the secret
  const left = [cleanQuery, ...("body" in rest ? [rest.body] : rest.fields.flat())].some((text) => text.includes(token))
  return left ? Either.left(tokenLeft) : Either.right(JSON.stringify({ method: req.method, query: cleanQuery, contentType, ...rest }))
}

/** One endpoint per receiver: its path and guards (token, addresses) from config. */
const endpointFor = <A, I>(receiver: Receiver<A, I>) =>
  endpoint({
    id: `push_${receiver.name}`,
    summary: receiver.summary,
    tags: ["push"],
    paths: (config) => config.receive[receiver.name].path,
    methods: receiver.methods,
    auth: { kind: "token", token: (config) => config.receive[receiver.name].token },
    allowFrom: (config) => config.receive[receiver.name].allowFrom,
    body: { kind: "form" },
    params: receiver.schema,
    answer: coded(NO_PARAMS, "{code: 0} once stored; a coded failure otherwise"),
    handler: ({ req, config, params, collected }) => {
      const raw = rawOf(req, collected, config.receive[receiver.name].token)
      if (Either.isLeft(raw)) return Effect.fail(raw.left)
      return Effect.as(
        ingest(receiver, params, {
          raw: raw.right,
          source: `push:${receiver.name}`,
          fallbackKey: () => requestKey(collected.pairs.filter(([k]) => !isTokenName(k)), Date.now())
        }),
        {}
      )
    }
  })

export const endpoints: ReadonlyArray<Endpoint> = [endpointFor(receivers[0]), endpointFor(receivers[1]), endpointFor(receivers[2])]
