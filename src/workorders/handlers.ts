/**
 * §2.12.1–2.12.8 — what each work-order endpoint does. Every caller sees its enterprise's types;
 * an administrator every work order of them, an agent those it created, is assigned, or whose
 * current step it is a person of (others answer as unknown: -11). A work order moves one step at
 * a time: saved where it is (wo_action 1), submitted to the next step (2; 4 when that step ends
 * it), or returned to an earlier one (3). Each change commits with its event, whose data is the
 * §2.12.9 push; a step set to push adds a delivery to the type's own target.
 */
import { SqlClient } from "@effect/sql"
import { Clock, Effect, Option } from "effect"
import { WORKORDER_EVENT_TYPES } from "../../schemas/push.js"
import type * as spec from "../../schemas/workorder.js"
import type { ParamsOf } from "../../schemas/Method.js"
import { InvalidParam, NotFound, OverLimit } from "../api/Errors.js"
import type { Caller } from "../auth/Auth.js"
import { AppConfig } from "../config/AppConfig.js"
import { type CustomerValues, CustomersStore } from "../customers/CustomersStore.js"
import { normalPhone } from "../customers/Phones.js"
import { Sqlite } from "../db/Sqlite.js"
import { Outbox } from "../events/Outbox.js"
import { ExtensionsRepo } from "../extensions/ExtensionsRepo.js"
import { Targets } from "../forwarding/Targets.js"
import { formatLocal, parseLocal } from "../shared/Time.js"
import { pushTargetName } from "./PushTarget.js"
import { type StepRecord, type TypeRecord, type WorkOrderRecord, WorkOrdersStore } from "./WorkOrdersStore.js"

const DEFAULT_ROWS = 20
const DEAD_TARGET_GONE = `UPDATE deliveries SET status = 'dead', dead_reason = 'target deleted', updated_at = ? WHERE id = ?`
const STEP_FIELD = /^woStep(\d+)(Time|Status|Answer|_exteId|_exteName)$/
const OTHER_FIELD = /^woOther(\d+)$/

type Fields = Record<string, string | number | null>

/** An administrator sees every work order of the enterprise; an agent is named for the visibility rule. */
const agentOf = (caller: Caller) => (caller.isAdmin ? undefined : caller.extension.exte_id)

const idOf = (param: string, text: string) => {
  const n = Number(text)
  return Number.isSafeInteger(n) && n > 0 ? Effect.succeed(n) : Effect.fail(new NotFound({ message: `parameter ${param}: no ${param === "woId" ? "work order" : "work-order type"} ${text} in this enterprise` }))
}

const typeOf = (caller: Caller, param: string, text: string) =>
  Effect.gen(function* () {
    const wotId = yield* idOf(param, text)
    const found = yield* (yield* WorkOrdersStore).type(caller.enterprise.comp_number, wotId)
    if (found === undefined) return yield* new NotFound({ message: `parameter ${param}: no work-order type ${text} in this enterprise` })
    return found
  })

/** A work order the caller may see; another's answers as an unknown one. */
export const workOrderOf = (caller: Caller, text: string) =>
  Effect.gen(function* () {
    const store = yield* WorkOrdersStore
    const woId = yield* idOf("woId", text)
    const found = yield* store.find(caller.enterprise.comp_number, woId)
    if (found === undefined || !(yield* store.visible(found, agentOf(caller)))) return yield* new NotFound({ message: `parameter woId: no work order ${text} in this enterprise` })
    return found
  })

const fieldsOf = (wo: WorkOrderRecord): Fields => JSON.parse(wo.fields) as Fields

/** A work order as GetWorkList answers it, and as §2.12.9 pushes it (with the customer's fields and wo_action). */
const rowOf = (wo: WorkOrderRecord, type: TypeRecord, steps: ReadonlyArray<StepRecord>, tz: string) => ({
  woId: String(wo.wo_id),
  wo_wotId: String(wo.wot_id),
  wotName: type.name,
  wo_custId: wo.cust_id === null ? null : String(wo.cust_id),
  woCode: wo.code,
  woPhone: wo.phone,
  woStepId: wo.step,
  wosName: steps.find((s) => s.idx === wo.step)?.name ?? "",
  woQuestion: wo.question,
  woCreate_exteId: wo.create_exte_id,
  woCreate_exteName: wo.create_exte_name,
  woCreateTime: formatLocal(wo.created_ms, tz),
  woEndTime: wo.end_ms === null ? null : formatLocal(wo.end_ms, tz),
  next_exteId: wo.assignee,
  ...fieldsOf(wo)
})

