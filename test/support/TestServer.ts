/**
 * A real bridge for a test: its own data directory (a real SQLite file), listening on a
 * loopback port, built exactly as `npm start` builds it.
 */
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect } from "effect"
import { afterAll } from "vitest"
import { loadConfig, type AppConfigShape } from "../../src/config/AppConfig.js"
import { startServer, type RunningServer } from "../../src/http/Server.js"

export const ADMIN = { user: "100008800", password: "02367073578" }
export const md5 = (s: string) => crypto.createHash("md5").update(s).digest("hex")

const made = new Set<string>()
// each test file gets its own copy of this module: its directories go when its tests are done
afterAll(() => {
  for (const dir of made) fs.rmSync(dir, { recursive: true, force: true })
  made.clear()
})

/** A fresh directory under the system's temporary one, removed after the test file's tests. */
export const tempDir = (prefix = "vb-") => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  made.add(dir)
  return dir
}

export interface TestServer extends RunningServer {
  readonly dataDir: string
  readonly config: AppConfigShape
}

/** The settings of a test bridge on `dataDir` (loopback, any free port), as `npm start` would read them with `overrides`. */
export const testConfig = (dataDir: string, overrides: Record<string, unknown> = {}) =>
  Effect.runPromise(
    // the errors the tests provoke on purpose are not printed; BRIDGE_TEST_LOG_LEVEL=error shows them
    loadConfig({ env: {}, overrides: { port: 0, host: "127.0.0.1", dataDir, logLevel: process.env.BRIDGE_TEST_LOG_LEVEL ?? "none", ...overrides } })
  )

export const startTestServer = async (overrides: Record<string, unknown> = {}): Promise<TestServer> => {
  const dataDir = tempDir()
  const config = await testConfig(dataDir, overrides)
  const server = await startServer(config)
  const close = async () => {
    await server.close()
    fs.rmSync(dataDir, { recursive: true, force: true })
  }
  return { ...server, close, dataDir, config }
}

export type Params = Record<string, string | ReadonlyArray<string>>

const toSearch = (params: Params) => {
  const s = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) for (const x of typeof v === "string" ? [v] : v) s.append(k, x)
  return s
}

export const creds = (user = ADMIN.user, password = ADMIN.password) => ({ sa_user: user, sa_password: md5(password) })

export type Via = "get" | "form" | "multipart" | "mixed"

/** Calls jsondata.html the way a client would, by query string, urlencoded or multipart body, or split. */
export const callApi = async (server: { url: string }, params: Params, via: Via = "get") => {
  const base = `${server.url}/voip/api/jsondata.html`
  let res: Response
  if (via === "get") res = await fetch(`${base}?${toSearch(params)}`)
  else if (via === "form") res = await fetch(base, { method: "POST", body: toSearch(params) })
  else if (via === "multipart") {
    const fd = new FormData()
    for (const [k, v] of Object.entries(params)) for (const x of typeof v === "string" ? [v] : v) fd.append(k, x)
    res = await fetch(base, { method: "POST", body: fd })
  } else {
    // credentials and method in the query, the rest in the body
    const { sa_user, sa_password, method, ...rest } = params
    const q = toSearch(Object.fromEntries(Object.entries({ sa_user, sa_password, method }).filter(([, v]) => v !== undefined)) as Params)
    res = await fetch(`${base}?${q}`, { method: "POST", body: toSearch(rest) })
  }
  const body = (await res.json()) as Record<string, unknown> & { code: number; message: string }
  return Object.assign(body, { httpStatus: res.status })
}

/** As the admin of the test enterprise. */
export const asAdmin = (server: { url: string }, method: string, params: Params = {}, via: Via = "get") =>
  callApi(server, { ...creds(), method, ...params }, via)
