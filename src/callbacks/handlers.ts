/**
 * §2.3 callbacks and §2.4.2–2.4.3 voice verification: placed on the telephony driver in force
 * (src/telephony), recorded here. A number on the enterprise's blacklist is refused (-5) before
 * any driver is asked; nothing is stored for a refused request.
 *
 * Placing, storing and starting a call is one uninterruptible step: a client that goes away
 * (its handler fiber interrupted) must not leave a phone ringing with no record of it. The
 * driver's own time-out (the upstream relay's) bounds the step.
 */
import { Effect } from "effect"
import * as records from "../../schemas/records.js"
import * as system from "../../schemas/system.js"
import { InvalidParam, OverLimit } from "../api/Errors.js"
import { implement } from "../api/Implementation.js"
import { refuseBlacklisted } from "../blacklist/Listed.js"
import { AppConfig } from "../config/AppConfig.js"
import { Ids } from "../shared/Ids.js"
import { allowList, isAddressOrRange } from "../shared/Network.js"
import { parseLocal } from "../shared/Time.js"
import { Telephony } from "../telephony/Telephony.js"
import { Audits } from "./Audits.js"
import { Callbacks } from "./Callbacks.js"

const DEFAULT_PAGE = 25

/** Whether a callbackUrl's host is one `allowTo` lets pushes go to (any, when the list is empty). */
export const callbackAllowed = (allowTo: ReadonlyArray<string>) => {
  const addresses = allowList(allowTo)
  const names = new Set(allowTo.filter((e) => !isAddressOrRange(e)).map((e) => e.toLowerCase()))
  return (url: string) => {
    if (allowTo.length === 0) return true
    const host = new URL(url).hostname.replace(/^\[(.*)\]$/, "$1").toLowerCase()
    return names.has(host) || addresses(host)
  }
}

const range = (startTime: string | undefined, endTime: string | undefined, tz: string) =>
  Effect.gen(function* () {
    const fromMs = startTime === undefined ? undefined : parseLocal(startTime, tz)
    const toMs = endTime === undefined ? undefined : parseLocal(endTime, tz)
    if (fromMs !== undefined && toMs !== undefined && fromMs > toMs) return yield* new InvalidParam({ param: "endTime", problem: "is before startTime" })
    return { fromMs, toMs }
  })

/** The request's own parameters as a relaying driver passes them on (the platform's names). */
const wire = (params: Readonly<Record<string, string | number | undefined>>) =>
  Object.fromEntries(Object.entries(params).flatMap(([k, v]) => (v === undefined ? [] : [[k, String(v)]])))

