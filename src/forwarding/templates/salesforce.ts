/**
 * Salesforce: each call becomes a completed Task (TaskSubtype Call) on the contact whose phone
 * fields hold the call's number, else on such a lead (SOSL `FIND … IN PHONE FIELDS`, which
 * matches however the number is formatted there). The token is the target's `auth` (OAuth2,
 * e.g. a connected app's client credentials at …/services/oauth2/token).
 */
import { Effect, Schema } from "effect"
import { outcomeOfAnswer } from "../Decisions.js"
import { Skipped, type Template } from "./Template.js"

const ok = (status: number) => status >= 200 && status < 300
/** SOSL's reserved characters, escaped in a FIND term */
const soslTerm = (text: string) => text.replace(/[?&|!{}[\]()^~*:\\"'+-]/g, (c) => `\\${c}`)

export const salesforce: Template = {
  name: "salesforce",
  title: "Salesforce (call Tasks on contacts and leads)",
  description:
    "Creates a completed call Task for each call event on the contact found by phone (any phone field, however formatted), else on the lead; none found: a Task on nobody, or skipped with settings.unmatched \"skip\". Needs auth (OAuth2; a connected app's client credentials).",
  url: {
    description: "the org's instance address (My Domain)",
    example: "https://mycompany.my.salesforce.com",
    check: (url) => (url.search === "" ? undefined : "expected the instance's address, without a query")
  },
  settings: Schema.Struct({
    apiVersion: Schema.optionalWith(Schema.String.pipe(Schema.pattern(/^v\d+\.\d$/, { message: () => "expected a REST API version such as v60.0" })), { default: () => "v60.0" }),
    unmatched: Schema.optionalWith(Schema.Literal("unassociated", "skip"), { default: () => "unassociated" as const }),
    language: Schema.optionalWith(Schema.Literal("zh", "en"), { default: () => "zh" as const })
  }),
  needsAuth: true,
  transform: `(
    $m := data.memo;
    $inbound := data.peer = 2 or data.peer = 4;
    $phone := $string(data.phone ? data.phone : $m.cdrPhoneNum);
    {
      "phone": $phone,
      "task": {
        "Subject": $message.title & " " & $phone,
        "Status": "Completed",
        "TaskSubtype": "Call",
        "CallType": $inbound ? "Inbound" : "Outbound",
        "CallDurationInSeconds": $m.cdrTalktime ? $number($m.cdrTalktime) : 0,
        "CallObject": $m.cdrId ? $string($m.cdrId),
        "ActivityDate": $substring(occurredAt, 0, 10),
        "Description": $message.text
      }
    }
  )`,
  headers: { accept: "application/json" },
  deliver: ({ body, settings, call }) =>
    Effect.gen(function* () {
      const b = (typeof body === "object" && body !== null ? body : {}) as { phone?: unknown; task?: Record<string, unknown> }
      const phone = typeof b.phone === "string" ? b.phone.trim() : ""
      const api = `/services/data/${String(settings.apiVersion)}`
      let who: string | undefined
      if (phone !== "") {
        const q = `FIND {${soslTerm(phone)}} IN PHONE FIELDS RETURNING Contact(Id), Lead(Id)`
        const found = yield* call("GET", `${api}/search/?q=${encodeURIComponent(q)}`)
        if (!ok(found.status)) return found
        const records = (found.json as { searchRecords?: Array<{ Id?: unknown; attributes?: { type?: unknown } }> } | undefined)?.searchRecords ?? []
        const pick = records.find((r) => r.attributes?.type === "Contact") ?? records.find((r) => r.attributes?.type === "Lead")
        who = pick?.Id === undefined ? undefined : String(pick.Id)
      }
      if (who === undefined && settings.unmatched === "skip") return yield* Effect.fail(new Skipped({ message: `skipped: no Salesforce contact or lead has phone ${JSON.stringify(phone)}` }))
      return yield* call("POST", `${api}/sobjects/Task`, { ...b.task, ...(who === undefined ? {} : { WhoId: who }) })
    }),
  // the org's daily API limit (403 REQUEST_LIMIT_EXCEEDED) passes: tried again, not refused
  answer: (status, retryAfter, excerpt, now) =>
    status === 403 && excerpt.includes("REQUEST_LIMIT_EXCEEDED")
      ? { kind: "retry", status, error: "HTTP 403 REQUEST_LIMIT_EXCEEDED: the org's API limit", retryAfterMs: null }
      : outcomeOfAnswer(status, retryAfter, now),
  events: ["call.hangup", "call.recording"]
}
