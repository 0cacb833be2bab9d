/** §2.10.1 findCallFlow: the enterprise's call flows in the contract's `cfl*` shape. */
import { Effect } from "effect"
import * as spec from "../../schemas/tasks.js"
import { NotFound } from "../api/Errors.js"
import { implement } from "../api/Implementation.js"
import { FlowsStore } from "./FlowsStore.js"

export const handlers = [
  implement(spec.findCallFlow, ({ ctdId }, caller) =>
    Effect.gen(function* () {
      // a task names its flow: no outbound tasks are kept yet, so no task id is known
      if (ctdId !== undefined) return yield* new NotFound({ message: `no task ${ctdId}` })
      const flows = yield* (yield* FlowsStore).list(caller.enterprise.comp_number)
      return {
        callflow: flows.map((f) => ({
          cflId: f.id,
          cflName: f.name,
          ctkName: "",
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
