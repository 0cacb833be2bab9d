/**
 * Whether the enterprise's blacklist (§2.2.6–2.2.8) holds a number. Entries and the numbers
 * checked meet in one normal form, lastPhoneOf (no formatting, +86/0086 prefix or leading
 * zeros): `+86 138 0013 8000` listed blocks 13800138000, and the other way round.
 */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { NoPermission } from "../api/Errors.js"
import type { Caller } from "../auth/Auth.js"
import { lastPhoneOf } from "../records/CdrStore.js"

/**
 * The condition on blacklist rows that selects the entries standing for `phone`: every lookup,
 * and removal, goes through it so that what blocks a number is what deleting it removes.
 */
export const entriesFor = (sql: SqlClient.SqlClient, phone: string) => {
  const key = lastPhoneOf(phone)
  // a number with no digits left has no normal form: only an entry written the same way matches it
  return key === "" ? sql`phone = ${phone}` : sql`phone_key = ${key}`
}

/** The first of `phones` the enterprise has blacklisted, if any. */
export const firstListed = (compNumber: string, phones: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    for (const phone of phones) {
      const rows = yield* sql<{ phone: string }>`SELECT phone FROM blacklist
        WHERE comp_number = ${compNumber} AND ${entriesFor(sql, phone)} LIMIT 1`
      if (rows.length > 0) return phone
    }
    return undefined
  })

/** -5 naming the parameter whose number is blacklisted: a call to it is not placed. */
export const refuseBlacklisted = (caller: Caller, numbers: ReadonlyArray<readonly [param: string, phone: string]>) =>
  Effect.gen(function* () {
    const listed = yield* firstListed(caller.enterprise.comp_number, numbers.map(([, phone]) => phone))
    if (listed === undefined) return
    const param = numbers.find(([, phone]) => phone === listed)?.[0]
    return yield* new NoPermission({ message: `parameter ${param}: ${listed} is on the enterprise's blacklist` })
  })
