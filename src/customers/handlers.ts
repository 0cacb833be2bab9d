/**
 * §2.1.9 / §2.6.* / §2.7.3 / §2.8.* — customers and their sales. Every agent sees and changes its
 * enterprise's customers; a customer locked by one extension is changed only by it or an
 * administrator (-5 otherwise). Each change commits with its event.
 */
import { SqlClient } from "@effect/sql"
import { Clock, Effect } from "effect"
import * as spec from "../../schemas/customers.js"
import type { ParamsOf } from "../../schemas/Method.js"
import { InvalidParam, NoPermission, NotFound, OverLimit } from "../api/Errors.js"
import { implement } from "../api/Implementation.js"
import type { Caller } from "../auth/Auth.js"
import { AppConfig } from "../config/AppConfig.js"
import { Outbox } from "../events/Outbox.js"
import { parseLocal } from "../shared/Time.js"
import { WorkOrdersStore } from "../workorders/WorkOrdersStore.js"
import { type CustomerRecord, type CustomerValues, CustomersStore, type PhoneValues, SORT_COLUMNS, type SortField } from "./CustomersStore.js"
import { normalPhone } from "./Phones.js"

const DEFAULT_PAGE = 20
/** A customer's phones at most: recordCount_voip_customer_phone's own bound. */
const MAX_PHONES = 100
const FIRST_PHONE_TYPE = "常用电话"
const PHONE_TYPE_MAX = 50
const LINK_MAN_MAX = 100

const notFound = (custId: number) => new NotFound({ message: `parameter custId: no customer ${custId} in this enterprise` })

/** A customer locked by another extension is its locker's (or an administrator's) to change. */
const mayChange = (c: CustomerRecord, caller: Caller) =>
  c.is_lock === 1 && c.locked_by !== caller.extension.exte_id && !caller.isAdmin
    ? Effect.fail(new NoPermission({ message: `customer ${c.cust_id} is locked by another extension` }))
    : Effect.void

const customerOf = (custId: number, caller: Caller) =>
  Effect.flatMap(CustomersStore, (store) => store.find(caller.enterprise.comp_number, custId)).pipe(
    Effect.flatMap((c) => (c === undefined ? Effect.fail(notFound(custId)) : Effect.succeed(c)))
  )

type SaveParams = ParamsOf<typeof spec.saveCustomer>

/**
 * The phones of a save, checked: one per cpPhone (with its cpType and cpLinkMan at the same
 * index). recordCount_voip_customer_phone, when given, must be their number: an empty cpPhone[i]
 * arrives as no value, which would shift every later phone's type and contact silently.
 * Undefined when the save names no phones (an update then keeps them).
 */
const phonesOf = (p: SaveParams): Effect.Effect<ReadonlyArray<PhoneValues> | undefined, InvalidParam | OverLimit> =>
  Effect.gen(function* () {
    const phones = p.cpPhone ?? []
    const types = p.cpType ?? []
    const linkMen = p.cpLinkMan ?? []
    if (p.cpPhone === undefined && p.recordCount_voip_customer_phone === undefined) {
      if (types.length > 0 || linkMen.length > 0) return yield* new InvalidParam({ param: "cpPhone", problem: "is missing (cpType and cpLinkMan belong to phones)" })
      return undefined
    }
    if (phones.length > MAX_PHONES) return yield* new OverLimit({ message: `parameter cpPhone: at most ${MAX_PHONES} phones, got ${phones.length}` })
    const count = p.recordCount_voip_customer_phone
    if (count !== undefined && count !== phones.length)
      return yield* new InvalidParam({ param: "recordCount_voip_customer_phone", problem: `is ${count} but ${phones.length} cpPhone values were given` })
    if (types.length > phones.length) return yield* new InvalidParam({ param: "cpType", problem: `has ${types.length} values for ${phones.length} phones` })
    if (linkMen.length > phones.length) return yield* new InvalidParam({ param: "cpLinkMan", problem: `has ${linkMen.length} values for ${phones.length} phones` })
    const out: Array<PhoneValues> = []
    for (const [i, phone] of phones.entries()) {
      if (normalPhone(phone) === undefined)
        return yield* new InvalidParam({ param: `cpPhone[${i}]`, problem: `expected a telephone number (digits, spaces, dashes, parentheses, a leading +), got ${JSON.stringify(phone.slice(0, 80))}` })
      // an empty cpType[i] arrives as "" (toRawParams keeps the list's places)
      const type = types[i] || (i === 0 ? FIRST_PHONE_TYPE : "")
      const linkMan = linkMen[i] ?? ""
      if (type.length > PHONE_TYPE_MAX) return yield* new InvalidParam({ param: `cpType[${i}]`, problem: `expected at most ${PHONE_TYPE_MAX} characters, got ${type.length}` })
      if (linkMan.length > LINK_MAN_MAX) return yield* new InvalidParam({ param: `cpLinkMan[${i}]`, problem: `expected at most ${LINK_MAN_MAX} characters, got ${linkMan.length}` })
      out.push({ phone, type, linkMan })
    }
    return out
  })

