/** Scheduled work: a name, a cron expression (node-cron syntax, seconds optional) and an Effect. */
import type { Effect } from "effect"
import type { AppServices } from "../AppServices.js"
import type { AppConfigShape } from "../config/AppConfig.js"

export interface Job {
  readonly name: string
  /** e.g. "*\/5 * * * * *" (every 5 s) or "0 3 * * *" (03:00 daily, in the configured zone) */
  readonly schedule: string | ((config: AppConfigShape) => string)
  readonly run: Effect.Effect<void, unknown, AppServices>
}
