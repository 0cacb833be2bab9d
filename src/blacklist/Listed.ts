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
 * and removal, goes through it so that deleting a number removes only entries that block it.
 */
export const entriesFor = (sql: SqlClient.SqlClient, phone: string) => {
  const key = lastPhoneOf(phone)
  // a number with no digits left has no normal form: only an entry written the same way matches it
  return key === "" ? sql`phone = ${phone}` : sql`phone_key = ${key}`
}

/**
 * The digits after the `+` or `00` of a number written as a foreign international one (not
 * +86/0086): the normal form drops that prefix, so +1 312 345 6789 shares its key with the
 * Chinese mobile 13123456789. Undefined for a domestic or +86 number.
 */
const foreignDigits = (phone: string): string | undefined => {
  const m = /^(?:\++|00)(\d+)$/.exec(phone.replace(/[^\d+]/g, ""))
  return m && !m[1]!.startsWith("86") ? m[1] : undefined
}

/**
 * Removes the enterprise's entries that deleting `phone` names, as they were written. Among the
 * entries of its normal form (what blocks it), a foreign international number removes only the
 * same international number, and a domestic or +86 number no foreign one: a key shared across
 * countries must not let one number's removal unblock another. Blocking keeps matching by the
 * normal form alone — over-blocking is the safe direction.
 */
export const removeEntries = (compNumber: string, phone: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const foreign = foreignDigits(phone)
    const rows = yield* sql<{ phone: string }>`SELECT phone FROM blacklist WHERE comp_number = ${compNumber} AND ${entriesFor(sql, phone)}`
    const named = rows.map((r) => r.phone).filter((listed) => foreignDigits(listed) === foreign)
    if (named.length === 0) return []
    return yield* sql<{ phone: string }>`DELETE FROM blacklist WHERE comp_number = ${compNumber} AND phone IN ${sql.in(named)} RETURNING phone`
  })

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
