/**
 * What a target receives for an event: the json envelope, the platform's own wire format
 * (`800ing`), flat form fields, or whatever a JSONata `transform` makes of the envelope.
 */
import jsonata from "jsonata"
import { Effect, Either, Schema } from "effect"
import { jsonataMessage, settingsOf, type Target, templateOf } from "./Target.js"
import { type Language, messageOf } from "./templates/Messages.js"
import { Skipped } from "./templates/Template.js"

import { readStored } from "../db/StoredJson.js"
import type { StoredEvent } from "../events/Outbox.js"

export interface Request {
  readonly body: string
  readonly contentType: string
  /** the original request's query string, for the passthrough of a platform push */
  readonly query?: string
}

/** The request for a delivery cannot be made: it is a dead letter at once, with this reason. */
export class TransformFailed extends Schema.TaggedError<TransformFailed>()("TransformFailed", {
  message: Schema.String,
  reason: Schema.Literal("transform", "unsendable")
}) {}

/**
 * A transform runs on the event loop, between sends and pushes: one that loops or recurses
 * without end is stopped (JSONata's own guardrails) rather than freezing the bridge.
 */
export const TRANSFORM_LIMITS = { timeout: 250, stack: 500, sequence: 100_000 } as const

/** A stored event that cannot be read back can only fail again: a dead letter at once. */
const stored = (e: StoredEvent, column: "data" | "raw", text: string) =>
  Either.getOrThrowWith(readStored(text), (problem) => new TransformFailed({ message: `event ${e.id}'s stored ${column} cannot be read: ${problem}`, reason: "unsendable" }))

export const envelopeOf = (e: StoredEvent) => ({
  id: e.id,
  type: e.type,
  occurredAt: new Date(e.occurred_at).toISOString(),
  enterprise: e.enterprise,
  source: e.source,
  data: stored(e, "data", e.data),
  raw: e.raw === null ? null : stored(e, "raw", e.raw)
})

const flatten = (value: unknown, prefix: string, out: URLSearchParams) => {
  if (value === null || value === undefined) return
  if (typeof value === "object" && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out)
  } else if (Array.isArray(value)) value.forEach((v, i) => flatten(v, `${prefix}[${i}]`, out))
  else out.append(prefix, String(value))
}

const form = (fields: Record<string, unknown>) => {
  const out = new URLSearchParams()
  flatten(fields, "", out)
  return { body: out.toString(), contentType: "application/x-www-form-urlencoded" }
}

interface RawRequest {
  readonly query?: string
  readonly contentType?: string | null
  readonly body?: string
  readonly fields?: ReadonlyArray<readonly [string, string]>
}

/** §2.10.4 / §2.12.9 as the platform sends them: a platform push goes out as it came in. */
const platformFormat = (e: StoredEvent): Request => {
  const raw = e.raw === null ? undefined : (stored(e, "raw", e.raw) as RawRequest)
  if (raw && e.source.startsWith("push:")) {
    if (raw.body !== undefined && raw.body !== "") return { body: raw.body, contentType: raw.contentType ?? "application/x-www-form-urlencoded", ...(raw.query ? { query: raw.query } : {}) }
    const fields = new URLSearchParams(raw.query ?? "")
    for (const [k, v] of raw.fields ?? []) fields.append(k, v)
    return { body: fields.toString(), contentType: "application/x-www-form-urlencoded" }
  }
  const data = stored(e, "data", e.data) as Record<string, unknown>
  if (e.type.startsWith("call.")) {
    const fields = new URLSearchParams()
    fields.set("type", String(data.type ?? ""))
    fields.set("peer", String(data.peer ?? ""))
    fields.set("phone", String(data.phone ?? ""))
    fields.set("memo", data.memo ? JSON.stringify(data.memo) : String(data.memoRaw ?? ""))
    return { body: fields.toString(), contentType: "application/x-www-form-urlencoded" }
  }
  // §2.3.1: the platform calls a callbackUrl with the cbk* fields
  if (e.type.startsWith("workorder.") || e.type === "callback.status") return form(data)
  return { body: JSON.stringify(envelopeOf(e)), contentType: "application/json" }
}

const expressions = new Map<string, ReturnType<typeof jsonata>>()

/** What a template's transform (or the target's own, overriding it) is given besides the event: `$message`, `$settings`. */
const bindingsOf = (target: Target, e: StoredEvent, mobile: string | undefined): Effect.Effect<Record<string, unknown> | undefined, Skipped> => {
  if (!templateOf(target)) return Effect.succeed(undefined)
  const settings = settingsOf(target)
  const language: Language = settings.language === "en" ? "en" : "zh"
  const message = messageOf(envelopeOf(e), { language, mobile: settings.mention === true ? mobile : undefined, prefix: typeof settings.prefix === "string" ? settings.prefix : undefined })
  if (settings.calls === "missed" && message.call && !message.missed) return Effect.fail(new Skipped({ message: `skipped: ${e.type} is not a missed call (settings.calls is "missed")` }))
  return Effect.succeed({ message, settings })
}

/** The body for an event; `mobile`: the mobile of the extension it is about, for a template's mention. */
export const render = (target: Target, e: StoredEvent, mobile?: string): Effect.Effect<Request, TransformFailed | Skipped> => {
  const source = target.transform ?? templateOf(target)?.transform
  if (source !== undefined) {
    return Effect.flatMap(bindingsOf(target, e, mobile), (bindings) =>
      Effect.tryPromise({
        try: async () => {
          let expression = expressions.get(source)
          if (!expression) expressions.set(source, (expression = jsonata(source, TRANSFORM_LIMITS)))
          const result: unknown = await expression.evaluate(envelopeOf(e), bindings)
          if (result === undefined) throw new Error("the transform produced nothing")
          if (typeof result === "function") throw new Error("the transform produced a function")
          // a string is the body itself (a form, XML…: name its content-type in the target's headers)
          return typeof result === "string" ? { body: result, contentType: "text/plain; charset=utf-8" } : { body: JSON.stringify(result), contentType: "application/json" }
        },
        catch: (err) => new TransformFailed({ message: `transform failed: ${jsonataMessage(err)}`, reason: "transform" })
      })
    )
  }
  // a stored event that cannot be read throws: the request "could not be made" (Attempt.prepare)
  return Effect.sync(() => renderFormat(target, e))
}

/** Whether the target's body is made without a transform (JSONata runs asynchronously): `renderFormat` makes it. */
export const rendersPlainly = (target: Target) => target.transform === undefined && templateOf(target)?.transform === undefined

/** The body in the target's format, for a target without a transform; throws for a stored event that cannot be read. */
export const renderFormat = (target: Target, e: StoredEvent): Request => {
  switch (target.format) {
    case "json":
      return { body: JSON.stringify(envelopeOf(e)), contentType: "application/json" }
    case "form":
      return form(envelopeOf(e))
    case "800ing":
      return platformFormat(e)
  }
}
