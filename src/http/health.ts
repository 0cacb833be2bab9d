/** Liveness, readiness (database answers, every migration applied), the OpenAPI document and Prometheus metrics. */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { Migrations } from "../db/Database.js"
import { Metrics } from "./Metrics.js"
import { openApiDocument } from "./OpenApi.js"
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
        const ready = db && migrated
        return json({ status: ready ? "ready" : "not ready", database: db, migrations: { applied: applied.length, latest } }, ready ? 200 : 503)
      })
  },
  { methods: ["GET"], path: "/openapi.json", handle: () => Effect.succeed(json(openApiDocument())) },
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
