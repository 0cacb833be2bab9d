/**
 * At every start: the config's work-order types written over the stored ones of the same
 * enterprise and name, and — when the bootstrap enterprise has no type yet — the example
 * 售后工单, so a newcomer can file a work order at once. A configured type naming an unknown
 * enterprise or extension, or dropping a step that work orders are at, is logged and left out
 * (the stored one stays); the bridge serves the others.
 */
import { SqlClient } from "@effect/sql"
import { Clock, Effect, Schema } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { exampleType, type TypeDefinition as TypeDefinitionType, TypeDefinition } from "./Definition.js"
import { WorkOrdersStore } from "./WorkOrdersStore.js"

const saveChecked = (def: TypeDefinitionType) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const store = yield* WorkOrdersStore
    const enterprise = yield* sql<{ n: number }>`SELECT count(*) AS n FROM enterprises WHERE comp_number = ${def.enterprise}`
    if ((enterprise[0]?.n ?? 0) === 0) return `enterprise ${def.enterprise} does not exist`
    const unknown = yield* store.unknownPeople(def)
    if (unknown.length > 0) return `people ${unknown.join(", ")} are not extensions of enterprise ${def.enterprise}`
    const now = yield* Clock.currentTimeMillis
    // a type of the file that drops a step work orders are at is left as stored: the orders stay movable
    return yield* sql.withTransaction(store.saveType(def, now)).pipe(
      Effect.as(undefined),
      Effect.catchTag("StepsInUse", (e) => Effect.succeed(e.message))
    )
  })

export const setUpWorkOrders = Effect.gen(function* () {
  const config = yield* AppConfig
  const sql = yield* SqlClient.SqlClient
  // the example first: a type of the config file is no reason to leave a newcomer without it
  const comp = config.bootstrap.compNumber
  const has = yield* sql<{ n: number }>`SELECT count(*) AS n FROM wo_types WHERE comp_number = ${comp}`
  if (config.workorders.seedExample && config.bootstrap.enabled && (has[0]?.n ?? 0) === 0) {
    const problem = yield* saveChecked(Schema.decodeSync(TypeDefinition)(exampleType(comp)))
    if (problem === undefined) yield* Effect.logInfo("created the example work-order type 售后工单").pipe(Effect.annotateLogs({ compNumber: comp }))
  }
  for (const def of config.workorders.types) {
    const problem = yield* saveChecked(def)
    if (problem !== undefined) yield* Effect.logError("a configured work-order type is left out").pipe(Effect.annotateLogs({ enterprise: def.enterprise, type: def.name, problem }))
  }
})