/** The form's fields; what is not given is empty (a save is the whole form, as the contract's clients send it). */
const valuesOf = (p: SaveParams): CustomerValues => ({
  name: p.custName ?? "",
  corp_name: p.custCorpName ?? "",
  status: p.custStatus ?? "",
  qq: p.custQQ ?? "",
  addr: p.custAddr ?? "",
  birthday_type: p.custBirthdayType ?? 0,
  birthday: p.custBirthday ?? "",
  source: p.custSource ?? "",
  age: p.custAge ?? null,
  area: p.custArea ?? "",
  sex: p.custSex ?? "",
  memo: p.custMemo ?? "",
  type: p.custType ?? "",
  other1: p.custOther1 ?? "",
  other2: p.custOther2 ?? "",
  other3: p.custOther3 ?? ""
})

/** `custName`, `custName asc`, `custCreateTime desc`: a field of SORT_COLUMNS and a direction (ascending unless desc). */
const sortOf = (sortfield: string | undefined) => {
  if (sortfield === undefined) return Effect.succeed({ field: "custId" as SortField, descending: true })
  const m = /^\s*(\w+)(?:\s+(asc|desc))?\s*$/i.exec(sortfield)
  const field = m?.[1]
  if (m === null || field === undefined || !Object.hasOwn(SORT_COLUMNS, field))
    return Effect.fail(new InvalidParam({ param: "sortfield", problem: `expected one of ${Object.keys(SORT_COLUMNS).join(", ")} (optionally followed by asc or desc)` }))
  return Effect.succeed({ field: field as SortField, descending: m[2]?.toLowerCase() === "desc" })
}

