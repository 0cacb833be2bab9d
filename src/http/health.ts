/**
 * Liveness (the process serves: no database), readiness (the database answers, every
 * migration applied, writes not waiting for another process's lock, the delivery worker's
 * writes not failing), the OpenAPI document and Prometheus metrics.
 */
import { SqlClient } from "@effect/sql"
import { Effect, Option } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { Migrations } from "../db/Database.js"
import { GroupCommit } from "../db/GroupCommit.js"
import { WorkerHealth } from "../forwarding/Worker.js"
import { Metrics } from "./Metrics.js"
import { openApiDocument } from "./OpenApi.js"
import { queryPairs, toRawParams } from "./Params.js"
import { json, type Route } from "./Route.js"

export const routes: ReadonlyArray<Route> = [
  { methods: ["GET"], path: "/healthz", handle: () => Effect.succeed(json({ status: "ok" })) },
  {
    methods: ["GET"],
    path: "/readyz",
    handle: () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const { applied, latest } = yield* Migrations
        const db = yield* sql`SELECT 1 AS ok`.pipe(
          Effect.as(true),
          Effect.catchAll(() => Effect.succeed(false))
        )
        const migrated = applied.length === latest
        const lockedSince = (yield* GroupCommit).busySince()
        const writes = lockedSince === null ? { status: "ok" } : { status: "locked", since: lockedSince }
        // the CLI's runtime has no worker
        const worker = Option.map(yield* Effect.serviceOption(WorkerHealth), (w) => w.current())
        const ready = db && migrated && lockedSince === null && Option.match(worker, { onNone: () => true, onSome: (w) => w.status === "ok" })
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
  },
  {
    methods: ["GET"],
    path: "/openapi.json",
    handle: (req) =>
      Effect.map(AppConfig, (config) => {
        const method = toRawParams(queryPairs(req.url ?? "")).method
        const name = typeof method === "string" ? method : method?.at(-1)
        const doc = openApiDocument(config, name)
        return doc ? json(doc) : json({ code: -11, message: `no implemented jsondata method ${JSON.stringify(name)}` }, 404)
      })
  },
  {
    methods: ["GET"],
    path: "/metrics",
    handle: () =>
      Effect.gen(function* () {
        const { registry } = yield* Metrics
        const text = yield* Effect.promise(() => registry.metrics())
        return { _tag: "Bytes", status: 200, body: text, headers: { "content-type": registry.contentType } } as const
      })
  }
]
