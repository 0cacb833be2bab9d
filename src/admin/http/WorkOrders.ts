/** The admin API's work-order types of an enterprise. */
import { HttpApiBuilder } from "@effect/platform"
import { SqlClient } from "@effect/sql"
import { Clock, Effect } from "effect"
import { WorkOrdersStore } from "../../workorders/WorkOrdersStore.js"
import { AdminApi, BadRequest, Conflict, NotFound, WorkOrderTypeBody } from "../Api.js"
import { decoder, enterprise, jsonBody, storage } from "./Shared.js"

const decodeWorkOrderType = decoder(WorkOrderTypeBody)

const typeIdOf = (text: string) => {
  const n = Number(text)
  return /^\d{1,16}$/.test(text) && Number.isSafeInteger(n) ? Effect.succeed(n) : Effect.fail(BadRequest.of(`wotId: expected a work-order type's id, got ${JSON.stringify(text.slice(0, 64))}`))
}

export const WorkOrdersLive = HttpApiBuilder.group(AdminApi, "workorders", (handlers) =>
  handlers
    .handle("types", ({ path }) =>
      Effect.gen(function* () {
        const comp = yield* enterprise(path.comp)
        const store = yield* WorkOrdersStore
        const items = yield* storage(Effect.forEach(yield* storage(store.types(comp)), (t) => store.definition(comp, t.wot_id)))
        return { code: 0, message: "OK", items: items.filter((t) => t !== undefined) } as const
      })
    )
    .handleRaw("saveType", ({ path, request }) =>
      Effect.gen(function* () {
        const comp = yield* enterprise(path.comp)
        const body = yield* decodeWorkOrderType(yield* jsonBody(request))
        const def = { ...body, enterprise: comp }
        const store = yield* WorkOrdersStore
        const sql = yield* SqlClient.SqlClient
        const unknown = yield* storage(store.unknownPeople(def))
        if (unknown.length > 0) return yield* Effect.fail(BadRequest.of(`steps: people ${unknown.join(", ")} are not extensions of enterprise ${comp}`))
        const wotId = yield* storage(Effect.flatMap(Clock.currentTimeMillis, (now) => sql.withTransaction(store.saveType(def, now)))).pipe(
          Effect.catchTag("StepsInUse", (e) => Effect.fail(new Conflict({ code: -10, message: e.message })))
        )
        return { code: 0, message: "OK", type: (yield* storage(store.definition(comp, wotId)))! } as const
      })
    )
    .handle("type", ({ path }) =>
      Effect.gen(function* () {
        const comp = yield* enterprise(path.comp)
        const wotId = yield* typeIdOf(path.wotId)
        const found = yield* storage((yield* WorkOrdersStore).definition(comp, wotId))
        if (found === undefined) return yield* Effect.fail(NotFound.of(`work-order type ${wotId} of enterprise ${comp}`))
        return { code: 0, message: "OK", type: found } as const
      })
    )
    .handle("removeType", ({ path }) =>
      Effect.gen(function* () {
        const comp = yield* enterprise(path.comp)
        const wotId = yield* typeIdOf(path.wotId)
        const outcome = yield* storage((yield* WorkOrdersStore).removeType(comp, wotId))
        if (outcome === "missing") return yield* Effect.fail(NotFound.of(`work-order type ${wotId} of enterprise ${comp}`))
        if (outcome === "in use") return yield* Effect.fail(new Conflict({ code: -10, message: `work-order type ${wotId} has work orders: it stays` }))
        return { code: 0, message: "OK" } as const
      })
    )
)
