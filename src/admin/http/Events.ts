/** The admin API's events: the list, and a resend to a target. */
import { HttpApiBuilder } from "@effect/platform"
import { Effect, Either, Schema } from "effect"
import { EventsStore } from "../../events/EventsStore.js"
import { DeadLetters } from "../../forwarding/DeadLetters.js"
import { AdminApi, BadRequest, NotFound, ResendBody } from "../Api.js"
import { existing, jsonBody, pageFrom, paged, storage } from "./Shared.js"

// other fields are ignored, as they always were
const decodeResend = Schema.decodeUnknownEither(ResendBody)

export const EventsLive = HttpApiBuilder.group(AdminApi, "events", (handlers) =>
  handlers
    .handle("list", ({ urlParams: q }) =>
      Effect.gen(function* () {
        const since = q.since ? (/^\d+$/.test(q.since) ? Number(q.since) : Date.parse(q.since)) : 0
        if (Number.isNaN(since)) return yield* Effect.fail(BadRequest.of(`since: expected an ISO time or Unix ms, got ${JSON.stringify(q.since)}`))
        const page = yield* pageFrom(q, 100)
        const rows = yield* storage((yield* EventsStore).list({ type: q.type, since, limit: page.limit + 1, before: page.before }))
        return paged(rows, page)
      })
    )
    .handleRaw("resend", ({ path, request }) =>
      Effect.gen(function* () {
        const body = yield* jsonBody(request)
        const { target } = yield* Either.mapLeft(decodeResend(body), () => BadRequest.of("target: is missing"))
        yield* existing(target)
        const result = yield* storage((yield* DeadLetters).resend(Number(path.id), target))
        if (result.deliveryId === null) return yield* Effect.fail(NotFound.of(`event ${path.id}`))
        return result.waiting
          ? { code: -10, message: "the event's delivery to that target is waiting to be sent already", deliveryId: result.deliveryId }
          : { code: 0, message: "OK", deliveryId: result.deliveryId }
      })
    )
)
