/**
 * The one layer the HTTP server, the CLI and the tests run on, built over a config: the
 * features' services (AppServices.ts), the database under them, and — when serving — the
 * data directory's lock, the delivery worker, the scheduled jobs and the free-space watch.
 */
import { Layer, Logger, LogLevel } from "effect"
import { featureServices } from "./AppServices.js"
import { Bootstrap } from "./Bootstrap.js"
import { AppConfig, type AppConfigShape } from "./config/AppConfig.js"
import { DatabaseLive } from "./db/Database.js"
import { dataDirLockLayer } from "./db/DataDirLock.js"
import { forwardingMetricsLayer } from "./forwarding/ForwardingMetrics.js"
import { workerLayer } from "./forwarding/Worker.js"
import { cronJobsLayer } from "./jobs/CronJobs.js"
import { storageWatchLayer } from "./ops/StorageWatch.js"
import { ImmediateScheduler } from "./shared/ImmediateScheduler.js"
import { conventionalJson } from "./shared/JsonLogger.js"

/** JSON log lines ({time, level, msg, …context}) at the configured level. */
export const loggerLayer = (config: AppConfigShape) =>
  Layer.merge(Logger.replace(Logger.defaultLogger, Logger.withConsoleLog(conventionalJson)), Logger.minimumLogLevel(LogLevel.fromLiteral(levelName(config.logLevel))))

const levelName = (l: AppConfigShape["logLevel"]) =>
  (({ all: "All", trace: "Trace", debug: "Debug", info: "Info", warning: "Warning", error: "Error", fatal: "Fatal", none: "None" }) as const)[l]

/**
 * `background: false` (the CLI's commands) leaves out the delivery worker and the scheduled
 * jobs: a command must not deliver or sweep beside a running bridge on the same database.
 */
export const appLayer = (config: AppConfigShape, options: { readonly background: boolean } = { background: true }) => {
  const configLayer = Layer.succeed(AppConfig, config)
  const services = featureServices.pipe(Layer.provideMerge(DatabaseLive))
  const ready = (options.background ? Layer.mergeAll(Bootstrap, cronJobsLayer(), workerLayer, storageWatchLayer, forwardingMetricsLayer) : Bootstrap).pipe(Layer.provideMerge(services))
  // the lock is taken before anything touches the database, and released last
  return (options.background ? ready.pipe(Layer.provideMerge(dataDirLockLayer)) : ready).pipe(
    Layer.provideMerge(configLayer),
    Layer.provide(loggerLayer(config)),
    Layer.provideMerge(Layer.setScheduler(new ImmediateScheduler()))
  )
}
