/**
 * Runs the registered jobs on node-cron, in the configured zone, never two runs of one job
 * at once. A failing run is logged and the next one happens as scheduled. Part of the app's
 * layers: stopped (and running jobs interrupted) when the runtime is disposed.
 */
import cron from "node-cron"
import { Cause, Effect, Fiber, Layer, Runtime } from "effect"
import type { AppServices } from "../AppServices.js"
import { AppConfig } from "../config/AppConfig.js"
import type { Job } from "./Job.js"
import { jobs as registered } from "./registry.js"

export const cronJobsLayer = (jobs: ReadonlyArray<Job> = registered) =>
  Layer.scopedDiscard(
    Effect.gen(function* () {
      const config = yield* AppConfig
      const runtime = yield* Effect.runtime<AppServices>()
      const running = new Set<Fiber.RuntimeFiber<void, never>>()
      const tasks = jobs.map((job) =>
        cron.schedule(
          typeof job.schedule === "string" ? job.schedule : job.schedule(config),
          () =>
            new Promise<void>((resolve) => {
              const fiber = Runtime.runFork(runtime)(
                job.run.pipe(
                  Effect.catchAllCause((cause) =>
                    Cause.isInterruptedOnly(cause) ? Effect.void : Effect.logError("scheduled job failed", cause)
                  ),
                  Effect.annotateLogs({ job: job.name })
                )
              )
              running.add(fiber)
              fiber.addObserver(() => {
                running.delete(fiber)
                resolve()
              })
            }),
          { name: job.name, timezone: config.tz, noOverlap: true }
        )
      )
      yield* Effect.addFinalizer(() =>
        Effect.gen(function* () {
          for (const t of tasks) yield* Effect.promise(async () => t.destroy())
          yield* Fiber.interruptAll(running)
        })
      )
    })
  )