/** The §2.12.9 body: the work order, its customer's fields and phones, and the action. */
const pushBody = (wo: WorkOrderRecord, type: TypeRecord, steps: ReadonlyArray<StepRecord>, action: 1 | 2 | 3 | 4, tz: string) =>
  Effect.gen(function* () {
    const { next_exteId: _, ...row } = rowOf(wo, type, steps, tz)
    const customers = yield* CustomersStore
    const customer = wo.cust_id === null ? undefined : yield* customers.find(wo.comp_number, wo.cust_id)
    const detail = customer === undefined ? undefined : yield* customers.detail(customer)
    const { custId: __, ...customerFields } = detail?.customer ?? { custId: undefined }
    const phones = detail?.customerphone ?? []
    return {
      ...customerFields,
      ...(phones[0] ? { cpPhone1: phones[0].cpPhone } : {}),
      ...(phones[1] ? { cpPhone2: phones[1].cpPhone } : {}),
      ...row,
      wo_action: action
    }
  })

export const getWorkOrderType = (_: ParamsOf<typeof spec.GetWorkOrderType>, caller: Caller) =>
  Effect.map(
    Effect.flatMap(WorkOrdersStore, (store) => store.types(caller.enterprise.comp_number)),
    (types) => ({ rows: types.map((t) => ({ wotId: String(t.wot_id), wotName: t.name })) })
  )

export const getWorkOrderStep = ({ wotId }: ParamsOf<typeof spec.GetWorkOrderStep>, caller: Caller) =>
  Effect.gen(function* () {
    const type = yield* typeOf(caller, "wotId", wotId)
    const steps = yield* (yield* WorkOrdersStore).steps(type.wot_id)
    return { rows: steps.map((s) => ({ wosId: s.wos_id, wosName: s.name, wosIndex: s.idx, wosIsEnd: s.is_end })) }
  })

export const getDeptPersonTree = ({ wotId, wosIndex }: ParamsOf<typeof spec.GetDeptPersonTree>, caller: Caller) =>
  Effect.gen(function* () {
    const store = yield* WorkOrdersStore
    const type = yield* typeOf(caller, "wotId", wotId)
    if (wosIndex !== undefined && !(yield* store.steps(type.wot_id)).some((s) => s.idx === wosIndex))
      return yield* new InvalidParam({ param: "wosIndex", problem: `is not a step of work-order type ${wotId}` })
    const people = yield* store.people(caller.enterprise.comp_number, type.wot_id, wosIndex)
    return { rows: people.map((p) => ({ exteId: p.exte_id, exteExtension: p.extension, exteName: p.name, deptId: p.dept_id })) }
  })

export const loadWorkCode = ({ wotId, fieldname, codeId }: ParamsOf<typeof spec.loadWorkCode>, caller: Caller) =>
  Effect.gen(function* () {
    // woLevel_282983707131016: the field, then the type's id
    const m = /^(wo[A-Za-z0-9]+)_(\d{1,20})$/.exec(fieldname)
    if (m === null) return yield* new InvalidParam({ param: "fieldname", problem: "expected a field and the work-order type's id, such as woLevel_282983707131016" })
    const [, field, ofType] = m as unknown as [string, string, string]
    if (wotId !== undefined && wotId !== ofType) return yield* new InvalidParam({ param: "fieldname", problem: `names type ${ofType} but wotId is ${wotId}` })
    const type = yield* typeOf(caller, "fieldname", ofType)
    const codes = yield* (yield* WorkOrdersStore).codes(type.wot_id, field, codeId)
    return { parentdata: codes.map((c) => ({ codeCode: c.code_code, codeName: c.code_name, codeId: c.code_id, codeParentId: c.parent_id })) }
  })

