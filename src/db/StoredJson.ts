/**
 * JSON text kept in a column (events' data and raw, call records' fields), read back safely:
 * a row stored before input nesting was limited may nest thousands deep, and parsing or
 * serialising it again (a listing, a delivery, a findDialrecord page) would overflow the stack.
 */
import { Either } from "effect"
import { nestingOf } from "../../schemas/Param.js"

/**
 * Stored JSON deeper than this is not read back. What the bridge takes in now nests a few
 * levels more than JSON_LIMITS.depth at most.
 */
export const STORED_JSON_MAX_DEPTH = 256

/** The stored value, or why it cannot be read back. */
export const readStored = (text: string): Either.Either<unknown, string> => {
  if (nestingOf(text, STORED_JSON_MAX_DEPTH) > STORED_JSON_MAX_DEPTH) return Either.left(`nested deeper than ${STORED_JSON_MAX_DEPTH} levels`)
  try {
    return Either.right(JSON.parse(text) as unknown)
  } catch (e) {
    return Either.left(`not JSON: ${e instanceof Error ? e.message : String(e)}`)
  }
}

/** For a listing: a value that cannot be read back is listed as unreadable, never fails the page. */
export const storedData = (text: string): { readonly data: unknown; readonly unreadable?: true } =>
  Either.match(readStored(text), { onLeft: () => ({ data: null, unreadable: true }), onRight: (data) => ({ data }) })