export const handlers = [
  implement(spec.saveCustomer, (p, caller) =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const store = yield* CustomersStore
      const outbox = yield* Outbox
      const comp = caller.enterprise.comp_number
      const phones = yield* phonesOf(p)
      const values = valuesOf(p)
      const now = yield* Clock.currentTimeMillis
      return yield* sql.withTransaction(
        Effect.gen(function* () {
          let custId: number
          if (p.custId === undefined) custId = yield* store.insert(comp, caller.extension.exte_id, values, phones ?? [], now)
          else {
            const existing = yield* customerOf(p.custId, caller)
            yield* mayChange(existing, caller)
            custId = existing.cust_id
            yield* store.update(comp, custId, values, phones, now)
          }
          const saved = yield* customerOf(custId, caller)
          const { customer, customerphone } = yield* store.detail(saved)
          yield* outbox.emit({
            type: "customer.saved",
            enterprise: comp,
            source: "api:saveCustomer",
            data: { custId, created: p.custId === undefined, by: caller.extension.extension, customer, customerphone }
          })
          return { custId }
        })
      )
    })
  ),

  implement(spec.getCustomersPage, (p, caller) =>
    Effect.gen(function* () {
      const store = yield* CustomersStore
      const { tz, limits } = yield* AppConfig
      const limit = p.limit ?? DEFAULT_PAGE
      if (limit > limits.pageMax) return yield* new OverLimit({ message: `parameter limit: at most ${limits.pageMax}, got ${limit}` })
      const sort = yield* sortOf(p.sortfield)
      if (p.sqlwhere !== undefined && p.findType === undefined) return yield* new InvalidParam({ param: "findType", problem: "is missing (sqlwhere is searched in the field findType names)" })
      if ((p.startTime !== undefined || p.endTime !== undefined) && p.dateOpt === undefined)
        return yield* new InvalidParam({ param: "dateOpt", problem: "is missing (startTime and endTime are of the time dateOpt names)" })
      if (p.startTime !== undefined && p.endTime !== undefined && p.startTime > p.endTime) return yield* new InvalidParam({ param: "endTime", problem: "is before startTime" })
      const instants = { from: p.startTime === undefined ? undefined : parseLocal(p.startTime, tz), to: p.endTime === undefined ? undefined : parseLocal(p.endTime, tz) }
      const { total, customers, phones } = yield* store.search({
        compNumber: caller.enterprise.comp_number,
        status: p.custStatus,
        type: p.custType,
        isLock: p.custIsLock,
        find: p.findType !== undefined && p.sqlwhere !== undefined ? { field: p.findType, value: p.sqlwhere } : undefined,
        lastCall: p.dateOpt === 1 ? instants : undefined,
        // a birthday is a date: the days of the range, as stored (a lunar birthday as given)
        birthday: p.dateOpt === 2 ? { from: p.startTime?.slice(0, 10), to: p.endTime?.slice(0, 10) } : undefined,
        created: p.dateOpt === 3 ? instants : undefined,
        sort,
        start: p.start ?? 0,
        limit
      })
      return { recordTotal: total, rows_customer: customers, rows_customerphone: phones }
    })
  ),

  implement(spec.getcustomer, ({ phoneNum }, caller) =>
    Effect.gen(function* () {
      const store = yield* CustomersStore
      const found = yield* store.findByPhone(caller.enterprise.comp_number, phoneNum)
      if (found === undefined) return { customer: null, customerphone: [], customersales: [], worktype: [] }
      const worktype = yield* (yield* WorkOrdersStore).ofCustomer(caller.enterprise.comp_number, found.cust_id)
      return { ...(yield* store.detail(found)), worktype }
    })
  ),

  implement(spec.delcustomer, ({ custId }, caller) =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const store = yield* CustomersStore
      const outbox = yield* Outbox
      const comp = caller.enterprise.comp_number
      return yield* sql.withTransaction(
        Effect.gen(function* () {
          yield* mayChange(yield* customerOf(custId, caller), caller)
          yield* store.remove(comp, custId)
          yield* outbox.emit({ type: "customer.deleted", enterprise: comp, source: "api:delcustomer", data: { custId, by: caller.extension.extension } })
          return {}
        })
      )
    })
  ),

  implement(spec.setCustomerLock, ({ custId, custIsLock }, caller) =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const store = yield* CustomersStore
      const outbox = yield* Outbox
      const comp = caller.enterprise.comp_number
      const now = yield* Clock.currentTimeMillis
      return yield* sql.withTransaction(
        Effect.gen(function* () {
          // locking over another's lock, or lifting it, is a change of a locked customer like any other
          yield* mayChange(yield* customerOf(custId, caller), caller)
          yield* store.setLock(comp, custId, custIsLock === 1 ? caller.extension.exte_id : null, now)
          yield* outbox.emit({ type: "customer.locked", enterprise: comp, source: "api:setCustomerLock", data: { custId, custIsLock, by: caller.extension.extension } })
          return {}
        })
      )
    })
  ),

  implement(spec.getCustomerSales, ({ phoneNum }, caller) =>
    Effect.gen(function* () {
      const store = yield* CustomersStore
      const comp = caller.enterprise.comp_number
      const found = yield* store.findByPhone(comp, phoneNum)
      return { customersales: found === undefined ? [] : yield* store.salesOf(comp, found.cust_id) }
    })
  ),

  implement(spec.setCustomerSales, (p, caller) =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const store = yield* CustomersStore
      const outbox = yield* Outbox
      const comp = caller.enterprise.comp_number
      const now = yield* Clock.currentTimeMillis
      if (p.extension !== undefined && !p.extension.startsWith(comp))
        return yield* new NotFound({ message: `parameter extension: ${p.extension} is not an extension of this enterprise` })
      return yield* sql.withTransaction(
        Effect.gen(function* () {
          const existing = p.csId === undefined ? undefined : yield* store.findSale(comp, p.csId)
          if (p.csId !== undefined && existing === undefined) return yield* new NotFound({ message: `parameter csId: no sale ${p.csId} in this enterprise` })
          // the sale's customer: named, the existing sale's, or the one who has the phone
          let customer: CustomerRecord | undefined
          if (p.custId !== undefined) customer = yield* customerOf(p.custId, caller)
          else if (existing !== undefined) customer = yield* customerOf(existing.cust_id, caller)
          else if (p.phone !== undefined) {
            customer = yield* store.findByPhone(comp, p.phone)
            if (customer === undefined) return yield* new NotFound({ message: `parameter phone: no customer has ${p.phone}` })
          } else return yield* new InvalidParam({ param: "custId", problem: "is missing (a new sale is of a customer: custId, or a phone of one)" })
          yield* mayChange(customer, caller)
          // a sale moved to another customer is a change of the one it leaves too: its lock holds
          if (existing !== undefined && existing.cust_id !== customer.cust_id) yield* mayChange(yield* customerOf(existing.cust_id, caller), caller)
          const values = {
            cust_id: customer.cust_id,
            extension: p.extension ?? existing?.extension ?? caller.extension.extension,
            cust_type: p.custType ?? existing?.cust_type ?? customer.type,
            status: p.status,
            phone: p.phone ?? existing?.phone ?? ""
          }
          const csId = existing === undefined ? yield* store.insertSale(comp, values, now) : existing.cs_id
          if (existing !== undefined) yield* store.updateSale(comp, csId, values, now)
          const sale = yield* store.saleById(comp, csId)
          yield* outbox.emit({ type: "sale.saved", enterprise: comp, source: "api:setCustomerSales", data: { csId, custId: customer.cust_id, formerCustId: existing !== undefined && existing.cust_id !== customer.cust_id ? existing.cust_id : null, created: existing === undefined, by: caller.extension.extension, sale } })
          return { csId }
        })
      )
    })
  )
]
