/**
 * The recordings table: what an upload stores (its row and its event, together), and what a
 * download may reach. Who may see what is decided by the routes; the SQL is here.
 */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import type { Caller } from "../auth/Auth.js"
import type { Prepared } from "../db/Sqlite.js"
import { type NewEvent, Outbox } from "../events/Outbox.js"
import { reachableThroughCall } from "./Access.js"

export interface RecordingRecord {
  readonly id: number
  readonly comp_number: string
  readonly file_name: string
  readonly rel_path: string
  readonly md5: string
  readonly size: number
  readonly content_type: string
}

export interface NewRecording extends RecordingRecord {
  /** the extension (exte_id) that uploaded it */
  readonly uploaded_by: number
  readonly created_at: number
}

export class RecordingsStore extends Effect.Service<RecordingsStore>()("RecordingsStore", {
  dependencies: [Outbox.Default],
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const outbox = yield* Outbox

    /** the enterprise's recording of that name, if it has one */
    const named = (comp: string, name: string) =>
      Effect.map(sql<RecordingRecord>`SELECT * FROM recordings WHERE comp_number = ${comp} AND file_name = ${name}`, (rows) => rows[0])

    /** the row and its event commit together, or neither does */
    const insert = (row: NewRecording, event: NewEvent) => sql.withTransaction(Effect.zipRight(sql`INSERT INTO recordings ${sql.insert({ ...row })}`, outbox.emit(event)))

    /**
     * Whether an agent may reach the recording at `relative` (under the record directory): one
     * it uploaded, or one a call of its own (`own`: its extension) names unless another agent
     * uploaded it (Access.ts). A file without a row is nobody's call.
     */
    const reachableByAgent = (caller: Caller, own: string, relative: string) =>
      Effect.map(
        sql<{ ok: number }>`SELECT 1 AS ok FROM recordings r WHERE r.comp_number = ${caller.enterprise.comp_number} AND r.rel_path = ${relative}
          AND (r.uploaded_by = ${caller.extension.exte_id}
            OR (${reachableThroughCall(sql, caller.extension.exte_id)}
              AND EXISTS (SELECT 1 FROM cdrs c WHERE c.comp_number = r.comp_number AND c.record_file = r.file_name AND c.extension = ${own})))`,
        (rows) => rows.length > 0
      )

    /**
     * The recording a call record (its platform id or ours) names. `caller` undefined: any
     * enterprise's; `own` (an agent's extension): only its own calls' recordings it may reach.
     */
    const forCallRecord = (id: string, caller: Caller | undefined, own: string | undefined) => {
      const asNumber = Number(id)
      return Effect.map(
        sql<RecordingRecord>`SELECT r.* FROM cdrs c JOIN recordings r ON r.comp_number = c.comp_number AND r.file_name = c.record_file
          WHERE (c.platform_cdr_id = ${id} ${Number.isSafeInteger(asNumber) ? sql`OR c.cdr_id = ${asNumber}` : sql``})
          ${caller !== undefined ? sql`AND c.comp_number = ${caller.enterprise.comp_number}` : sql``}
          ${caller !== undefined && own !== undefined ? sql`AND c.extension = ${own} AND ${reachableThroughCall(sql, caller.extension.exte_id)}` : sql``} LIMIT 1`,
        (rows) => rows[0]
      )
    }

    /** The row alone, on the caller's connection inside its transaction (the box's upload commits it with its call and events). */
    const insertIn = (prepared: Prepared, row: Omit<NewRecording, "uploaded_by"> & { readonly uploaded_by: number | null }) =>
      prepared(
        `INSERT INTO recordings (id, comp_number, file_name, rel_path, md5, size, content_type, uploaded_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
      ).run(row.id, row.comp_number, row.file_name, row.rel_path, row.md5, row.size, row.content_type, row.uploaded_by, row.created_at)

    return { named, insert, insertIn, reachableByAgent, forCallRecord } as const
  })
}) {}
