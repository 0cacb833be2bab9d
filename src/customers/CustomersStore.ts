/**
 * Customers, their phones and sales, per enterprise. Every statement names the enterprise:
 * an id of another enterprise's customer reads as no customer. Writers run inside their
 * caller's transaction, so a change and its event commit together.
 */
import { SqlClient } from "@effect/sql"
import type { Fragment } from "@effect/sql/Statement"
import { Effect } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { Ids } from "../shared/Ids.js"
import { formatLocal } from "../shared/Time.js"
import { normalPhone } from "./Phones.js"

export interface CustomerRecord {
  readonly cust_id: number
  readonly comp_number: string
  readonly name: string
  readonly corp_name: string
  readonly status: string
  readonly qq: string
  readonly addr: string
  readonly birthday_type: number
  readonly birthday: string
  readonly source: string
  readonly age: number | null
  readonly area: string
  readonly sex: string
  readonly memo: string
  readonly type: string
  readonly other1: string
  readonly other2: string
  readonly other3: string
  readonly is_lock: number
  readonly locked_by: number | null
  readonly created_ms: number
  readonly last_call_ms: number | null
}

/** The columns a save writes (the contract's whole form). */
export type CustomerValues = Pick<
  CustomerRecord,
  "name" | "corp_name" | "status" | "qq" | "addr" | "birthday_type" | "birthday" | "source" | "age" | "area" | "sex" | "memo" | "type" | "other1" | "other2" | "other3"
>

export interface PhoneValues {
  readonly phone: string
  readonly type: string
  readonly linkMan: string
}

interface PhoneRecord {
  readonly cust_id: number
  readonly seq: number
  readonly phone: string
  readonly type: string
  readonly link_man: string
}

interface SaleRecord {
  readonly cs_id: number
  readonly cust_id: number
  readonly extension: string
  readonly cust_type: string
  readonly status: number
  readonly phone: string
  readonly created_ms: number
}

export interface SaleValues {
  readonly cust_id: number
  readonly extension: string
  readonly cust_type: string
  readonly status: number
  readonly phone: string
}

/** getCustomersPage's sort fields (contract name → column); anything else is refused. */
export const SORT_COLUMNS = {
  custId: "cust_id",
  custCreateTime: "created_ms",
  custLastCallTime: "last_call_ms",
  custName: "name",
  custCorpName: "corp_name",
  custBirthday: "birthday",
  custStatus: "status",
  custType: "type"
} as const
export type SortField = keyof typeof SORT_COLUMNS

export interface CustomerFilter {
  readonly compNumber: string
  readonly status?: string | undefined
  readonly type?: string | undefined
  readonly isLock?: number | undefined
  /** what sqlwhere is matched against: a prefix of the name, the company or one of the phones */
  readonly find?: { readonly field: "cpPhone" | "custCorpName" | "custName"; readonly value: string } | undefined
  readonly lastCall?: Range<number> | undefined
  readonly created?: Range<number> | undefined
  readonly birthday?: Range<string> | undefined
  readonly sort: { readonly field: SortField; readonly descending: boolean }
  readonly start: number
  readonly limit: number
}
export interface Range<A> {
  readonly from?: A | undefined
  readonly to?: A | undefined
}

/** LIKE's own characters in a value, escaped with `\` (the statements say ESCAPE '\'). */
const likeEscaped = (value: string) => value.replace(/[\\%_]/g, (c) => `\\${c}`)

/**
 * The least text above every text that starts with `prefix` (its last character's successor),
 * so `col >= prefix AND col < after` is an index range: SQLite ignores an index for a LIKE
 * with an ESCAPE clause. Undefined when there is none (a prefix ending in U+10FFFF).
 */
const afterPrefix = (prefix: string): string | undefined => {
  const chars = Array.from(prefix)
  const last = chars.pop()?.codePointAt(0)
  if (last === undefined || last >= 0x10ffff) return undefined
  // the successor of a high surrogate's range start is not a character: skip the surrogates
  const next = last + 1 === 0xd800 ? 0xe000 : last + 1
  return chars.join("") + String.fromCodePoint(next)
}

