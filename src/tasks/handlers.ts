/**
 * §2.10.2 addTask, §2.10.3 findTaskMx, §2.1.8 / §2.7.2 getTaskDetailPhone. Everything is the
 * caller's enterprise's: a task names only its own flows, work-order types and extensions, and
 * another enterprise's tasks are never seen or handed out. A refused addTask stores nothing.
 */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import * as spec from "../../schemas/tasks.js"
import { InvalidParam, NotFound, OverLimit } from "../api/Errors.js"
import { implement } from "../api/Implementation.js"
import { AppConfig } from "../config/AppConfig.js"
import { FlowsStore } from "../flows/FlowsStore.js"
import { parseLocal } from "../shared/Time.js"
import { findDetails } from "./Details.js"
import { isAutomatic, MAX_TASK_NUMBERS, Tasks } from "./Tasks.js"

const DEFAULT_PAGE = 25

export const handlers = [
  implement(spec.addTask, (p, caller) =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const { tz } = yield* AppConfig
      const comp = caller.enterprise.comp_number
      if (p.data.length > MAX_TASK_NUMBERS) return yield* new OverLimit({ message: `parameter data: at most ${MAX_TASK_NUMBERS} numbers a task, got ${p.data.length}` })
      const automatic = isAutomatic(p.addType)
      if (automatic && p.cflName === undefined)
        return yield* new InvalidParam({ param: "cflName", problem: "is required for automatic dialling (addType 1 or 3): the call flow the calls play" })
      let flow = undefined
      if (p.cflName !== undefined) {
        flow = (yield* (yield* FlowsStore).list(comp)).find((f) => f.name === p.cflName)
        if (flow === undefined) return yield* new InvalidParam({ param: "cflName", problem: `no call flow named ${JSON.stringify(p.cflName)} (findCallFlow lists them)` })
      }
      const workOrders = p.addType === 3 || p.addType === 4
      if (workOrders && p.wotName === undefined) return yield* new InvalidParam({ param: "wotName", problem: "is required for a work-order task (addType 3 or 4)" })
      if (p.wotName !== undefined) {
        const [type] = yield* sql`SELECT 1 AS x FROM wo_types WHERE comp_number = ${comp} AND name = ${p.wotName}`
        if (!type) return yield* new InvalidParam({ param: "wotName", problem: `no work-order type named ${JSON.stringify(p.wotName)}` })
      }
      const own = caller.extension.extension
      const allot = [...new Set(p.allotExte ?? [own])]
      const attri = p.attriExte ?? own
      for (const [param, extensions] of [["allotExte", allot], ["attriExte", [attri]]] as const) {
        const known = new Set(
          (yield* sql<{ extension: string }>`SELECT extension FROM extensions WHERE comp_number = ${comp} AND ${sql.in("extension", extensions)}`).map((r) => r.extension)
        )
        const unknown = extensions.find((e) => !known.has(e))
        if (unknown !== undefined) return yield* new InvalidParam({ param, problem: `no extension ${unknown} in enterprise ${comp}` })
      }
      const id = yield* (yield* Tasks).create({
        caller,
        name: p.name,
        addType: p.addType,
        flow,
        sendMs: p.sendTime === undefined ? Date.now() : parseLocal(p.sendTime, tz),
        repeatSend: p.repeatSend ?? 0,
        sendInterval: p.sendInterval ?? 0,
        allot,
        attri,
        wotName: p.wotName ?? "",
        items: p.data
      })
      return { id }
    })
  ),

  implement(spec.findTaskMx, (p, caller) =>
    Effect.gen(function* () {
      const { tz, limits } = yield* AppConfig
      const limit = p.limit ?? DEFAULT_PAGE
      if (limit > limits.pageMax) return yield* new OverLimit({ message: `parameter limit: at most ${limits.pageMax}, got ${limit}` })
      const fromMs = p.startTime === undefined ? undefined : parseLocal(p.startTime, tz)
      const toMs = p.endTime === undefined ? undefined : parseLocal(p.endTime, tz)
      if (fromMs !== undefined && toMs !== undefined && fromMs > toMs) return yield* new InvalidParam({ param: "endTime", problem: "is before startTime" })
      return yield* findDetails({
        caller,
        tz,
        cflId: p.cflId,
        type: p.type ?? 0,
        ctkId: p.ctkId,
        ctkName: p.ctkName,
        fromMs,
        toMs,
        start: p.start ?? 0,
        limit
      })
    })
  ),

  implement(spec.getTaskDetailPhone, (_, caller) =>
    Effect.gen(function* () {
      // taken and answered as one step: a client gone meanwhile must not leave the number half-taken
      const taken = yield* Effect.uninterruptible((yield* Tasks).claimManual(caller))
      if (taken === undefined) return yield* new NotFound({ message: `no manual-dial task number is waiting for extension ${caller.extension.extension}` })
      return taken
    })
  )
]
