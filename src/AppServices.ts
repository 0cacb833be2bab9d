/**
 * Every service a handler may use, and the one layer that builds them over a config.
 * The HTTP server, the CLI and the tests all run on a runtime made from `appLayer`.
 */
import { SqlClient } from "@effect/sql"
import { Layer, Logger, LogLevel } from "effect"
import { Auth } from "./auth/Auth.js"
import { Passwords } from "./auth/Passwords.js"
import { Bootstrap } from "./Bootstrap.js"
import { AppConfig, type AppConfigShape } from "./config/AppConfig.js"
import { DatabaseLive, Migrations } from "./db/Database.js"
import { GroupCommit } from "./db/GroupCommit.js"
import { Sqlite } from "./db/Sqlite.js"
import { Outbox } from "./events/Outbox.js"
import { ExtensionsRepo } from "./extensions/ExtensionsRepo.js"
import { cronJobsLayer } from "./jobs/CronJobs.js"
import { DeadLetters } from "./forwarding/DeadLetters.js"
import { Targets } from "./forwarding/Targets.js"
import { dataDirLockLayer } from "./db/DataDirLock.js"
import { workerLayer } from "./forwarding/Worker.js"
import { Metrics } from "./http/Metrics.js"
import { CdrStore } from "./records/CdrStore.js"
import { Ids } from "./shared/Ids.js"
import { ImmediateScheduler } from "./shared/ImmediateScheduler.js"
import { StorageWatch, storageWatchLayer } from "./ops/StorageWatch.js"
import { Transcoder } from "./recordings/Transcoder.js"
import { RecordingsStore } from "./recordings/RecordingsStore.js"

export type AppServices =
  | AppConfig
  | SqlClient.SqlClient
  | Sqlite
  | Migrations
  | Ids
  | Passwords
  | Outbox
  | ExtensionsRepo
  | Auth
  | Metrics
  | CdrStore
  | Targets
  | GroupCommit
  | DeadLetters
  | StorageWatch
  | Transcoder
  | RecordingsStore

/** Structured JSON log lines at the configured level. */
export const loggerLayer = (config: AppConfigShape) =>
  Layer.merge(Logger.json, Logger.minimumLogLevel(LogLevel.fromLiteral(levelName(config.logLevel))))

const levelName = (l: AppConfigShape["logLevel"]) =>
  (({ all: "All", trace: "Trace", debug: "Debug", info: "Info", warning: "Warning", error: "Error", fatal: "Fatal", none: "None" }) as const)[l]

/**
 * `background: false` (the CLI's commands) leaves out the delivery worker and the scheduled
 * jobs: a command must not deliver or sweep beside a running bridge on the same database.
 */
export const appLayer = (config: AppConfigShape, options: { readonly background: boolean } = { background: true }) => {
  const configLayer = Layer.succeed(AppConfig, config)
  const base = Layer.mergeAll(Ids.Default, Passwords.Default, Metrics.Default).pipe(Layer.provideMerge(DatabaseLive))
  const repos = Layer.mergeAll(ExtensionsRepo.Default, Outbox.Default, CdrStore.Default).pipe(
    Layer.provideMerge(Targets.Default)
  ).pipe(Layer.provideMerge(base))
  const services = Layer.mergeAll(Auth.Default, GroupCommit.Default, DeadLetters.Default, StorageWatch.Default, Transcoder.Default, RecordingsStore.Default).pipe(Layer.provideMerge(repos))
  const ready = (options.background ? Layer.mergeAll(Bootstrap, cronJobsLayer(), workerLayer, storageWatchLayer) : Bootstrap).pipe(Layer.provideMerge(services))
  // the lock is taken before anything touches the database, and released last
  return (options.background ? ready.pipe(Layer.provideMerge(dataDirLockLayer)) : ready).pipe(
    Layer.provideMerge(configLayer),
    Layer.provide(loggerLayer(config)),
    Layer.provideMerge(Layer.setScheduler(new ImmediateScheduler()))
  )
}
