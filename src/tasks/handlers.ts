/**
 * §2.10.2 addTask, §2.10.3 findTaskMx, §2.1.8 / §2.7.2 getTaskDetailPhone. Everything is the
 * caller's enterprise's: a task names only its own flows, work-order types and extensions, and
 * another enterprise's tasks are never seen or handed out. A refused addTask stores nothing.
 *
 * Under the upstream driver the platform runs tasks: addTask is relayed whole (the flow and
 * work-order type are the platform's to know) and kept here with the platform's id under our
 * own; findTaskMx and getTaskDetailPhone are relayed too and answered as the platform says —
 * it dials the numbers and hands them out, so only its answer is current. Our ids stand for the
 * platform's in both directions (ctkId asked, ctd_ctkId / groupData answered). The platform is
 * one account for every enterprise: of its answers only the caller's enterprise's relayed tasks
 * are passed on, and a number it hands out that is not one of them is refused (-3).
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
        let asked: string | undefined = undefined
        if (p.ctkId !== undefined) {
          const [mine] = yield* sql<{ upstream_id: string | null }>`SELECT upstream_id FROM call_tasks WHERE ctk_id = ${p.ctkId} AND comp_number = ${comp} AND upstream_id IS NOT NULL`
          if (mine?.upstream_id == null) return yield* new NotFound({ message: `no task ${p.ctkId} relayed to the platform in enterprise ${comp}` })
          asked = mine.upstream_id
        }
        const answer = yield* Effect.flatMap(relay("findTaskMx", wire({ ...p, ctkId: asked })), findTaskMxAnswer)
        // the platform answers for its one account, i.e. every enterprise: only tasks this enterprise relayed are its to see
        const platformIds = [...new Set([...answer.data.map((r) => r.ctd_ctkId), ...answer.groupData.map((g) => String(g.ctkId))])]
        const ours = new Map(
          platformIds.length === 0
            ? []
            : (yield* sql<{ ctk_id: number; upstream_id: string }>`SELECT ctk_id, upstream_id FROM call_tasks WHERE comp_number = ${comp} AND ${sql.in("upstream_id", platformIds)}`).map((r) => [r.upstream_id, r.ctk_id])
        )
        const groupData = answer.groupData.flatMap((g) => {
          const id = ours.get(String(g.ctkId))
          return id === undefined ? [] : [{ ...g, ctkId: id }]
        })
        const type = p.type ?? 0
        return {
          ...answer,
          data: answer.data.flatMap((r) => {
            const id = ours.get(r.ctd_ctkId)
            return id === undefined ? [] : [{ ...r, ctd_ctkId: String(id) }]
          }),
          // the platform's count is its whole account's: ours is what its per-status counts say of our own tasks (as findDetails counts)
          count: groupData.filter((g) => type === 0 || (type === 1 ? g.ctdStatus === 0 : g.ctdStatus >= 3)).reduce((n, g) => n + g.num, 0),
          groupData
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
      const { relay } = yield* Telephony
      if (relay !== undefined) {
        const sql = yield* SqlClient.SqlClient
        const comp = caller.enterprise.comp_number
        // the platform hands out its one account's numbers, i.e. any enterprise's: it is asked only for ours, and what it hands
        // back must be ours. Asking for an enterprise with no manual task relayed would use up another enterprise's number.
        const tasks = yield* sql<{ upstream_id: string }>`SELECT upstream_id FROM call_tasks
          WHERE comp_number = ${comp} AND upstream_id IS NOT NULL AND add_type IN (2, 4) ORDER BY ctk_id`
        if (tasks.length === 0) return yield* new NotFound({ message: `no manual-dial task of enterprise ${comp} was relayed to the platform` })
        const ids = tasks.map((t) => t.upstream_id)
        const raw = yield* relay("getTaskDetailPhone", { ctkId: ids.join(",") })
        const answer = yield* detailPhoneAnswer(raw)
        // the documented answer names no task: it is ours when any task it does name is, and its number is one of our relayed tasks'
        const named = ["ctkId", "ctd_ctkId"].flatMap((k) => {
          const v = typeof raw === "object" && raw !== null ? (raw as Record<string, unknown>)[k] : undefined
          return typeof v === "string" || typeof v === "number" ? [String(v)] : []
        })
        const [listed] = yield* sql<{ n: number }>`SELECT count(*) AS n FROM call_task_numbers n JOIN call_tasks t ON t.ctk_id = n.ctk_id
          WHERE t.comp_number = ${comp} AND ${sql.in("t.upstream_id", ids)} AND n.phone = ${answer.phone}`
        if (named.some((id) => !ids.includes(id)) || (listed?.n ?? 0) === 0)
          return yield* new MethodFailed({ message: "the platform handed out a number of a task this enterprise did not relay: refused" })
        return answer
      }
      // taken and answered as one step: a client gone meanwhile must not leave the number half-taken
      const taken = yield* Effect.uninterruptible((yield* Tasks).claimManual(caller))
      if (taken === undefined) return yield* new NotFound({ message: `no manual-dial task number is waiting for extension ${caller.extension.extension}` })
      return taken
    })
  )
]
