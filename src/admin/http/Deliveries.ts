/** The admin API's deliveries: listed by status, dead letters listed, redriven and purged. */
import { HttpApiBuilder } from "@effect/platform"
import { Effect } from "effect"
import { type DeadLetterFilter, DeadLetters } from "../../forwarding/DeadLetters.js"
import { AdminApi, BadRequest } from "../Api.js"
import { filterFrom, jsonBody, type PageRequest, pageFrom, paged, redriven, storage } from "./Shared.js"

/** Only the keys that were given: an absent query value is no filter, not an undefined one. */
const given = <T extends Record<string, string | undefined>>(q: T): Record<string, string> =>
  Object.fromEntries(Object.entries(q).filter((e): e is [string, string] => e[1] !== undefined))

const listPage = (status: string | undefined, filter: DeadLetterFilter, page: PageRequest) =>
  Effect.map(
    Effect.flatMap(DeadLetters, (d) => d.list(status, filter, page.limit + 1, page.before)),
    (rows) => paged(rows, page)
  )
const DELIVERY_STATUSES: ReadonlyArray<string> = ["pending", "in_flight", "delivered", "dead"]

export const DeliveriesLive = HttpApiBuilder.group(AdminApi, "deliveries", (handlers) =>
  handlers
    .handle("list", ({ urlParams: q }) =>
      Effect.gen(function* () {
        const filter = yield* filterFrom({ ...(q.target ? { target: q.target } : {}), ...(q.type ? { type: q.type } : {}) })
        if (q.status !== undefined && !DELIVERY_STATUSES.includes(q.status))
          return yield* Effect.fail(BadRequest.of(`status: expected one of ${DELIVERY_STATUSES.join(", ")}`))
        const page = yield* pageFrom(q, 100)
        return yield* storage(listPage(q.status, filter, page))
      })
    )
    .handle("deadLetters", ({ urlParams }) =>
      Effect.gen(function* () {
        const { limit, before, ...rest } = urlParams
        const filter = yield* filterFrom(given(rest))
        const page = yield* pageFrom({ limit, before }, 1000)
        return yield* storage(listPage("dead", filter, page))
      })
    )
    .handleRaw("redrive", ({ request }) =>
      Effect.gen(function* () {
        const filter = yield* filterFrom(yield* jsonBody(request))
        return redriven(yield* storage((yield* DeadLetters).redrive(filter)))
      })
    )
    .handleRaw("purge", ({ request, urlParams }) =>
      Effect.gen(function* () {
        const filter = yield* filterFrom({ ...given(urlParams), ...(yield* jsonBody(request)) })
        if (Object.keys(filter).length === 0)
          return yield* Effect.fail(BadRequest.of("(filter): name what to delete (target, type, ids, since/until); deleting every dead letter takes since=0"))
        return { code: 0, deleted: yield* storage((yield* DeadLetters).purge(filter)) } as const
      })
    )
)
