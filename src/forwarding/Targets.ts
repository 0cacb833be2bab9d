/**
 * The targets in force, kept in memory for the fan-out on every event and stored in SQLite.
 * The config file's targets are written over the stored ones of the same name at every start
 * (the file is the operator's source of truth for what it names); targets created through
 * the admin API live on until deleted there.
 */
import { SqlClient } from "@effect/sql"
import { Clock, Effect, Either, Queue, Schema } from "effect"
import { problemsOf } from "../../schemas/Param.js"
import { AppConfig } from "../config/AppConfig.js"
import { adhocTarget, StoredTargetSchema, type Target, TargetSchema } from "./Target.js"

const encode = Schema.encodeSync(StoredTargetSchema)
const decodeStrict = Schema.decodeUnknownEither(TargetSchema, { errors: "first" })
const decodeStored = Schema.decodeUnknownEither(StoredTargetSchema)

export class Targets extends Effect.Service<Targets>()("Targets", {
  scoped: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const config = yield* AppConfig
    const now = yield* Clock.currentTimeMillis
    for (const t of config.targets) {
      const json = JSON.stringify(encode(t))
      yield* sql`INSERT INTO targets (name, config, origin, created_at, updated_at) VALUES (${t.name}, ${json}, 'file', ${now}, ${now})
        ON CONFLICT (name) DO UPDATE SET config = excluded.config, origin = 'file', updated_at = excluded.updated_at`
    }
    if (config.targets.length > 0)
      yield* Effect.logInfo("targets from the config file: it wins at every start, so the admin API does not change or delete them").pipe(
        Effect.annotateLogs({ targets: config.targets.map((t) => t.name) })
      )
    const rows = yield* sql<{ name: string; config: string }>`SELECT name, config FROM targets ORDER BY name`
    const stored: Array<Target> = []
    for (const r of rows) {
      let raw: unknown
      try {
        raw = JSON.parse(r.config)
      } catch {
        raw = undefined
      }
      const strict = decodeStrict(raw)
      if (Either.isRight(strict)) {
        stored.push(strict.right)
        continue
      }
      const [issue] = problemsOf(strict.left)
      const problem = `${issue?.path}: ${issue?.message}`
      const loose = decodeStored(raw)
      if (Either.isLeft(loose)) {
        // unreadable: left out (its row stays for an operator to look at), the bridge still starts
        yield* Effect.logError("a stored target cannot be read and is left out").pipe(Effect.annotateLogs({ target: r.name, problem }))
        continue
      }
      stored.push(loose.right)
      yield* Effect.logWarning("a stored target fails a check added since it was saved; it is kept as it is: fix it with PATCH, or DELETE it, at /admin/api/targets/:name").pipe(
        Effect.annotateLogs({ target: loose.right.name, problem })
      )
    }
    const byName = new Map<string, Target>(stored.map((t) => [t.name, t]))
    // read on every event: rebuilt when a target changes, not per read
    let current: ReadonlyArray<Target> = [...byName.values()]
    const changed = () => void (current = [...byName.values()])
    /** woken after each emit so the worker picks new deliveries up at once */
    const wakeups = yield* Queue.sliding<void>(1)
    /**
     * Whether callbacks' own deliveries ($adhoc) may have something new since the worker last
     * claimed them. A push's event never does: claiming $adhoc at every push's wake found nothing
     * and cost ingest ~10 µs a push. The worker's poll wakes it too.
     */
    let adhocWoken = true
    /** the worker looks at every target, $adhoc included */
    const wakeSync = () => {
      adhocWoken = true
      wakeups.unsafeOffer(undefined)
    }

    const list = Effect.sync(() => [...byName.values()])
    const get = (name: string) => Effect.sync(() => byName.get(name))
    const save = (target: Target, origin: "file" | "api") =>
      Effect.gen(function* () {
        const at = yield* Clock.currentTimeMillis
        yield* sql`INSERT INTO targets (name, config, origin, created_at, updated_at) VALUES (${target.name}, ${JSON.stringify(encode(target))}, ${origin}, ${at}, ${at})
          ON CONFLICT (name) DO UPDATE SET config = excluded.config, updated_at = excluded.updated_at`
        byName.set(target.name, target)
        changed()
        wakeSync()
      })
    const remove = (name: string) =>
      Effect.gen(function* () {
        yield* sql`DELETE FROM targets WHERE name = ${name}`
        const removed = byName.delete(name)
        changed()
        return removed
      })
    // built in, not the operator's: never listed, saved or deleted by the admin API, but sent by the worker
    const builtIn = new Map<string, Target>([adhocTarget(config.telephony.callbackDelivery)].map((t) => [t.name, t]))
    /** the target a delivery is sent by: a configured one, or a built-in one */
    const targetFor = (name: string) => byName.get(name) ?? builtIn.get(name)
    const forDelivery = (name: string) => Effect.sync(() => targetFor(name))
    /** every target the worker sends for */
    const sending = () => [...current, ...builtIn.values()]
    /** The config file's own targets: the file wins at every start, so the admin API changes none of them. */
    const configured = new Set(config.targets.map((t) => t.name))
    const fromConfig = (name: string) => configured.has(name)
    return {
      list,
      get,
      save,
      remove,
      forDelivery,
      targetFor,
      sending,
      fromConfig,
      wake: Effect.sync(wakeSync),
      wakeSync,
      /** the worker looks at the configured targets only: an event's new deliveries, a slot of theirs freed */
      wakeTargetsSync: () => void wakeups.unsafeOffer(undefined),
      /** whether $adhoc was woken since the last ask (the ask takes it) */
      takeAdhocWoken: () => {
        const woken = adhocWoken
        adhocWoken = false
        return woken
      },
      wakeups,
      snapshot: () => current
    } as const
  })
}) {}
