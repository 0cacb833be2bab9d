/** Whom a template's message can @-mention: the extension's mobile, as the extensions table knows it. */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import type { MobileOf } from "./Attempt.js"

export const mobileLookup: Effect.Effect<MobileOf, never, SqlClient.SqlClient> = Effect.map(
  SqlClient.SqlClient,
  (sql) => (extension) =>
    sql<{ mobile: string }>`SELECT mobile FROM extensions WHERE extension = ${extension}`.pipe(
      Effect.map((rows) => rows[0]?.mobile.trim() || undefined),
      // a message without its mention beats no message: the delivery goes on
      Effect.catchAll((e) => Effect.as(Effect.logWarning("the extension's mobile could not be read; the message goes without a mention", e), undefined))
    )
)
