/** How storage failures become contract answers. */
import type { SqlError } from "@effect/sql/SqlError"

const constraintCode = (e: SqlError): string | undefined => {
  const cause: unknown = e.cause
  return typeof cause === "object" && cause !== null && "code" in cause && typeof cause.code === "string"
    ? cause.code
    : undefined
}

/** A UNIQUE or PRIMARY KEY constraint refused the write: the row exists already (-10). */
export const isUniqueViolation = (e: SqlError): boolean => {
  const code = constraintCode(e)
  return code === "SQLITE_CONSTRAINT_UNIQUE" || code === "SQLITE_CONSTRAINT_PRIMARYKEY"
}
