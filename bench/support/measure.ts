/** What the store benchmarks share: percentiles, timed rounds, and a bridge in this process over its own SQLite file. */
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import Database from "better-sqlite3"
import { Effect } from "effect"
import { loadConfig } from "../../src/config/AppConfig.js"
import { startServer } from "../../src/http/Server.js"

export const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 40)

export const percentile = (xs: ReadonlyArray<number>, p: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!
}

/** `f` run ROUNDS times, one after another: its p50 and p99 in ms. */
export const time = async (f: () => unknown) => {
  const samples: Array<number> = []
  for (let i = 0; i < ROUNDS; i++) {
    const t = performance.now()
    await f()
    samples.push(performance.now() - t)
  }
  return { p50: percentile(samples, 50), p99: percentile(samples, 99) }
}

/**
 * A bridge in this process on a fresh data directory, with a second connection to its SQLite
 * file (to fill it, and to run the same SQL directly) and the bootstrap admin's credentials.
 */
export const benchServer = async (prefix: string, comp: string) => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  // filling blocks this process for seconds (minutes at 10M): a short keep-alive would close the client's idle connection under it
  const config = await Effect.runPromise(loadConfig({ env: {}, overrides: { port: 0, host: "127.0.0.1", dataDir, logLevel: "error", http: { keepAliveTimeoutMs: 600_000 } } }))
  const server = await startServer(config)
  const db = new Database(path.join(dataDir, "bridge.db"))
  const auth = `sa_user=${comp}800&sa_password=${crypto.createHash("md5").update("02367073578").digest("hex")}`
  const close = async () => {
    db.close()
    await server.close()
    fs.rmSync(dataDir, { recursive: true, force: true })
  }
  return { dataDir, config, server, db, auth, close }
}