export class CustomersStore extends Effect.Service<CustomersStore>()("CustomersStore", {
  dependencies: [Ids.Default],
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const ids = yield* Ids
    const { tz } = yield* AppConfig

    const customerRow = (c: CustomerRecord) => ({
      custId: c.cust_id,
      custName: c.name,
      custCorpName: c.corp_name,
      custStatus: c.status,
      custQQ: c.qq,
      custAddr: c.addr,
      custBirthdayType: c.birthday_type,
      custBirthday: c.birthday,
      custSource: c.source,
      custAge: c.age,
      custArea: c.area,
      custSex: c.sex,
      custMemo: c.memo,
      custType: c.type,
      custOther1: c.other1,
      custOther2: c.other2,
      custOther3: c.other3,
      custIsLock: c.is_lock,
      custCreateTime: formatLocal(c.created_ms, tz),
      custLastCallTime: c.last_call_ms === null ? null : formatLocal(c.last_call_ms, tz)
    })
    const phoneRow = (p: PhoneRecord) => ({ cp_custId: p.cust_id, cpPhone: p.phone, cpType: p.type, cpLinkMan: p.link_man })
    const saleRow = (s: SaleRecord) => ({
      csId: s.cs_id,
      cs_custId: s.cust_id,
      csExtension: s.extension,
      csCustType: s.cust_type,
      csStatus: s.status,
      csPhone: s.phone,
      csTime: formatLocal(s.created_ms, tz)
    })

    const find = (compNumber: string, custId: number) =>
      Effect.map(sql<CustomerRecord>`SELECT * FROM customers WHERE comp_number = ${compNumber} AND cust_id = ${custId}`, (rows) => rows[0])

    /** The customer who has this number (the first to have it, when several do: a later customer of the same number never takes its calls or sales over). */
    const findByPhone = (compNumber: string, phone: string) =>
      Effect.gen(function* () {
        const norm = normalPhone(phone)
        if (norm === undefined) return undefined
        const rows = yield* sql<CustomerRecord>`SELECT c.* FROM customers c WHERE c.comp_number = ${compNumber} AND c.cust_id =
          (SELECT p.cust_id FROM customer_phones p WHERE p.comp_number = ${compNumber} AND p.norm = ${norm} ORDER BY p.cust_id LIMIT 1)`
        return rows[0]
      })

    const phonesOf = (custIds: ReadonlyArray<number>) =>
      custIds.length === 0
        ? Effect.succeed([] as ReadonlyArray<PhoneRecord>)
        : sql<PhoneRecord>`SELECT cust_id, seq, phone, type, link_man FROM customer_phones WHERE ${sql.in("cust_id", custIds)} ORDER BY cust_id, seq`

    const salesOf = (compNumber: string, custId: number) =>
      sql<SaleRecord>`SELECT * FROM customer_sales WHERE comp_number = ${compNumber} AND cust_id = ${custId} ORDER BY cs_id DESC`

    const replacePhones = (compNumber: string, custId: number, phones: ReadonlyArray<PhoneValues>) =>
      Effect.gen(function* () {
        yield* sql`DELETE FROM customer_phones WHERE cust_id = ${custId}`
        for (const [seq, p] of phones.entries()) {
          const cpId = yield* ids.next
          yield* sql`INSERT INTO customer_phones ${sql.insert({
            cp_id: cpId,
            cust_id: custId,
            comp_number: compNumber,
            seq,
            phone: p.phone,
            norm: normalPhone(p.phone) ?? "",
            type: p.type,
            link_man: p.linkMan
          })}`
        }
      })

    /** A new customer; its phones, when given. Answers its id. */
    const insert = (compNumber: string, by: number, values: CustomerValues, phones: ReadonlyArray<PhoneValues>, now: number) =>
      Effect.gen(function* () {
        const custId = yield* ids.next
        yield* sql`INSERT INTO customers ${sql.insert({ cust_id: custId, comp_number: compNumber, ...values, is_lock: 0, created_by: by, created_ms: now, updated_ms: now })}`
        yield* replacePhones(compNumber, custId, phones)
        return custId
      })

    /** The whole form again; the phones only when given (undefined: kept). */
    const update = (compNumber: string, custId: number, values: CustomerValues, phones: ReadonlyArray<PhoneValues> | undefined, now: number) =>
      Effect.gen(function* () {
        yield* sql`UPDATE customers SET ${sql.update({ ...values, updated_ms: now })} WHERE comp_number = ${compNumber} AND cust_id = ${custId}`
        if (phones !== undefined) yield* replacePhones(compNumber, custId, phones)
      })

    const remove = (compNumber: string, custId: number) =>
      Effect.gen(function* () {
        yield* sql`DELETE FROM customer_sales WHERE comp_number = ${compNumber} AND cust_id = ${custId}`
        yield* sql`DELETE FROM customer_phones WHERE comp_number = ${compNumber} AND cust_id = ${custId}`
        yield* sql`DELETE FROM customers WHERE comp_number = ${compNumber} AND cust_id = ${custId}`
      })

    const setLock = (compNumber: string, custId: number, lockedBy: number | null, now: number) =>
      sql`UPDATE customers SET is_lock = ${lockedBy === null ? 0 : 1}, locked_by = ${lockedBy}, updated_ms = ${now}
        WHERE comp_number = ${compNumber} AND cust_id = ${custId}`

    /** A customer in the contract's shape, with its phones and sales. */
    const detail = (c: CustomerRecord) =>
      Effect.all({ phones: phonesOf([c.cust_id]), sales: salesOf(c.comp_number, c.cust_id) }).pipe(
        Effect.map(({ phones, sales }) => ({ customer: customerRow(c), customerphone: phones.map(phoneRow), customersales: sales.map(saleRow) }))
      )

    /** A prefix match on `column`: an index range, and LIKE saying the same in standard SQL. */
    const startsWith = (column: string, value: string): Fragment => {
      const after = afterPrefix(value)
      const col = sql.literal(column)
      return sql.and([
        sql`${col} >= ${value}`,
        ...(after === undefined ? [] : [sql`${col} < ${after}`]),
        sql`${col} LIKE ${`${likeEscaped(value)}%`} ESCAPE '\\'`
      ])
    }
    const within = <A extends string | number>(column: string, range: Range<A> | undefined): ReadonlyArray<Fragment> => {
      const col = sql.literal(column)
      return [...(range?.from !== undefined ? [sql`${col} >= ${range.from}`] : []), ...(range?.to !== undefined ? [sql`${col} <= ${range.to}`] : [])]
    }

    /** getCustomersPage: the total and one page of customers with their phones. */
    const search = (f: CustomerFilter) =>
      Effect.gen(function* () {
        const where: Array<Fragment> = [sql`c.comp_number = ${f.compNumber}`]
        if (f.status !== undefined) where.push(sql`c.status = ${f.status}`)
        if (f.type !== undefined) where.push(sql`c.type = ${f.type}`)
        if (f.isLock !== undefined) where.push(sql`c.is_lock = ${f.isLock}`)
        if (f.find?.field === "custName") where.push(startsWith("c.name", f.find.value))
        if (f.find?.field === "custCorpName") where.push(startsWith("c.corp_name", f.find.value))
        if (f.find?.field === "cpPhone") {
          const norm = normalPhone(f.find.value)
          // what is not a phone number is no customer's: nothing matches it
          if (norm === undefined) return { total: 0, customers: [], phones: [] }
          where.push(sql`c.cust_id IN (SELECT p.cust_id FROM customer_phones p WHERE p.comp_number = ${f.compNumber} AND ${startsWith("p.norm", norm)})`)
        }
        where.push(...within("c.last_call_ms", f.lastCall), ...within("c.created_ms", f.created), ...within("c.birthday", f.birthday))
        // a birthday range is of those who have one
        if (f.birthday !== undefined) where.push(sql`c.birthday <> ''`)
        const condition = sql.and(where)
        const dir = f.sort.descending ? "DESC" : "ASC"
        const order = sql.literal(`c.${SORT_COLUMNS[f.sort.field]} ${dir}, c.cust_id ${dir}`)
        const counted =
          where.length === 1
            ? yield* sql<{ n: number }>`SELECT n FROM customer_counts WHERE comp_number = ${f.compNumber}`
            : yield* sql<{ n: number }>`SELECT count(*) AS n FROM customers c WHERE ${condition}`
        const total = counted[0]?.n ?? 0
        if (f.limit === 0 || f.start >= total) return { total, customers: [], phones: [] }
        // the page's ids first: OFFSET skips index entries, not whole rows
        const rows = yield* sql<CustomerRecord>`SELECT c.* FROM customers c WHERE c.cust_id IN
          (SELECT c.cust_id FROM customers c WHERE ${condition} ORDER BY ${order} LIMIT CAST(${f.limit} AS INTEGER) OFFSET ${f.start}) ORDER BY ${order}`
        const phones = yield* phonesOf(rows.map((r) => r.cust_id))
        const position = new Map(rows.map((r, i) => [r.cust_id, i]))
        const ordered = [...phones].sort((a, b) => position.get(a.cust_id)! - position.get(b.cust_id)! || a.seq - b.seq)
        return { total, customers: rows.map(customerRow), phones: ordered.map(phoneRow) }
      })

    const findSale = (compNumber: string, csId: number) =>
      Effect.map(sql<SaleRecord>`SELECT * FROM customer_sales WHERE comp_number = ${compNumber} AND cs_id = ${csId}`, (rows) => rows[0])

    const insertSale = (compNumber: string, values: SaleValues, now: number) =>
      Effect.gen(function* () {
        const csId = yield* ids.next
        yield* sql`INSERT INTO customer_sales ${sql.insert({ cs_id: csId, comp_number: compNumber, ...values, created_ms: now, updated_ms: now })}`
        return csId
      })

    const updateSale = (compNumber: string, csId: number, values: SaleValues, now: number) =>
      sql`UPDATE customer_sales SET ${sql.update({ ...values, updated_ms: now })} WHERE comp_number = ${compNumber} AND cs_id = ${csId}`

    const saleById = (compNumber: string, csId: number) => Effect.map(findSale(compNumber, csId), (s) => (s === undefined ? undefined : saleRow(s)))

    return {
      find,
      findByPhone,
      detail,
      customerRow,
      insert,
      update,
      remove,
      setLock,
      search,
      salesOf: (compNumber: string, custId: number) => Effect.map(salesOf(compNumber, custId), (rows) => rows.map(saleRow)),
      findSale,
      saleById,
      insertSale,
      updateSale
    } as const
  })
}) {}
