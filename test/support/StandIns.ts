/**
 * Local stand-ins for the destinations the templates speak to: each checks a request the way
 * the real service does (its path and key, its signature and timestamp window, its required
 * fields, a bearer token) and answers as the real one does, in-body error codes included.
 * Built on the loopback receiver: `received` has every request, `setAnswer` overrides.
 */
import { createHmac } from "node:crypto"
import { type Answer, type Received, startReceiver } from "./Receiver.js"

const json = (body: unknown, status = 200): Answer => ({ status, headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
const parse = (body: string): Record<string, unknown> | undefined => {
  try {
    const v: unknown = JSON.parse(body)
    return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}
const obj = (u: unknown) => (typeof u === "object" && u !== null ? (u as Record<string, unknown>) : {})
const HOUR = 3_600_000

/** DingTalk's custom robot: access_token, 加签 (timestamp ms within an hour, sign), msgtype with its fields. */
export const dingtalkCheck = (token: string, secret: string | undefined) => (r: Received): Answer => {
  const u = new URL(r.url, "http://x")
  if (u.pathname !== "/robot/send") return { status: 404 }
  if (u.searchParams.get("access_token") !== token) return json({ errcode: 300001, errmsg: "token is not exist" })
  if (secret !== undefined) {
    const timestamp = Number(u.searchParams.get("timestamp"))
    if (!Number.isFinite(timestamp) || Math.abs(Date.now() - timestamp) > HOUR) return json({ errcode: 310000, errmsg: "sign not match, more: [timestamp is invalid]" })
    const expected = createHmac("sha256", secret).update(`${timestamp}\n${secret}`).digest("base64")
    if (u.searchParams.get("sign") !== expected) return json({ errcode: 310000, errmsg: "sign not match" })
  }
  const body = parse(r.body)
  if (!body) return json({ errcode: 40035, errmsg: "缺少参数 json" })
  if (body.msgtype === "text" && typeof obj(body.text).content === "string") return json({ errcode: 0, errmsg: "ok" })
  if (body.msgtype === "markdown" && typeof obj(body.markdown).title === "string" && typeof obj(body.markdown).text === "string") return json({ errcode: 0, errmsg: "ok" })
  return json({ errcode: 40035, errmsg: "缺少参数 text" })
}

/** Feishu's custom bot: the hook id, 签名校验 in the body (timestamp seconds within an hour, sign), msg_type with its content. */
export const feishuCheck = (hook: string, secret: string | undefined) => (r: Received): Answer => {
  const u = new URL(r.url, "http://x")
  if (u.pathname !== `/open-apis/bot/v2/hook/${hook}`) return json({ code: 19001, msg: "param invalid: incoming webhook access token invalid" }, 400)
  const body = parse(r.body)
  if (!body) return json({ code: 9499, msg: "Bad Request" }, 400)
  if (secret !== undefined) {
    const seconds = Number(body.timestamp)
    if (!Number.isFinite(seconds) || Math.abs(Date.now() - seconds * 1000) > HOUR || typeof body.sign !== "string") return json({ code: 19021, msg: "sign match fail or timestamp is not within one hour from current time" })
    const expected = createHmac("sha256", `${body.timestamp}\n${secret}`).update("").digest("base64")
    if (body.sign !== expected) return json({ code: 19021, msg: "sign match fail or timestamp is not within one hour from current time" })
  }
  if (body.msg_type === "text" && typeof obj(body.content).text === "string") return json({ code: 0, data: {}, msg: "success" })
  if (body.msg_type === "interactive" && Array.isArray(obj(body.card).elements)) return json({ code: 0, data: {}, msg: "success" })
  return json({ code: 19002, msg: "params error, msg_type need" })
}

/** WeCom's group robot: key, msgtype with its fields. */
export const wecomCheck = (key: string) => (r: Received): Answer => {
  const u = new URL(r.url, "http://x")
  if (u.pathname !== "/cgi-bin/webhook/send" || u.searchParams.get("key") !== key) return json({ errcode: 93000, errmsg: "invalid webhook url" })
  const body = parse(r.body)
  if (!body) return json({ errcode: 40058, errmsg: "invalid json" })
  if (body.msgtype === "text") return typeof obj(body.text).content === "string" && obj(body.text).content !== "" ? json({ errcode: 0, errmsg: "ok" }) : json({ errcode: 44004, errmsg: "empty content" })
  if (body.msgtype === "markdown") return typeof obj(body.markdown).content === "string" ? json({ errcode: 0, errmsg: "ok" }) : json({ errcode: 44004, errmsg: "empty content" })
  return json({ errcode: 40008, errmsg: "invalid message type" })
}

/** Slack's incoming webhook: the webhook's path, a text; answers in the status and a word. */
export const slackCheck = (path: string) => (r: Received): Answer => {
  if (new URL(r.url, "http://x").pathname !== path) return { status: 404, body: "no_service" }
  const body = parse(r.body)
  if (!body) return { status: 400, body: "invalid_payload" }
  if (typeof body.text !== "string" || body.text === "") return { status: 400, body: "no_text" }
  return { status: 200, body: "ok" }
}

/** A stand-in on loopback: its base URL (no path) besides the receiver's. */
export const startStandIn = async (check: (r: Received) => Answer) => {
  const rx = await startReceiver(check)
  return { ...rx, base: rx.url.replace(/\/hook$/, "") }
}

/**
 * An OAuth2 token endpoint (client credentials and refresh tokens) and the API it guards:
 * tokens it issued and has not revoked open the API, others get 401.
 */
export const startOAuth = async (
  options: { readonly clientId: string; readonly clientSecret: string; readonly refreshToken?: string; readonly expiresIn?: number },
  /** the guarded API's answer to a request with a valid token */
  guarded: (r: Received) => Answer = () => json({ id: "1" }, 201),
  /** its answer without one */
  unauthorized: Answer = json({ error: "invalid_token" }, 401)
) => {
  let issued = 0
  const valid = new Set<string>()
  const refreshTokens = new Set(options.refreshToken ? [options.refreshToken] : [])
  const tokenEndpoint = await startStandIn((r) => {
    const form = new URLSearchParams(r.body)
    const basic = /^Basic (.+)$/.exec(String(r.headers.authorization ?? ""))?.[1]
    const [id, secret] = basic ? Buffer.from(basic, "base64").toString().split(":").map(decodeURIComponent) : [form.get("client_id"), form.get("client_secret")]
    if (id !== options.clientId || (form.get("grant_type") === "client_credentials" && secret !== options.clientSecret)) return json({ error: "invalid_client", error_description: "client authentication failed" }, 401)
    if (form.get("grant_type") === "refresh_token") {
      const refresh = form.get("refresh_token") ?? ""
      if (!refreshTokens.has(refresh)) return json({ error: "invalid_grant", error_description: "refresh token expired or revoked" }, 400)
    } else if (form.get("grant_type") !== "client_credentials") return json({ error: "unsupported_grant_type" }, 400)
    const token = `tok-${++issued}-${Math.random().toString(36).slice(2)}`
    valid.add(token)
    return json({ access_token: token, token_type: "Bearer", ...(options.expiresIn !== undefined ? { expires_in: options.expiresIn } : {}) })
  })
  const api = await startStandIn((r) => {
    const token = /^Bearer (.+)$/.exec(String(r.headers.authorization ?? ""))?.[1]
    return token && valid.has(token) ? guarded(r) : unauthorized
  })
  return {
    tokenEndpoint,
    api,
    issued: () => issued,
    tokens: () => [...valid],
    revokeAll: () => valid.clear(),
    revokeRefresh: () => refreshTokens.clear(),
    close: async () => {
      await tokenEndpoint.close()
      await api.close()
    }
  }
}

/** HubSpot's CRM API: a private app token, the contacts search (EQ on phone properties), call engagements with their associations. */
export const startHubSpot = async (token: string, contacts: ReadonlyArray<{ readonly id: string; readonly phone?: string; readonly mobilephone?: string }>) => {
  const calls: Array<{ id: string; properties: Record<string, unknown>; associations: Array<unknown> }> = []
  const error = (status: number, category: string, message: string) => json({ status: "error", message, correlationId: "00000000-0000-0000-0000-000000000000", category }, status)
  const answer = (r: Received): Answer => {
    if (r.headers.authorization !== `Bearer ${token}`) return error(401, "INVALID_AUTHENTICATION", "Authentication credentials not found.")
    const body = parse(r.body)
    const { pathname } = new URL(r.url, "http://x")
    if (r.method === "POST" && pathname === "/crm/v3/objects/contacts/search") {
      const groups = body?.filterGroups
      if (!Array.isArray(groups)) return error(400, "VALIDATION_ERROR", "filterGroups is required")
      const matches = (c: Record<string, unknown>) =>
        groups.some((g) => (obj(g).filters as Array<Record<string, unknown>>).every((f) => f.operator === "EQ" && c[String(f.propertyName)] === f.value))
      const results = contacts.filter((c) => matches(c)).map((c) => ({ id: c.id, properties: { phone: c.phone ?? null, mobilephone: c.mobilephone ?? null }, archived: false }))
      return json({ total: results.length, results: results.slice(0, Number(body?.limit ?? 10)) })
    }
    if (r.method === "POST" && pathname === "/crm/v3/objects/calls") {
      const properties = obj(body?.properties)
      if (typeof properties.hs_timestamp !== "string") return error(400, "VALIDATION_ERROR", "Property values were not valid: hs_timestamp is required")
      const associations = Array.isArray(body?.associations) ? (body.associations as Array<Record<string, unknown>>) : []
      for (const a of associations) {
        const types = obj(a).types as Array<Record<string, unknown>>
        if (!contacts.some((c) => c.id === obj(a.to).id) || types?.[0]?.associationTypeId !== 194) return error(400, "VALIDATION_ERROR", "One or more associations are invalid")
      }
      const id = String(70000 + calls.length)
      calls.push({ id, properties, associations })
      return json({ id, properties, createdAt: new Date().toISOString(), archived: false }, 201)
    }
    return error(404, "OBJECT_NOT_FOUND", "not found")
  }
  const standIn = await startStandIn(answer)
  return { ...standIn, calls, answer }
}

/**
 * Salesforce's REST API behind its OAuth2 token endpoint: SOSL phone search over contacts and
 * leads (digits compared, however the number is formatted), Tasks created with their WhoId.
 */
export const startSalesforce = async (records: ReadonlyArray<{ readonly Id: string; readonly type: "Contact" | "Lead"; readonly Phone: string }>) => {
  const tasks: Array<Record<string, unknown>> = []
  const digits = (s: string) => s.replace(/\D/g, "")
  const sf = await startOAuth(
    { clientId: "sf-client", clientSecret: "sf-secret", expiresIn: 7200 },
    (r) => {
      const u = new URL(r.url, "http://x")
      if (r.method === "GET" && u.pathname === "/services/data/v60.0/search/") {
        const q = u.searchParams.get("q") ?? ""
        const m = /^FIND \{(.*)\} IN PHONE FIELDS RETURNING Contact\(Id\), Lead\(Id\)$/.exec(q)
        if (!m) return json([{ message: "MALFORMED_SEARCH", errorCode: "MALFORMED_SEARCH" }], 400)
        const term = digits(m[1]!.replace(/\\(.)/g, "$1"))
        return json({ searchRecords: records.filter((x) => digits(x.Phone) === term).map((x) => ({ attributes: { type: x.type, url: `/services/data/v60.0/sobjects/${x.type}/${x.Id}` }, Id: x.Id })) })
      }
      if (r.method === "POST" && u.pathname === "/services/data/v60.0/sobjects/Task") {
        const task = parse(r.body) ?? {}
        if (task.WhoId !== undefined && !records.some((x) => x.Id === task.WhoId)) return json([{ message: "id value of incorrect type", errorCode: "MALFORMED_ID", fields: ["WhoId"] }], 400)
        if (typeof task.Subject !== "string" || task.Status !== "Completed") return json([{ message: "Required fields are missing: [Subject]", errorCode: "REQUIRED_FIELD_MISSING", fields: ["Subject"] }], 400)
        const id = `00T${String(tasks.length).padStart(15, "0")}`
        tasks.push({ Id: id, ...task })
        return json({ id, success: true, errors: [] }, 201)
      }
      return json([{ errorCode: "NOT_FOUND", message: "The requested resource does not exist" }], 404)
    },
    json([{ message: "Session expired or invalid", errorCode: "INVALID_SESSION_ID" }], 401)
  )
  return { ...sf, tasks }
}

/** Odoo's JSON-RPC: common.login (false when refused), execute_kw on res.partner and crm.lead; refusals as `error` in an HTTP 200. */
export const startOdoo = async (db: string, login: string, key: string, partners: ReadonlyArray<{ readonly id: number; readonly phone?: string; readonly mobile?: string }>) => {
  const leads: Array<Record<string, unknown>> = []
  const reply = (id: unknown, result: unknown) => json({ jsonrpc: "2.0", id, result })
  const fault = (id: unknown, name: string, message: string) => json({ jsonrpc: "2.0", id, error: { code: 200, message: "Odoo Server Error", data: { name, message, arguments: [message] } } })
  const answer = (r: Received): Answer => {
    if (new URL(r.url, "http://x").pathname !== "/jsonrpc") return { status: 404 }
    const body = parse(r.body)
    const params = obj(body?.params)
    const args = Array.isArray(params.args) ? (params.args as Array<unknown>) : []
    if (params.service === "common" && params.method === "login") return reply(body?.id, args[0] === db && args[1] === login && args[2] === key ? 2 : false)
    if (params.service !== "object" || params.method !== "execute_kw") return fault(body?.id, "builtins.KeyError", "unknown method")
    if (args[0] !== db || args[1] !== 2 || args[2] !== key) return fault(body?.id, "odoo.exceptions.AccessDenied", "Access Denied")
    const [model, method, positional] = [args[3], args[4], args[5] as Array<unknown>]
    if (model === "res.partner" && method === "search_read") {
      const domain = positional[0] as Array<unknown>
      const wanted = (domain[1] as Array<unknown>)[2]
      return reply(body?.id, partners.filter((p) => p.phone === wanted || p.mobile === wanted).map((p) => ({ id: p.id })))
    }
    if (model === "crm.lead" && method === "create") {
      const values = obj(positional[0])
      if (typeof values.name !== "string" || values.name === "") return fault(body?.id, "odoo.exceptions.ValidationError", "The field 'name' is required")
      leads.push(values)
      return reply(body?.id, 100 + leads.length)
    }
    return fault(body?.id, "odoo.exceptions.AccessError", "not allowed")
  }
  const standIn = await startStandIn(answer)
  return { ...standIn, leads, answer }
}
