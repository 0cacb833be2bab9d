/**
 * §2.10.2 addTask, §2.10.3 findTaskMx, §2.1.8 / §2.7.2 getTaskDetailPhone. Everything is the
 * caller's enterprise's: a task names only its own flows, work-order types and extensions, and
 * another enterprise's tasks are never seen or handed out. A refused addTask stores nothing.
 *
 * Under the upstream driver the platform runs tasks: addTask is relayed whole (the flow and
 * work-order type are the platform's to know) and kept here with the platform's id under our
 * own; findTaskMx and getTaskDetailPhone are relayed too and answered as the platform says —
 * it dials the numbers and hands them out, so only its answer is current. Our ids stand for the
 * platform's in both directions (ctkId asked, ctd_ctkId / groupData answered).
 */
import { SqlClient } from "@effect/sql"
import { Effect, Schema } from "effect"
import * as spec from "../../schemas/tasks.js"
import { InvalidParam, MethodFailed, NotFound, OverLimit } from "../api/Errors.js"
import { implement } from "../api/Implementation.js"
import { AppConfig } from "../config/AppConfig.js"
import { FlowsStore } from "../flows/FlowsStore.js"
import { parseLocal } from "../shared/Time.js"
import { Telephony } from "../telephony/Telephony.js"
import { idOf } from "../telephony/Upstream.js"
import { findDetails } from "./Details.js"
import { isAutomatic, MAX_TASK_NUMBERS, Tasks } from "./Tasks.js"

const DEFAULT_PAGE = 25

/** The request's own parameters as the platform names them (values as text, lists comma-separated). */
const wire = (params: Readonly<Record<string, string | number | ReadonlyArray<string> | undefined>>) =>
  Object.fromEntries(Object.entries(params).flatMap(([k, v]) => (v === undefined ? [] : [[k, typeof v === "object" ? v.join(",") : String(v)]])))

/** What the platform answered, in the documented shape: anything else is its failure (-3), not ours to pass on. */
const platformAnswer = <A, I>(method: string, schema: Schema.Schema<A, I>) => {
  const decode = Schema.decodeUnknown(schema, { onExcessProperty: "ignore" })
  return (answer: unknown) => decode(answer).pipe(Effect.mapError((e) => new MethodFailed({ message: `the platform's ${method} answer is not the documented shape: ${e.message.slice(0, 200)}` })))
}
const findTaskMxAnswer = platformAnswer("findTaskMx", spec.findTaskMx.result)
const detailPhoneAnswer = platformAnswer("getTaskDetailPhone", spec.getTaskDetailPhone.result)

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
      const { relay } = yield* Telephony
      let flow = undefined
      // relayed, the flow is one of the platform's
      if (p.cflName !== undefined && relay === undefined) {
        flow = (yield* (yield* FlowsStore).list(comp)).find((f) => f.name === p.cflName)
        if (flow === undefined) return yield* new InvalidParam({ param: "cflName", problem: `no call flow named ${JSON.stringify(p.cflName)} (findCallFlow lists them)` })
      }
      const workOrders = p.addType === 3 || p.addType === 4
      if (workOrders && p.wotName === undefined) return yield* new InvalidParam({ param: "wotName", problem: "is required for a work-order task (addType 3 or 4)" })
      if (p.wotName !== undefined && relay === undefined) {
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
      const tasks = yield* Tasks
      const task = {
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
      }
      if (relay === undefined) return { id: yield* tasks.create(task) }
      const params = wire({ ...p, data: JSON.stringify(p.data) })
      // what the platform accepted is kept, also when the client went away meanwhile (as a callback)
      const id = yield* Effect.uninterruptible(Effect.flatMap(relay("addTask", params), (answer) => tasks.create({ ...task, cflName: p.cflName, upstreamId: idOf(answer) })))
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
      const { relay } = yield* Telephony
      if (relay !== undefined) {
        const sql = yield* SqlClient.SqlClient
        const comp = caller.enterprise.comp_number
        const [mine] = p.ctkId === undefined ? [] : yield* sql<{ upstream_id: string | null }>`SELECT upstream_id FROM call_tasks WHERE ctk_id = ${p.ctkId} AND comp_number = ${comp}`
        const answer = yield* Effect.flatMap(relay("findTaskMx", wire({ ...p, ctkId: mine?.upstream_id ?? p.ctkId })), findTaskMxAnswer)
        // the platform's task ids named by ours where we relayed the task
        const platformIds = [...new Set([...answer.data.map((r) => r.ctd_ctkId), ...answer.groupData.map((g) => String(g.ctkId))])]
        const ours = new Map(
          platformIds.length === 0
            ? []
            : (yield* sql<{ ctk_id: number; upstream_id: string }>`SELECT ctk_id, upstream_id FROM call_tasks WHERE comp_number = ${comp} AND ${sql.in("upstream_id", platformIds)}`).map((r) => [r.upstream_id, r.ctk_id])
        )
        return {
          ...answer,
          data: answer.data.map((r) => ({ ...r, ctd_ctkId: String(ours.get(r.ctd_ctkId) ?? r.ctd_ctkId) })),
          groupData: answer.groupData.map((g) => ({ ...g, ctkId: ours.get(String(g.ctkId)) ?? g.ctkId }))
        }
      }
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
      // the platform hands its numbers out (to the configured account: which agent asked is ours to know)
      const { relay } = yield* Telephony
      if (relay !== undefined) return yield* Effect.flatMap(relay("getTaskDetailPhone", {}), detailPhoneAnswer)
      // taken and answered as one step: a client gone meanwhile must not leave the number half-taken
      const taken = yield* Effect.uninterruptible((yield* Tasks).claimManual(caller))
      if (taken === undefined) return yield* new NotFound({ message: `no manual-dial task number is waiting for extension ${caller.extension.extension}` })
      return taken
    })
  )
]
