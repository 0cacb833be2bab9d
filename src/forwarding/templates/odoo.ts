/**
 * Odoo: each call becomes a CRM lead (`crm.lead`) through JSON-RPC `execute_kw`, linked to the
 * contact (`res.partner`) whose phone or mobile is the call's number as written there. The
 * target's `secret` is the user's API key; settings name the database and the login.
 */
import { Effect, Schema } from "effect"
import { outcomeOfAnswer } from "../Decisions.js"
import type { Answer } from "../Send.js"
import type { Template } from "./Template.js"

const ok = (status: number) => status >= 200 && status < 300
const rpc = (service: string, method: string, args: ReadonlyArray<unknown>) => ({ jsonrpc: "2.0", method: "call", id: Date.now(), params: { service, method, args } })
/** Odoo errors that pass (a concurrent update, the database busy): tried again */
const TRANSIENT = /ConcurrencyError|SerializationFailure|OperationalError|could not serialize/

export const odoo: Template = {
  name: "odoo",
  title: "Odoo (CRM leads)",
  description:
    "Creates a crm.lead for each call event, linked to the contact (res.partner) whose phone or mobile is the call's number as written in Odoo. secret: the user's API key; settings.database and settings.login.",
  url: {
    description: "the Odoo server's address (JSON-RPC at /jsonrpc)",
    example: "https://mycompany.odoo.com",
    check: (url) => (url.search === "" ? undefined : "expected the server's address, without a query")
  },
  secret: { description: "the user's API key", required: true, check: (secret) => (secret.trim() === "" ? "expected the user's API key" : undefined) },
  settings: Schema.Struct({
    database: Schema.String.pipe(Schema.minLength(1)),
    login: Schema.String.pipe(Schema.minLength(1)),
    language: Schema.optionalWith(Schema.Literal("zh", "en"), { default: () => "zh" as const })
  }),
  transform: `(
    $m := data.memo;
    $phone := $string(data.phone ? data.phone : $m.cdrPhoneNum);
    {"phone": $phone, "lead": {"name": $message.title & " " & $phone, "phone": $phone, "type": "lead", "description": $message.text}}
  )`,
  deliver: ({ body, settings, secret: key, call }) =>
    Effect.gen(function* () {
      const b = (typeof body === "object" && body !== null ? body : {}) as { phone?: unknown; lead?: Record<string, unknown> }
      const phone = typeof b.phone === "string" ? b.phone.trim() : ""
      const db = String(settings.database)
      const secret = key ?? ""
      const login = yield* call("POST", "/jsonrpc", rpc("common", "login", [db, settings.login, secret]))
      const uid = (login.json as { result?: unknown } | undefined)?.result
      if (!ok(login.status) || typeof uid !== "number") {
        if (!ok(login.status) || (login.json as { error?: unknown } | undefined)?.error) return login
        // Odoo answers a refused login with `false`, not an error: told as the AccessDenied it means
        return { ...login, excerpt: JSON.stringify({ error: { message: "Access Denied", data: { name: "odoo.exceptions.AccessDenied", message: "login refused: wrong database, login or API key" } } }) } satisfies Answer
      }
      const kw = (model: string, method: string, args: ReadonlyArray<unknown>, options: Record<string, unknown> = {}) =>
        call("POST", "/jsonrpc", rpc("object", "execute_kw", [db, uid, secret, model, method, args, options]))
      let partner: number | undefined
      if (phone !== "") {
        const found = yield* kw("res.partner", "search_read", [["|", ["phone", "=", phone], ["mobile", "=", phone]]], { fields: ["id"], limit: 1 })
        const result = (found.json as { result?: Array<{ id?: unknown }>; error?: unknown } | undefined)
        if (!ok(found.status) || result?.error) return found
        partner = typeof result?.result?.[0]?.id === "number" ? result.result[0].id : undefined
      }
      return yield* kw("crm.lead", "create", [{ ...b.lead, ...(partner === undefined ? {} : { partner_id: partner }) }])
    }),
  // JSON-RPC answers HTTP 200 with `error` in the body when Odoo refuses
  answer: (status, retryAfter, excerpt, now) => {
    if (!ok(status)) return outcomeOfAnswer(status, retryAfter, now)
    let body: { error?: { message?: unknown; data?: { name?: unknown; message?: unknown } }; result?: unknown } | undefined
    try {
      body = JSON.parse(excerpt) as typeof body
    } catch {
      body = undefined
    }
    if (body?.error) {
      const error = `${String(body.error.data?.name ?? "error")}: ${String(body.error.data?.message ?? body.error.message ?? "")}`
      return TRANSIENT.test(error) ? { kind: "retry", status, error, retryAfterMs: null } : { kind: "refused", status, error }
    }
    return body && "result" in body ? { kind: "delivered", status } : { kind: "retry", status, error: `HTTP ${status} without result or error: not Odoo's answer`, retryAfterMs: null }
  },
  events: ["call.hangup", "call.recording"]
}
