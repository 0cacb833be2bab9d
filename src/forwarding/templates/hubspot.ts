/**
 * HubSpot: each call becomes a call engagement (`POST /crm/v3/objects/calls`) with its
 * direction, duration, status, numbers and recording link, associated with the contact whose
 * `phone` or `mobilephone` is the call's number (`POST /crm/v3/objects/contacts/search`).
 * The target's `secret` is a private app's access token (scopes crm.objects.contacts.read,
 * crm.objects.contacts.write), sent as a bearer token.
 */
import { Effect, Schema } from "effect"
import { Skipped, type Template } from "./Template.js"

/** HubSpot's own association type: a call to a contact. */
const CALL_TO_CONTACT = 194

const ok = (status: number) => status >= 200 && status < 300

export const hubspot: Template = {
  name: "hubspot",
  title: "HubSpot (calls on contacts)",
  description:
    "Creates a call engagement for each call event (call.hangup, or call.recording for the recording link), associated with the contact found by phone (phone or mobilephone, as written in HubSpot). No contact: the call is logged unassociated, or skipped with settings.unmatched \"skip\". secret: a private app's access token.",
  url: {
    description: "HubSpot's API base (another for a test stand-in)",
    example: "https://api.hubapi.com",
    check: (url) => (url.search === "" ? undefined : "expected the API's base address, without a query")
  },
  secret: {
    description: "a private app's access token (pat-…)",
    required: true,
    check: (secret) => (/^\S+$/.test(secret) ? undefined : "expected a private app's access token")
  },
  settings: Schema.Struct({
    /** what becomes of a call whose number no contact has */
    unmatched: Schema.optionalWith(Schema.Literal("unassociated", "skip"), { default: () => "unassociated" as const }),
    /** where the bridge's recordings are reachable, e.g. https://bridge.example.com/voip/record/ */
    recordingBaseUrl: Schema.optional(Schema.String.pipe(Schema.pattern(/^https?:\/\//, { message: () => "expected an http(s) URL" })))
  }),
  transform: `(
    $m := data.memo;
    $inbound := data.peer = 2 or data.peer = 4;
    $phone := $string(data.phone ? data.phone : $m.cdrPhoneNum);
    $talk := $m.cdrTalktime ? $number($m.cdrTalktime) : 0;
    {
      "phone": $phone,
      "properties": {
        "hs_timestamp": occurredAt,
        "hs_call_title": ($inbound ? "Inbound call " : "Outbound call ") & $phone,
        "hs_call_direction": $inbound ? "INBOUND" : "OUTBOUND",
        "hs_call_status": $talk > 0 ? "COMPLETED" : "NO_ANSWER",
        "hs_call_duration": $string($talk * 1000),
        "hs_call_from_number": $inbound ? $phone : $string($m.cdrExtension),
        "hs_call_to_number": $inbound ? $string($m.cdrExtension) : $phone,
        "hs_call_body": $join([$m.exteName ? "Extension " & $m.cdrExtension & " " & $m.exteName, $m.cdrHangupReasonText], "; "),
        "hs_call_recording_url": $m.cdrRecordFile and $settings.recordingBaseUrl ? $settings.recordingBaseUrl & $m.cdrRecordFile
      }
    }
  )`,
  headers: { accept: "application/json" },
  sign: (request, secret) => ({ ...request, headers: { ...request.headers, authorization: `Bearer ${secret}` } }),
  deliver: ({ body, settings, call }) =>
    Effect.gen(function* () {
      const b = (typeof body === "object" && body !== null ? body : {}) as { phone?: unknown; properties?: unknown }
      const phone = typeof b.phone === "string" ? b.phone.trim() : ""
      let contact: string | undefined
      if (phone !== "") {
        const byPhone = (property: string) => ({ filters: [{ propertyName: property, operator: "EQ", value: phone }] })
        const found = yield* call("POST", "/crm/v3/objects/contacts/search", { filterGroups: [byPhone("phone"), byPhone("mobilephone")], properties: ["phone", "mobilephone"], limit: 1 })
        if (!ok(found.status)) return found
        const results = (found.json as { results?: Array<{ id?: unknown }> } | undefined)?.results
        contact = results?.[0]?.id === undefined ? undefined : String(results[0].id)
      }
      if (contact === undefined && settings.unmatched === "skip") return yield* Effect.fail(new Skipped({ message: `skipped: no HubSpot contact has phone ${JSON.stringify(phone)}` }))
      return yield* call("POST", "/crm/v3/objects/calls", {
        properties: b.properties,
        ...(contact === undefined ? {} : { associations: [{ to: { id: contact }, types: [{ associationCategory: "HUBSPOT_DEFINED", associationTypeId: CALL_TO_CONTACT }] }] })
      })
    }),
  events: ["call.hangup", "call.recording"]
}
