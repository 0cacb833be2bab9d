/**
 * Who may reach a recording through a call record. Agents write their own call records
 * (addCdrRecord) and name any file in them, so a call naming a recording proves nothing when
 * another agent uploaded that recording: that would hand one agent another's audio for the
 * price of guessing its name.
 */
import type { SqlClient } from "@effect/sql"
import type { Fragment } from "@effect/sql/Statement"
import { EXTE_STATUS } from "../extensions/ExtensionsRepo.js"

/**
 * SQL condition on the recordings row aliased `r`: an agent (`viewer`, its exte_id) may reach
 * it through a call of its own unless another agent uploaded it. The platform's and the box's
 * recordings (no uploader), the agent's own and an administrator's uploads (made for the
 * enterprise's calls) are reached through the call that names them.
 */
export const reachableThroughCall = (sql: SqlClient.SqlClient, viewer: number): Fragment =>
  sql`(r.uploaded_by IS NULL OR r.uploaded_by = ${viewer}
    OR EXISTS (SELECT 1 FROM extensions u WHERE u.exte_id = r.uploaded_by AND u.status = ${EXTE_STATUS.admin}))`
