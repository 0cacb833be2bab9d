/**
 * Liveness (the process serves: no database), readiness (the database answers, every
 * migration applied, writes not waiting for another process's lock, the delivery worker's
 * writes not failing) and Prometheus metrics.
 */
import { SqlClient } from "@effect/sql"
import { Effect, Option, Schema } from "effect"
import { Migrations } from "../db/Database.js"
import { GroupCommit } from "../db/GroupCommit.js"
import { WorkerHealth } from "../forwarding/Worker.js"
import { type Endpoint, endpoint, NO_PARAMS, rest } from "./Endpoint.js"
import { Metrics } from "./Metrics.js"
import { json } from "./Route.js"

/** what every operational endpoint shares: no credentials, nothing read but the query */
const operational = { tags: ["operations"], methods: ["GET"], auth: { kind: "none" }, body: { kind: "none" } } as const

const status = <S extends string>(value: S) => Schema.Struct({ status: Schema.Literal(value) })

const healthz = endpoint({
  ...operational,
  id: "healthz",
  summary: "Liveness",
  paths: "/healthz",
  params: NO_PARAMS,
  answer: rest({ "200": { description: "the process serves", content: { "application/json": status("ok") } } }),
  handler: () => Effect.succeed(json({ status: "ok" }))
})

const readyz = endpoint({
  ...operational,
  id: "readyz",
  summary: "Readiness: database reachable, migrations applied, writes and the delivery worker not failing",
  paths: "/readyz",
  params: NO_PARAMS,
  answer: rest({
    "200": { description: "ready", content: { "application/json": status("ready") } },
    "503": { description: "not ready, and why", content: { "application/json": status("not ready") } }
  }),
  handler: () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const { applied, latest } = yield* Migrations
      const db = yield* sql`SELECT 1 AS ok`.pipe(
        Effect.as(true),
        Effect.catchAll(() => Effect.succeed(false))
      )
      const migrated = applied.length === latest
      const commit = yield* GroupCommit
      const lockedSince = commit.busySince()
      const unflushed = commit.flushFailed()
      const writes = unflushed !== undefined ? { status: "failed", error: unflushed } : lockedSince === null ? { status: "ok" } : { status: "locked", since: lockedSince }
      // the CLI's runtime has no worker
      const worker = Option.map(yield* Effect.serviceOption(WorkerHealth), (w) => w.current())
      const ready = db && migrated && lockedSince === null && unflushed === undefined && Option.match(worker, { onNone: () => true, onSome: (w) => w.status === "ok" })
      return json(
        {
          status: ready ? "ready" : "not ready",
          database: db,
          writes,
          ...Option.match(worker, { onNone: () => ({}), onSome: (w) => ({ worker: w }) }),
          migrations: { applied: applied.length, latest }
        },
        ready ? 200 : 503
      )
    })
})

const metrics = endpoint({
  ...operational,
  id: "metrics",
  summary: "Prometheus metrics",
  paths: "/metrics",
  params: NO_PARAMS,
  answer: rest({ "200": { description: "Prometheus text exposition", content: { "text/plain": Schema.String } } }),
  handler: () =>
    Effect.gen(function* () {
      const { registry } = yield* Metrics
      const text = yield* Effect.promise(() => registry.metrics())
      return { _tag: "Bytes", status: 200, body: text, headers: { "content-type": registry.contentType } } as const
    })
})

export const endpoints: ReadonlyArray<Endpoint> = [healthz, readyz, metrics]
