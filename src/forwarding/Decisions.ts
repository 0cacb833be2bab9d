/**
 * The delivery worker's decisions, as plain functions of what happened and when: what an
 * answer means for a delivery, when it is tried again, what it does to its target's circuit,
 * and how long an outcome that cannot be written is tried again. No I/O here.
 */
import type { SqlError } from "@effect/sql/SqlError"
import { Duration, Schedule } from "effect"
import { isStorageUnavailable } from "../shared/Sql.js"

/**
 * How long an outcome that could not be written is tried again, from when recording starts
 * (not from the claim: a send that ran long must not leave it no time at all). A claim's
 * lease covers the send's time-out and this.
 */
export const RECORD_WINDOW_MS = 60_000

/**
 * An outcome's write is tried again only while storage refuses it for now (disk full, the
 * database locked too long): 100 ms doubling, at most 2 s apart, for RECORD_WINDOW_MS. Any other
 * error would fail again the same way: it fails at once, freeing the target's slot.
 */
export const recordRetry = {
  schedule: Schedule.upTo(
    Schedule.union(Schedule.exponential(Duration.millis(100)), Schedule.spaced(Duration.seconds(2))),
    Duration.millis(RECORD_WINDOW_MS)
  ),
  while: (e: SqlError) => isStorageUnavailable(e)
}
