/**
 * Every service a handler may use: the features' layers, and the type derived from them.
 * The app's whole layer (these, the database, the background work) is `appLayer` in App.ts.
 */
import { Layer } from "effect"
import { Auth } from "./auth/Auth.js"
import { Capture } from "./capture/Capture.js"
import { BoxQueue } from "./box/BoxQueue.js"
import { DevicesStore } from "./box/DevicesStore.js"
import { Passwords } from "./auth/Passwords.js"
import type { AppConfig } from "./config/AppConfig.js"
import type { DatabaseLive } from "./db/Database.js"
import { GroupCommit } from "./db/GroupCommit.js"
import { Outbox } from "./events/Outbox.js"
import { ExtensionsRepo } from "./extensions/ExtensionsRepo.js"
import { FlowsStore } from "./flows/FlowsStore.js"
import { DeadLetters } from "./forwarding/DeadLetters.js"
import { Lanes } from "./forwarding/Lanes.js"
import { Targets } from "./forwarding/Targets.js"
import { Metrics } from "./http/Metrics.js"
import { StorageWatch } from "./ops/StorageWatch.js"
import { RecordingsStore } from "./recordings/RecordingsStore.js"
import { Transcoder } from "./recordings/Transcoder.js"
import { CdrStore } from "./records/CdrStore.js"
import { CustomersStore } from "./customers/CustomersStore.js"
import { Audits } from "./callbacks/Audits.js"
import { Callbacks } from "./callbacks/Callbacks.js"
import { Telephony } from "./telephony/Telephony.js"
import { Tasks } from "./tasks/Tasks.js"
import { Draining } from "./shared/Draining.js"
import { Ids } from "./shared/Ids.js"
import { WorkOrdersStore } from "./workorders/WorkOrdersStore.js"

/**
 * The features' services. Each declares what it depends on (`dependencies`), so this list names
 * what handlers use, not how it is wired; a layer named twice is built once.
 */
export const featureServices = Layer.mergeAll(
  Ids.Default,
  Draining.Default,
  Metrics.Default,
  Passwords.Default,
  ExtensionsRepo.Default,
  Auth.Default,
  Targets.Default,
  Outbox.Default,
  CdrStore.Default,
  CustomersStore.Default,
  GroupCommit.Default,
  DeadLetters.Default,
  Lanes.Default,
  StorageWatch.Default,
  Transcoder.Default,
  RecordingsStore.Default,
  DevicesStore.Default,
  BoxQueue.Default,
  FlowsStore.Default,
  Telephony.Default,
  Callbacks.Default,
  Audits.Default,
  Tasks.Default,
  WorkOrdersStore.Default,
  Capture.Default
)

/** Every service a handler may use: derived from the layers that provide them. */
export type AppServices = Layer.Layer.Success<typeof featureServices> | Layer.Layer.Success<typeof DatabaseLive> | AppConfig