export const getWorkList = (p: ParamsOf<typeof spec.GetWorkList>, caller: Caller) =>
  Effect.gen(function* () {
    const store = yield* WorkOrdersStore
    const { tz, limits } = yield* AppConfig
    const type = yield* typeOf(caller, "wotId", p.wotId)
    const rows = p.rows ?? DEFAULT_ROWS
    if (rows > limits.pageMax) return yield* new OverLimit({ message: `parameter rows: at most ${limits.pageMax}, got ${rows}` })
    if (p.startTime > p.endTime) return yield* new InvalidParam({ param: "endTime", problem: "is before startTime" })
    const page = p.page ?? 1
    const offset = (page - 1) * rows
    if (!Number.isSafeInteger(offset)) return yield* new OverLimit({ message: `parameter page: ${page} pages of ${rows} rows is past any list` })
    const phoneNorm = p.woOther10 === undefined || p.woOther10 === "" ? undefined : (normalPhone(p.woOther10) ?? p.woOther10)
    const found = yield* store.list({
      compNumber: caller.enterprise.comp_number,
      wotId: type.wot_id,
      from: parseLocal(p.startTime, tz),
      to: parseLocal(p.endTime, tz),
      step: p.stepindex,
      phoneNorm,
      text: p.smemo === undefined || p.smemo === "" ? undefined : p.smemo,
      agent: agentOf(caller),
      offset,
      limit: rows
    })
    const steps = yield* store.steps(type.wot_id)
    return { total: found.total, rows: found.rows.map((wo) => rowOf(wo, type, steps, tz)) }
  })

type UpdateParams = ParamsOf<typeof spec.UpdateWorkOrder>

const EMPTY_CUSTOMER: CustomerValues = {
  name: "",
  corp_name: "",
  status: "",
  qq: "",
  addr: "",
  birthday_type: 0,
  birthday: "",
  source: "",
  age: null,
  area: "",
  sex: "",
  memo: "",
  type: "",
  other1: "",
  other2: "",
  other3: ""
}

/**
 * The customer a work order is about: the one with `cpPhone` (the newest, when several have it),
 * else a new one with that phone and `custName` — through the customers' own store, with its
 * customer.saved event. Without a phone, a name alone creates a customer only for a work order
 * that has none.
 */
const customerFor = (p: UpdateParams, caller: Caller, current: number | null, now: number) =>
  Effect.gen(function* () {
    const customers = yield* CustomersStore
    const outbox = yield* Outbox
    const comp = caller.enterprise.comp_number
    const phone = p.cpPhone === undefined || p.cpPhone.trim() === "" ? undefined : p.cpPhone
    if (phone !== undefined) {
      if (normalPhone(phone) === undefined) return yield* new InvalidParam({ param: "cpPhone", problem: `expected a telephone number, got ${JSON.stringify(phone.slice(0, 80))}` })
      const found = yield* customers.findByPhone(comp, phone)
      if (found !== undefined) return found.cust_id
    } else if (p.custName === undefined || p.custName === "" || current !== null) return current
    const custId = yield* customers.insert(comp, caller.extension.exte_id, { ...EMPTY_CUSTOMER, name: p.custName ?? "" }, phone === undefined ? [] : [{ phone, type: "常用电话", linkMan: "" }], now)
    const saved = yield* customers.find(comp, custId)
    const { customer, customerphone } = yield* customers.detail(saved!)
    yield* outbox.emit({ type: "customer.saved", enterprise: comp, source: "api:UpdateWorkOrder", data: { custId, created: true, by: caller.extension.extension, customer, customerphone } })
    return custId
  })

/** The contract's fields of a work order given in this request (woOtherN, woMoney*, woStepN*). */
const givenFields = (p: UpdateParams, tz: string): Fields => {
  const out: Fields = {}
  for (const [k, v] of Object.entries(p)) {
    if (v === undefined) continue
    if (OTHER_FIELD.test(k) || STEP_FIELD.test(k) || k === "woMoney" || k === "woMoney2") out[k] = typeof v === "number" || typeof v === "string" ? v : String(v)
  }
  // times are kept as the contract writes them, in the bridge's zone
  for (const [k, v] of Object.entries(out)) if (k.endsWith("Time") && typeof v === "string") out[k] = formatLocal(parseLocal(v, tz), tz)
  return out
}

