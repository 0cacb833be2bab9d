/** §2.10.1 findCallFlow: the enterprise's call flows in the contract's `cfl*` shape; with `ctdId`, the flow of that task. */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import * as spec from "../../schemas/tasks.js"
import { NotFound } from "../api/Errors.js"
import { implement } from "../api/Implementation.js"
import { FlowsStore } from "./FlowsStore.js"

export const handlers = [
  implement(spec.findCallFlow, ({ ctdId }, caller) =>
    Effect.gen(function* () {
      const comp = caller.enterprise.comp_number
      let flows = yield* (yield* FlowsStore).list(comp)
      let ctkName = ""
      if (ctdId !== undefined) {
        // the task's own flow (a manual task may have none): by the task's id, or one of its numbers' (getTaskDetailPhone's ctdId)
        const sql = yield* SqlClient.SqlClient
        const [task] = yield* sql<{ name: string; cfl_id: number | null }>`SELECT name, cfl_id FROM call_tasks WHERE comp_number = ${comp}
          AND ctk_id IN (${ctdId}, (SELECT ctk_id FROM call_task_numbers WHERE ctd_id = ${ctdId}))`
        if (!task) return yield* new NotFound({ message: `no task ${ctdId}` })
        ctkName = task.name
        flows = flows.filter((f) => f.id === task.cfl_id)
      }
      return {
        callflow: flows.map((f) => ({
          cflId: f.id,
          cflName: f.name,
          ctkName,
          compGroupCallTimes: f.groupCallTimes,
          cflsend_wfPath: f.wfPath,
          cflTransferMode: f.transferMode,
          cflTransferTimes: f.transferTimes,
          cflIsRecord: f.isRecord,
          cflSendInterval: f.sendInterval,
          cflSmsStatus: f.smsStatus,
          cflSmsTims: f.smsTimes,
          cflSmsContent: f.smsContent
        }))
      }
    })
  )
]
