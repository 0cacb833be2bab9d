/**
 * The admin API's own shapes (ours, not the platform's): the filters that choose dead
 * letters, the listing pages, and the items a listing answers with. The routes decode with
 * these, the store builds answers of these types, and /openapi.json documents them.
 */
import { Schema } from "effect"

/** ISO 8601 or Unix ms, kept as Unix ms. */
const Time = Schema.Union(
  Schema.Int,
  Schema.DateFromString.pipe(Schema.transform(Schema.Int, { strict: true, decode: (d) => d.getTime(), encode: (n) => new Date(n) }))
).annotations({ description: "ISO 8601 time or Unix ms", message: () => ({ message: "expected an ISO 8601 time or Unix ms", override: true }) })

// An empty value must not read as "no filter": that would widen a redrive or a purge to everything.
const Named = (what: string) => Schema.String.pipe(Schema.minLength(1, { message: () => `expected ${what}, got an empty value` }))
const Id = Schema.Int.annotations({ message: () => "expected whole-number ids" })

export const DeadLetterFilter = Schema.Struct({
  target: Schema.optional(Named("a target name").annotations({ description: "target name" })),
  type: Schema.optional(Named("an event type or glob").annotations({ description: "event type, or a glob such as call.*" })),
  ids: Schema.optional(Schema.Array(Id).annotations({ description: "delivery ids; an empty list names none" })),
  since: Schema.optional(Time.annotations({ description: "events that occurred at or after this time" })),
  until: Schema.optional(Time.annotations({ description: "events that occurred at or before this time" }))
}).pipe(
  Schema.filter((f) => f.since === undefined || f.until === undefined || f.since <= f.until || { path: ["until"], message: "expected a time at or after since" })
)

export const Attempt = Schema.Struct({
  n: Schema.Int,
  at: Schema.String.annotations({ description: "ISO 8601" }),
  status: Schema.NullOr(Schema.Int).annotations({ description: "HTTP status; null when no answer came" }),
  latencyMs: Schema.Int,
  error: Schema.NullOr(Schema.String),
  response: Schema.NullOr(Schema.String).annotations({ description: "the answer's first 2 KB" })
})

export const EventItem = Schema.Struct({
  id: Schema.Number,
  type: Schema.String,
  occurredAt: Schema.String,
  enterprise: Schema.NullOr(Schema.String),
  source: Schema.String,
  data: Schema.Unknown,
  raw: Schema.optional(Schema.NullOr(Schema.String).annotations({ description: "the request as it arrived (events listing only); null when the event was not received over HTTP" })),
  unreadable: Schema.optional(Schema.Literal(true).annotations({ description: "the stored data cannot be read back (nested too deeply, not JSON): data is null" }))
})

export const DeliveryItem = Schema.Struct({
  id: Schema.Number,
  target: Schema.String,
  url: Schema.optional(Schema.String.annotations({ description: "the delivery's own URL (a callback's callbackUrl, target $adhoc), instead of its target's" })),
  status: Schema.String.annotations({ description: "pending, in_flight, delivered or dead" }),
  reason: Schema.NullOr(Schema.String).annotations({ description: "why a dead letter is dead: exhausted, refused, transform, target deleted…" }),
  webhookId: Schema.String,
  lastError: Schema.NullOr(Schema.String),
  nextAttemptAt: Schema.NullOr(Schema.String),
  held: Schema.Boolean.annotations({ description: "waiting behind a dead letter of its call (exhausted): sent once that is redriven or deleted" }),
  updatedAt: Schema.String,
  event: EventItem,
  attempts: Schema.Array(Attempt)
})

/** A page of a listing, newest first; `next` is the `before` of the following page. */
export const Page = <A, I, R>(item: Schema.Schema<A, I, R>) =>
  Schema.Struct({
    items: Schema.Array(item),
    next: Schema.optional(Schema.Number.annotations({ description: "pass as before= for the following page; absent on the last" }))
  })

export const Redriven = Schema.Struct({
  code: Schema.Literal(0),
  redriven: Schema.Int,
  skipped: Schema.optional(Schema.Int.annotations({ description: "dead letters of targets that no longer exist, left as they are" })),
  message: Schema.optional(Schema.String)
})
export const Deleted = Schema.Struct({ code: Schema.Literal(0), deleted: Schema.Int })