export const updateWorkOrder = (p: UpdateParams, caller: Caller) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const store = yield* WorkOrdersStore
    const outbox = yield* Outbox
    const sqlite = yield* Sqlite
    const targets = yield* Targets
    const extensions = yield* ExtensionsRepo
    const { tz } = yield* AppConfig
    const comp = caller.enterprise.comp_number
    const isNew = p.woId === undefined || /^0+$/.test(p.woId)
    const typeText = p.wo_wotId ?? p.wotId
    if (p.wo_wotId !== undefined && p.wotId !== undefined && p.wo_wotId !== p.wotId)
      return yield* new InvalidParam({ param: "wotId", problem: `differs from wo_wotId (${p.wo_wotId})` })
    if (isNew && typeText === undefined) return yield* new InvalidParam({ param: "wo_wotId", problem: "is missing (or wotId): a new work order needs its type" })
    return yield* sql.withTransaction(
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const existing = isNew ? undefined : yield* workOrderOf(caller, p.woId!)
        if (existing !== undefined && typeText !== undefined && typeText !== String(existing.wot_id))
          return yield* new InvalidParam({ param: p.wo_wotId !== undefined ? "wo_wotId" : "wotId", problem: `is not work order ${existing.wo_id}'s type (${existing.wot_id})` })
        const type = existing !== undefined ? (yield* store.type(comp, existing.wot_id))! : yield* typeOf(caller, p.wo_wotId !== undefined ? "wo_wotId" : "wotId", typeText!)
        const steps = yield* store.steps(type.wot_id)
        const current = existing?.step ?? 1
        // woStepId below the current step returns the work order there; a next handler (or woStepId one past
        // the current) submits it to the next step; woStepId at the current step, as clients echo it, saves it
        const asked = p.woStepId
        if (asked !== undefined && asked > current + 1) return yield* new InvalidParam({ param: "woStepId", problem: `a work order moves one step at a time: it is at step ${current}, got ${asked}` })
        const target = asked !== undefined && asked < current ? asked : p.next_exteId !== undefined || asked === current + 1 ? current + 1 : current
        const to = steps.find((s) => s.idx === target)
        const from = steps.find((s) => s.idx === current)
        // at a step its type no longer has (dropped by a definition of before that was refused): it can only go back
        if (from === undefined && target >= current)
          return yield* new InvalidParam({
            param: "woStepId",
            problem: `work order ${existing?.wo_id} is at step ${current}, which its type no longer has (1 to ${steps.length}): return it to an earlier step`
          })
        if (to === undefined) return yield* new InvalidParam({ param: asked === undefined ? "next_exteId" : "woStepId", problem: `expected a step of the type (1 to ${steps.length}), got ${target}` })
        if (existing?.end_ms != null && target >= current)
          return yield* new InvalidParam({ param: "woId", problem: "the work order has ended: return it to an earlier step (woStepId) to change it" })
        const action: 1 | 2 | 3 | 4 = target === current ? 1 : target < current ? 3 : to.is_end === 1 ? 4 : 2
        const given = givenFields(p, tz)
        // a step's handler, as the client writes it, is an extension of the enterprise like next_exteId
        for (const [k, v] of Object.entries(given))
          if (k.endsWith("_exteId") && typeof v === "number" && Option.isNone(yield* extensions.findById(comp, v)))
            return yield* new InvalidParam({ param: k, problem: `extension ${v} is not an extension of this enterprise` })
        const stored: Fields = existing ? fieldsOf(existing) : {}
        const fields: Fields = { ...stored, ...given }
        const isPersonOf = (idx: number, exteId: number) => Effect.map(store.people(comp, type.wot_id, idx), (people) => people.some((x) => x.exte_id === exteId))
        let assignee = existing?.assignee ?? null
        if (p.next_exteId !== undefined) {
          if (!(yield* isPersonOf(target, p.next_exteId)))
            return yield* new InvalidParam({ param: "next_exteId", problem: `extension ${p.next_exteId} is not one of the people of step ${target} (${to.name})` })
          assignee = p.next_exteId
        } else if (action === 3) {
          // returned to whoever this request names for that step, checked as next_exteId is; else to whoever handled it
          // before, while still one of its people
          const param = `woStep${target}_exteId`
          const named = given[param]
          if (typeof named === "number") {
            if (!(yield* isPersonOf(target, named)))
              return yield* new InvalidParam({ param, problem: `extension ${named} is not one of the people of step ${target} (${to.name})` })
            assignee = named
          } else {
            const before = stored[param]
            assignee = typeof before === "number" && (yield* isPersonOf(target, before)) ? before : target === 1 ? (existing?.create_exte_id ?? null) : null
          }
        } else if (action === 2 || action === 4) assignee = null
        if (action === 2 || action === 4) {
          // the step left is signed by whoever submitted it, unless the client wrote it
          fields[`woStep${current}_exteId`] ??= caller.extension.exte_id
          fields[`woStep${current}_exteName`] ??= caller.extension.name
          fields[`woStep${current}Time`] ??= formatLocal(now, tz)
        }
        const custId = yield* customerFor(p, caller, existing?.cust_id ?? null, now)
        const phone = p.woOther10 ?? p.cpPhone ?? existing?.phone ?? ""
        const values = {
          wot_id: type.wot_id,
          cust_id: custId,
          code: p.woCode ?? existing?.code ?? "",
          phone,
          phone_norm: normalPhone(phone) ?? phone,
          step: target,
          question: p.woQuestion ?? existing?.question ?? "",
          create_exte_id: existing?.create_exte_id ?? caller.extension.exte_id,
          create_exte_name: existing?.create_exte_name ?? caller.extension.name,
          assignee,
          fields: JSON.stringify(fields),
          updated_ms: now,
          end_ms: action === 4 ? now : action === 3 ? null : (existing?.end_ms ?? null)
        }
        let woId: number
        if (existing === undefined) {
          woId = yield* store.insert(comp, values, now)
          // a work order's number, when the client gives none: its day and the id's tail
          if (p.woCode === undefined) yield* store.update(comp, woId, { ...values, code: `${formatLocal(now, tz).slice(0, 10).replaceAll("-", "")}${String(woId % 1_000_000).padStart(6, "0")}` })
        } else {
          woId = existing.wo_id
          yield* store.update(comp, woId, values)
        }
        const saved = (yield* store.find(comp, woId))!
        const data = yield* pushBody(saved, type, steps, action, tz)
        // the step acted at decides whether the type's push URL hears of it (ispost=1: this time regardless)
        const pushes = type.push_url !== null && (p.ispost === 1 || (action === 1 ? from?.push_save : action === 3 ? from?.push_return : from?.push_submit) === 1)
        const pushTarget = pushTargetName(type.wot_id)
        yield* sqlite.exclusive((db, prepared) => {
          const write = () => {
            const eventId = outbox.emitIn(prepared, { type: WORKORDER_EVENT_TYPES[action], enterprise: comp, source: "api:UpdateWorkOrder", data })
            if (eventId === null || !pushes) return
            const deliveryId = outbox.addDeliveryIn(prepared, eventId, pushTarget, null, Date.now())
            // the worker sends only for targets it knows: one gone would leave the push waiting unseen for good
            if (targets.snapshot().every((t) => t.name !== pushTarget)) prepared(DEAD_TARGET_GONE).run(Date.now(), deliveryId)
          }
          if (db.inTransaction) write()
          else db.transaction(write)()
        })
        if (pushes) targets.wakeTargetsSync()
        return { woId: String(woId) }
      })
    )
  })

export const getWorkInfoFile = ({ woId }: ParamsOf<typeof spec.GetWorkInfoFile>, caller: Caller) =>
  Effect.gen(function* () {
    const wo = yield* workOrderOf(caller, woId)
    const files = yield* (yield* WorkOrdersStore).attachments(caller.enterprise.comp_number, wo.wo_id)
    return { rows: files.map((f) => ({ waName: f.name, waPath: attachmentUrl(f.rel_path) })) }
  })

export const ATTACHMENT_PREFIX = "/voip/workorderattachment/"
export const attachmentUrl = (relPath: string) => `${ATTACHMENT_PREFIX}${relPath}`

