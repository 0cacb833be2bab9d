/**
 * First start: the contract's test enterprise and its admin extension, so a newcomer can
 * call the API at once (configurable, can be turned off); and the admin API's bearer token,
 * generated into the data directory and printed once when none is configured.
 */
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { SqlClient } from "@effect/sql"
import { Effect, Layer, Option } from "effect"
import { Passwords } from "./auth/Passwords.js"
import { DevicesStore } from "./box/DevicesStore.js"
import { AppConfig } from "./config/AppConfig.js"
import { EXTE_STATUS, ExtensionsRepo } from "./extensions/ExtensionsRepo.js"
import { FlowsStore } from "./flows/FlowsStore.js"
import { setUpWorkOrders } from "./workorders/Setup.js"

export const adminTokenFile = (dataDir: string) => path.join(dataDir, "admin-token")

const seedEnterprise = Effect.gen(function* () {
  const config = yield* AppConfig
  const repo = yield* ExtensionsRepo
  const passwords = yield* Passwords
  const sql = yield* SqlClient.SqlClient
  const { compNumber, compName, adminSuffix, adminPassword } = config.bootstrap
  const existing = yield* repo.findByExtension(`${compNumber}${adminSuffix}`)
  if (Option.isSome(existing)) return
  const passwordHash = yield* passwords.hashPlain(adminPassword)
  yield* sql.withTransaction(
    Effect.zipRight(
      repo.ensureEnterprise(compNumber, compName),
      repo.insert(compNumber, adminSuffix, { password_hash: passwordHash, name: "管理员", status: EXTE_STATUS.admin })
    )
  )
  yield* Effect.logInfo("created the first enterprise and its admin extension").pipe(
    Effect.annotateLogs({ compNumber, extension: `${compNumber}${adminSuffix}` })
  )
})

/** The admin token in force: configured, else read from (or first written to) the data directory. */
export const ensureAdminToken = Effect.gen(function* () {
  const config = yield* AppConfig
  if (config.adminToken) return config.adminToken
  const file = adminTokenFile(config.dataDir)
  const stored = yield* Effect.sync(() => (fs.existsSync(file) ? fs.readFileSync(file, "utf8").trim() : ""))
  if (stored.length >= 16) return stored
  // base64url may begin with "-": a command line would read such a token as an option
  // (`replay --admin-token -x…` fails; found by CI, one run in 64), so it starts with letters
  const token = `vb_${crypto.randomBytes(24).toString("base64url")}`
  yield* Effect.sync(() => fs.writeFileSync(file, `${token}\n`, { mode: 0o600 }))
  // The file, never the token: logs travel further than the data directory (mode 600).
  yield* Effect.logWarning("generated the admin API token: read it from the file named here, or set BRIDGE_ADMIN_TOKEN to choose one").pipe(
    Effect.annotateLogs({ file })
  )
  return token
})

export const Bootstrap = Layer.effectDiscard(
  Effect.gen(function* () {
    const config = yield* AppConfig
    if (config.bootstrap.enabled) yield* seedEnterprise
    yield* setUpWorkOrders
    yield* ensureAdminToken
    // the boxes of the config are registered as it says at every start; one that cannot be is
    // logged and left out, and the bridge serves the others
    const { refused, removed } = yield* (yield* DevicesStore).upsertConfigured
    for (const { mac, problem } of refused)
      yield* Effect.logError("a configured recording box is not registered: its enterprise or a channel's extension is unknown").pipe(Effect.annotateLogs({ mac, problem }))
    for (const mac of removed) yield* Effect.logInfo("forgot a recording box the config no longer registers").pipe(Effect.annotateLogs({ mac }))
    const flows = yield* (yield* FlowsStore).upsertConfigured
    for (const { flow, problem } of flows.refused) yield* Effect.logError("a configured call flow is not registered").pipe(Effect.annotateLogs({ flow, problem }))
    for (const flow of flows.removed) yield* Effect.logInfo("removed a call flow the config no longer has").pipe(Effect.annotateLogs({ flow }))
  })
)
