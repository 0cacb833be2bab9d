/** How storage failures become contract answers. */
import type { SqlError } from "@effect/sql/SqlError"

const sqliteCode = (e: SqlError): string | undefined => {
  const cause: unknown = e.cause
  return typeof cause === "object" && cause !== null && "code" in cause && typeof cause.code === "string"
    ? cause.code
    : undefined
}

/** A UNIQUE or PRIMARY KEY constraint refused the write: the row exists already (-10). */
export const isUniqueViolation = (e: SqlError): boolean => {
  const code = sqliteCode(e)
  return code === "SQLITE_CONSTRAINT_UNIQUE" || code === "SQLITE_CONSTRAINT_PRIMARYKEY"
}

/**
 * The storage refused a write for now — disk full, I/O error, read-only, locked — as opposed to
 * a statement that is wrong: the same write may succeed later.
 */
export const isStorageUnavailable = (e: SqlError): boolean => {
  const code = sqliteCode(e) ?? ""
  return /^SQLITE_(FULL|IOERR|READONLY|BUSY|LOCKED|CANTOPEN)/.test(code)
}
