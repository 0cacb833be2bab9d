/**
 * The embedded SQLite database: one file under the data directory, WAL, the configured
 * `synchronous` level, foreign keys on, and every migration applied before the layer is
 * ready — so nothing serves requests against an old schema.
 */
import * as path from "node:path"
import { Migrator, SqlClient } from "@effect/sql"
import { Context, Effect, Layer } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { secureDataDirLogged } from "./DataDir.js"
import { migrations } from "./migrations.js"
import * as Sqlite from "./Sqlite.js"

export const databaseFile = (dataDir: string) => path.join(dataDir, "bridge.db")

const runMigrations = Migrator.make({})({ loader: Migrator.fromRecord(migrations), table: "schema_migrations" })

/** Applied migrations, known once the database layer is built (read by /readyz). */
export class Migrations extends Context.Tag("Migrations")<
  Migrations,
  { readonly applied: ReadonlyArray<readonly [id: number, name: string]>; readonly latest: number }
>() {}

const ClientLive = Layer.unwrapEffect(
  Effect.gen(function* () {
    const config = yield* AppConfig
    yield* secureDataDirLogged(config.dataDir)
    return Sqlite.layer(databaseFile(config.dataDir), config.db.busyTimeoutMs)
  })
)

const Setup = Layer.effect(
  Migrations,
  Effect.gen(function* () {
    const config = yield* AppConfig
    const sql = yield* SqlClient.SqlClient
    yield* sql.unsafe(`PRAGMA synchronous = ${config.db.synchronous}`)
    yield* sql.unsafe("PRAGMA foreign_keys = ON")
    const ran = yield* runMigrations
    if (ran.length > 0) yield* Effect.logInfo("migrations applied").pipe(Effect.annotateLogs("migrations", ran.map(([id, name]) => `${id}_${name}`)))
    const rows = yield* sql<{ id: number; name: string }>`SELECT migration_id AS id, name FROM schema_migrations ORDER BY migration_id`
    const applied = rows.map((r) => [r.id, r.name] as const)
    return { applied, latest: Object.keys(migrations).length }
  })
)

export const DatabaseLive = Setup.pipe(Layer.provideMerge(ClientLive))
