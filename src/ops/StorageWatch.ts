/**
 * Free space under the data directory, watched: an operator hears that the disk is filling
 * (a `storage.low` event to the targets that want it, a warning in the log, a gauge in
 * /metrics, a line in /readyz) while pushes are still stored — not first from senders
 * whose pushes are refused. `storage.ok` says when space came back.
 */
import * as fs from "node:fs"
import { Effect, Layer, Schedule } from "effect"
import * as prom from "prom-client"
import { AppConfig } from "../config/AppConfig.js"
import { Outbox } from "../events/Outbox.js"
import { Metrics } from "../http/Metrics.js"

export interface StorageState {
  readonly freeBytes: number | null
  readonly totalBytes: number | null
  readonly low: boolean
  readonly lowBelowBytes: number
  readonly checkedAt: number | null
}

export class StorageWatch extends Effect.Service<StorageWatch>()("StorageWatch", {
  dependencies: [Outbox.Default, Metrics.Default],
  effect: Effect.gen(function* () {
    const config = yield* AppConfig
    const outbox = yield* Outbox
    const { registry } = yield* Metrics
    const lowBelowBytes = config.storage.lowFreeBytes
    let state: StorageState = { freeBytes: null, totalBytes: null, low: false, lowBelowBytes, checkedAt: null }
    const gauge = new prom.Gauge({
      name: "bridge_storage_free_bytes",
      help: "Free bytes on the file system of the data directory (for the bridge's user)",
      registers: [registry],
      collect() {
        if (state.freeBytes !== null) this.set(state.freeBytes)
      }
    })

    /** Reads the free space; raises storage.low / storage.ok when it crosses the threshold. */
    const check = Effect.gen(function* () {
      const stats = yield* Effect.try({ try: () => fs.statfsSync(config.dataDir), catch: (e) => e })
      const freeBytes = stats.bavail * stats.bsize
      const totalBytes = stats.blocks * stats.bsize
      const low = freeBytes < lowBelowBytes
      const was = state.low
      state = { freeBytes, totalBytes, low, lowBelowBytes, checkedAt: Date.now() }
      if (low === was) return
      const data = { dataDir: config.dataDir, freeBytes, totalBytes, lowBelowBytes }
      if (low) yield* Effect.logWarning("the data directory's disk is nearly full: free space before pushes are refused").pipe(Effect.annotateLogs(data))
      else yield* Effect.logInfo("the data directory's disk has room again").pipe(Effect.annotateLogs(data))
      // a failed write (the disk may be full already) is logged, and the next check tries again
      yield* outbox.emit({ type: low ? "storage.low" : "storage.ok", enterprise: null, source: "bridge", data }).pipe(
        Effect.tapError(() => Effect.sync(() => (state = { ...state, low: was })))
      )
    }).pipe(Effect.catchAll((e) => Effect.logError("free space could not be checked or reported", e)))

    return { check, state: () => state, gauge } as const
  })
}) {}

/** Checks at start and then every `storage.checkIntervalMs`, for as long as the bridge runs. */
export const storageWatchLayer = Layer.scopedDiscard(
  Effect.gen(function* () {
    const watch = yield* StorageWatch
    const { storage } = yield* AppConfig
    yield* Effect.forkScoped(Effect.repeat(watch.check, Schedule.spaced(`${storage.checkIntervalMs} millis`)))
  })
)
