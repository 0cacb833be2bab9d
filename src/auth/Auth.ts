/**
 * Who is calling. jsondata callers send `sa_user` (the extension number) and
 * `sa_password` (MD5 of the password); work-order callers send the `sessionId` that
 * getExtension issued, or the same pair. Every failure answers -2 with one message, so the
 * answer does not tell which extensions exist.
 */
import * as crypto from "node:crypto"
import { SqlClient } from "@effect/sql"
import { Clock, Effect, Option } from "effect"
import type { RawParams } from "../../schemas/Param.js"
import { AuthFailed } from "../api/Errors.js"
import { AppConfig } from "../config/AppConfig.js"
import { EXTE_STATUS, type EnterpriseRecord, type ExtensionRecord, ExtensionsRepo } from "../extensions/ExtensionsRepo.js"
import { Passwords } from "./Passwords.js"

export interface Caller {
  readonly extension: ExtensionRecord
  readonly enterprise: EnterpriseRecord
  readonly isAdmin: boolean
}

const single = (params: RawParams, key: string): string | undefined => {
  const v = params[key]
  return typeof v === "string" ? v : v?.[v.length - 1]
}

const tokenHash = (token: string) => crypto.createHash("sha256").update(token).digest("hex")

const BAD_CREDENTIALS = "authentication failed: unknown sa_user or wrong sa_password"
/** sliding expiry is written back at most this often, so busy sessions do not write on every call */
const SLIDE_WRITE_INTERVAL_MS = 60_000

export class Auth extends Effect.Service<Auth>()("Auth", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const repo = yield* ExtensionsRepo
    const passwords = yield* Passwords
    const config = yield* AppConfig
    const ttlMs = config.sessions.ttlSeconds * 1000

    const callerOf = (extension: ExtensionRecord) =>
      Effect.gen(function* () {
        if (extension.status === EXTE_STATUS.disabled)
          return yield* new AuthFailed({ message: "authentication failed: the extension is disabled" })
        const enterprise = yield* repo.enterprise(extension.comp_number)
        if (Option.isNone(enterprise)) return yield* new AuthFailed({ message: BAD_CREDENTIALS })
        return { extension, enterprise: enterprise.value, isAdmin: extension.status === EXTE_STATUS.admin } satisfies Caller
      })

    const withPassword = (user: string, md5: string) =>
      Effect.gen(function* () {
        const found = yield* repo.findByExtension(user.trim())
        if (Option.isNone(found)) return yield* new AuthFailed({ message: BAD_CREDENTIALS })
        const ok = yield* passwords.verifyMd5(md5.trim(), found.value.password_hash)
        if (!ok) return yield* new AuthFailed({ message: BAD_CREDENTIALS })
        return yield* callerOf(found.value)
      })

    const withSession = (token: string) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const hash = tokenHash(token)
        const rows = yield* sql<ExtensionRecord & { expires_at: number }>`
          SELECT e.*, s.expires_at FROM sessions s JOIN extensions e ON e.exte_id = s.exte_id
          WHERE s.token_hash = ${hash}`
        const row = rows[0]
        if (!row || row.expires_at <= now)
          return yield* new AuthFailed({ message: "authentication failed: sessionId is unknown or expired" })
        if (row.expires_at - ttlMs + SLIDE_WRITE_INTERVAL_MS < now)
          yield* sql`UPDATE sessions SET expires_at = ${now + ttlMs} WHERE token_hash = ${hash}`
        const { expires_at: _, ...extension } = row
        return yield* callerOf(extension)
      })

    /** Authenticates from the request's parameters (sa_user + sa_password, else sessionId). */
    const authenticate = (params: RawParams) => {
      const user = single(params, "sa_user")
      const md5 = single(params, "sa_password")
      const session = single(params, "sessionId")
      if (user !== undefined && md5 !== undefined) return withPassword(user, md5)
      if (session !== undefined) return withSession(session)
      return Effect.fail(new AuthFailed({ message: "authentication failed: sa_user and sa_password are required" }))
    }

    /** A new session for the work-order endpoints; expired sessions of everyone are swept on the way. */
    const openSession = (exteId: number) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const token = `voip_${crypto.randomBytes(12).toString("hex")}`
        yield* sql`DELETE FROM sessions WHERE expires_at <= ${now}`
        yield* sql`INSERT INTO sessions (token_hash, exte_id, expires_at, created_at)
                   VALUES (${tokenHash(token)}, ${exteId}, ${now + ttlMs}, ${now})`
        return token
      })

    return { authenticate, openSession } as const
  })
}) {}
