/**
 * The telephony driver in force (config `telephony.driver`): simulator (default), box or
 * upstream. Methods that make a phone ring use this service and never know which driver runs.
 * Calls in progress are fibers of this service: stopping the bridge interrupts them.
 *
 * A driver that dials itself (simulator, box) dials the proxy number setIvrDialing cached for
 * the pair (src/ivr/IvrDialing.ts) instead of the number asked for; the upstream driver relays
 * the request as it came (the platform's own cache decides there).
 */
import { SqlClient } from "@effect/sql"
import { Effect, FiberSet } from "effect"
import { BoxQueue } from "../box/BoxQueue.js"
import { DevicesStore } from "../box/DevicesStore.js"
import { AppConfig } from "../config/AppConfig.js"
import { GroupCommit } from "../db/GroupCommit.js"
import { Outbox } from "../events/Outbox.js"
import { RecordingsStore } from "../recordings/RecordingsStore.js"
import { CdrStore } from "../records/CdrStore.js"
import { Ids } from "../shared/Ids.js"
import { refuseBlacklisted } from "../blacklist/Listed.js"
import { proxyDialFor } from "../ivr/IvrDialing.js"
import { type EndHandler, makeBoxDriver } from "./BoxDriver.js"
import type { CallRequest, TelephonyDriver } from "./Driver.js"
import { makeSimulator } from "./Simulator.js"
import { makeUpstreamDriver, UPSTREAM_CALLBACK_PATH } from "./Upstream.js"

export class Telephony extends Effect.Service<Telephony>()("Telephony", {
  dependencies: [DevicesStore.Default, BoxQueue.Default, CdrStore.Default, Outbox.Default, GroupCommit.Default, RecordingsStore.Default, Ids.Default],
  scoped: Effect.gen(function* () {
    const config = yield* AppConfig
    const calls = yield* FiberSet.make()
    const enders = new Map<CallRequest["kind"], EndHandler>()
    const box = yield* makeBoxDriver(enders)
    const { driver: name, upstream } = config.telephony
    const driver: TelephonyDriver =
      name === "box" ? box.driver : name === "upstream" && upstream !== undefined ? makeUpstreamDriver(upstream) : yield* makeSimulator(config, box.driver)
    if (name === "upstream" && upstream !== undefined)
      yield* upstream.publicUrl === undefined
        ? Effect.logWarning(
            "telephony.upstream.publicUrl is not set: a relayed callback's callbackUrl goes to the platform as given, its statuses go straight to the integrator, and our callback rows stay at their first status"
          )
        : Effect.logInfo(`the platform pushes relayed callbacks' statuses to ${upstream.publicUrl}${UPSTREAM_CALLBACK_PATH}/{cbkId}`)
    // only box-driver calls wait for ends delivered later (an upload, or their due time)
    if (name === "box") yield* Effect.forkScoped(Effect.interruptible(box.deliverEnds))
    const sql = yield* SqlClient.SqlClient
    /** the number dialled: the proxy cached for (from, to) when there is one, and it too must not be blacklisted */
    const dialled = (request: CallRequest) =>
      Effect.gen(function* () {
        if (driver.name === "upstream") return request
        const proxy = yield* proxyDialFor(request.caller.enterprise.comp_number, request.from, request.to)
        if (proxy === undefined) return request
        yield* refuseBlacklisted(request.caller, [["descPhone", proxy]])
        return { ...request, to: proxy }
      }).pipe(Effect.provideService(SqlClient.SqlClient, sql))
    const place = (request: CallRequest) => Effect.flatMap(dialled(request), driver.place)
    /**
     * runs a placed call's life in the background, for as long as the bridge runs; interruptible
     * even when started from an uninterruptible step (a fork inherits that), so a stop ends it
     */
    const start = (life: Effect.Effect<void>) => Effect.asVoid(FiberSet.run(calls, Effect.interruptible(life)))
    /** how a requester's rows learn the end of a call delivered after the fact (a box-driver call's), by kind */
    const onEnd = (kind: CallRequest["kind"], handler: EndHandler) => Effect.sync(() => void enders.set(kind, handler))
    return { ...driver, place, start, onEnd }
  })
}) {}