export const handlers = [
  implement(system.callbackPhone, ({ sourcePhone, descPhone, callbackUrl }, caller) =>
    Effect.gen(function* () {
      const { allowTo } = (yield* AppConfig).telephony.callbackDelivery
      if (callbackUrl !== undefined && !callbackAllowed(allowTo)(callbackUrl))
        return yield* new InvalidParam({ param: "callbackUrl", problem: `${new URL(callbackUrl).host} is not among the hosts callbacks may push to (telephony.callbackDelivery.allowTo)` })
      yield* refuseBlacklisted(caller, [["sourcePhone", sourcePhone], ["descPhone", descPhone]])
      const telephony = yield* Telephony
      const callbacks = yield* Callbacks
      const id = yield* (yield* Ids).next
      const params = wire({ sourcePhone, descPhone, callbackUrl: callbackUrl === undefined ? undefined : Buffer.from(callbackUrl, "utf8").toString("base64") })
      yield* Effect.uninterruptible(
        Effect.gen(function* () {
          const placed = yield* telephony.place({ kind: "callback", id, caller, from: sourcePhone, to: descPhone, record: caller.extension.is_record === 1, params })
          yield* callbacks.create({ id, caller, sourcePhone, descPhone, urlTemplate: callbackUrl, driver: telephony.name, answer: placed.answer, upstream: placed.upstream })
          yield* telephony.start(placed.run((state) => callbacks.progress(id, state)))
        })
      )
      return { id }
    })
  ),

  implement(system.getCallbackList, (p, caller) =>
    Effect.gen(function* () {
      const { tz, limits } = yield* AppConfig
      const limit = p.limit ?? DEFAULT_PAGE
      if (limit > limits.pageMax) return yield* new OverLimit({ message: `parameter limit: at most ${limits.pageMax}, got ${limit}` })
      const { fromMs, toMs } = yield* range(p.startTime, p.endTime, tz)
      // an agent sees its own callbacks; an administrator the enterprise's
      const own = caller.extension.extension
      if (!caller.isAdmin && p.extension !== undefined && p.extension !== own) return { total: 0, rows: [] }
      const extension = caller.isAdmin ? p.extension : own
      return yield* (yield* Callbacks).list({ compNumber: caller.enterprise.comp_number, extension, fromMs, toMs, id: p.id, start: p.start ?? 0, limit })
    })
  ),

  implement(records.phoneAudit, ({ yzm, type, phone, isRecord, commandNo, ws_wlstConnectId }, caller) =>
    Effect.gen(function* () {
      // a digit code is said digit by digit: anything else in it could not be
      if (type === 1 && !/^\d+$/.test(yzm)) return yield* new InvalidParam({ param: "yzm", problem: "expected digits only (type 1 is a digit code)" })
      yield* refuseBlacklisted(caller, [["phone", phone]])
      const telephony = yield* Telephony
      const audits = yield* Audits
      const { telephony: settings } = yield* AppConfig
      const id = yield* (yield* Ids).next
      const record = isRecord ?? 0
      const params = wire({ yzm, type, phone, isRecord, commandNo, ws_wlstConnectId })
      yield* Effect.uninterruptible(
        Effect.gen(function* () {
          const placed = yield* telephony.place({
            kind: "audit",
            id,
            caller,
            from: settings.simulator.showPhone,
            to: phone,
            // 1 records from the transfer on: a verification call is never transferred
            record: record === 2,
            say: { text: yzm, type, commandNo: commandNo ?? "" },
            params
          })
          yield* audits.create({
            id,
            caller,
            phone,
            value: yzm,
            type,
            isRecord: record,
            commandNo: commandNo ?? "",
            connectId: ws_wlstConnectId,
            sipRound: telephony.name,
            showPhone: telephony.name === "simulator" ? settings.simulator.showPhone : "",
            driver: telephony.name,
            answer: placed.answer
          })
          yield* telephony.start(placed.run((state) => audits.progress(id, state)))
        })
      )
      return { id, yzm }
    })
  ),

  implement(records.getPhoneAudit, (p, caller) =>
    Effect.gen(function* () {
      const { tz, limits } = yield* AppConfig
      const rows = p.rows ?? DEFAULT_PAGE
      if (rows > limits.pageMax) return yield* new OverLimit({ message: `parameter rows: at most ${limits.pageMax}, got ${rows}` })
      const { fromMs, toMs } = yield* range(p.startTime, p.endTime, tz)
      const bad = p.status?.find((s) => !(s >= 0 && s <= 5))
      if (bad !== undefined) return yield* new InvalidParam({ param: "status", problem: `expected states from 0 to 5, got ${bad}` })
      // an agent sees its own verification calls; an administrator the enterprise's (or one login's)
      const own = caller.extension.extension
      if (!caller.isAdmin && p.loginId !== undefined && p.loginId !== own && p.loginId !== caller.extension.login_name) return { total: 0, rows: [] }
      return yield* (yield* Audits).list({
        compNumber: caller.enterprise.comp_number,
        loginId: caller.isAdmin ? p.loginId : own,
        id: p.id,
        fromMs,
        toMs,
        statuses: p.status,
        showPhone: p.sipShowPhone !== 0,
        offset: ((p.page ?? 1) - 1) * rows,
        limit: rows
      })
    })
  )
]
