/**
 * Customers' phone numbers: stored as given, matched by one normal form — the call records'
 * own (lastPhoneOf: no spaces, dashes, +86/0086 or leading zeros), so a call links to the
 * customer whose number it dialled however either was written.
 */
import type { Prepared } from "../db/Sqlite.js"
import { lastPhoneOf } from "../records/CdrStore.js"

/** What a customer's phone may be written as: digits, spaces, dashes, parentheses, a leading +. */
const PHONE_SHAPE = /^\+?[\d\s()-]{1,63}$/

/** The number's normal form, or undefined when the text is no phone number (it then matches none). */
export const normalPhone = (phone: string): string | undefined => {
  const trimmed = phone.trim()
  if (!PHONE_SHAPE.test(trimmed)) return undefined
  const norm = lastPhoneOf(trimmed)
  return norm === "" ? undefined : norm
}

/**
 * What a free-text phone field (a memo's cdrPhone) is matched by: a phone number's normal form,
 * "" for one with no digits (matches nothing), and any other text as itself — so text that is no
 * number still finds exactly what was stored with it, and never a number.
 */
export const phoneMatchKey = (text: string): string => {
  const trimmed = text.trim()
  return PHONE_SHAPE.test(trimmed) ? lastPhoneOf(trimmed) : trimmed
}

const CUSTOMER_OF_PHONE = `SELECT cust_id FROM customer_phones WHERE comp_number = ? AND norm = ? ORDER BY cust_id LIMIT 1`
const TOUCH_LAST_CALL = `UPDATE customers SET last_call_ms = ? WHERE cust_id = ? AND (last_call_ms IS NULL OR last_call_ms < ?)`

/**
 * A call of the enterprise's to or from `phone`, at `atMs`: the customer who has that number
 * (the first to have it, when several do) gets it as its last call time unless it has a later one, and
 * its id is answered for the call's events. Synchronous, inside the caller's transaction, and
 * safe to run twice (a group commit re-runs a failed batch's writers).
 */
export const linkCallIn = (prepared: Prepared, compNumber: string, phone: string, atMs: number): number | undefined => {
  const norm = normalPhone(phone)
  if (norm === undefined) return undefined
  const row = prepared(CUSTOMER_OF_PHONE).get(compNumber, norm) as { cust_id: number } | undefined
  if (row === undefined) return undefined
  prepared(TOUCH_LAST_CALL).run(atMs, row.cust_id, atMs)
  return row.cust_id
}
