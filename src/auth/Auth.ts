/**
 * Who is calling. jsondata callers send `sa_user` (the extension number) and
 * `sa_password` (MD5 of the password); work-order callers send the `sessionId` that
 * getExtension issued, or the same pair. Every failure answers -2 with one message, so the
 * answer does not tell which extensions exist.
 *
 * Password guessing is throttled per client address (./Throttle.ts). The attempts of one
 * address that need scrypt run one after another, each seeing the counters its predecessor
 * left: fifty parallel guesses from one address cost at most `maxFailures` hashes and hold at
 * most one of the shared scrypt slots, so a login from another address is not queued behind
 * them. A credential verified before (Passwords' cache) skips that queue.
 */
import * as crypto from "node:crypto"
import { SqlClient } from "@effect/sql"
import { Clock, Effect, Option } from "effect"
import { type RawParams, single } from "../../schemas/Param.js"
import { AuthFailed } from "../api/Errors.js"
import { AppConfig } from "../config/AppConfig.js"
import { EXTE_STATUS, type EnterpriseRecord, type ExtensionRecord, ExtensionsRepo } from "../extensions/ExtensionsRepo.js"
import { keyedLock } from "../shared/KeyedLock.js"
import { isStorageUnavailable } from "../shared/Sql.js"
import { Passwords } from "./Passwords.js"
import { addressBucket, makeThrottle } from "./Throttle.js"

export interface Caller {
  readonly extension: ExtensionRecord
  readonly enterprise: EnterpriseRecord
  readonly isAdmin: boolean
}

const tokenHash = (token: string) => crypto.createHash("sha256").update(token).digest("hex")

const BAD_CREDENTIALS = "authentication failed: unknown sa_user or wrong sa_password"
/** sliding expiry is written back at most this often, so busy sessions do not write on every call */
const SLIDE_WRITE_INTERVAL_MS = 60_000

export class Auth extends Effect.Service<Auth>()("Auth", {
  dependencies: [ExtensionsRepo.Default, Passwords.Default],
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const repo = yield* ExtensionsRepo
    const passwords = yield* Passwords
    const config = yield* AppConfig
    const ttlMs = config.sessions.ttlSeconds * 1000
    const throttle = makeThrottle(config.auth.throttle)
    const oneAtATimePerAddress = keyedLock()

    const callerOf = (extension: ExtensionRecord) =>
      Effect.gen(function* () {
        if (extension.status === EXTE_STATUS.disabled)
          return yield* new AuthFailed({ message: "authentication failed: the extension is disabled" })
        const enterprise = yield* repo.enterprise(extension.comp_number)
        if (Option.isNone(enterprise)) return yield* new AuthFailed({ message: BAD_CREDENTIALS })
        return { extension, enterprise: enterprise.value, isAdmin: extension.status === EXTE_STATUS.admin } satisfies Caller
      })

    /** Fails, without checking anything, while this user is locked out from this address. */
    const notLockedOut = (user: string, address: string) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const wait = throttle.waitMs(user, address, now)
        return wait > 0
          ? Effect.fail(new AuthFailed({ message: `authentication failed: too many failed attempts; wait ${Math.ceil(wait / 1000)} s` }))
          : Effect.void
      })

    const withPassword = (rawUser: string, rawMd5: string, address: string) =>
      Effect.gen(function* () {
        const user = rawUser.trim()
        const md5 = rawMd5.trim()
        yield* notLockedOut(user, address)
        const found = yield* repo.findByExtension(user)
        const stored = Option.map(found, (e) => e.password_hash).pipe(Option.getOrUndefined)
        const ok =
          (stored !== undefined && passwords.knownGood(md5, stored)) ||
          (yield* oneAtATimePerAddress(
            // keyed as the throttle counts: one host holds a whole IPv6 /64
            addressBucket(address),
            Effect.gen(function* () {
              // the attempts before this one in the queue may have locked it out meanwhile
              yield* notLockedOut(user, address)
              return yield* passwords.verifyMd5(md5, stored)
            })
          ))
        const now = yield* Clock.currentTimeMillis
        if (!ok || Option.isNone(found)) {
          throttle.failed(user, address, now)
          // said after the full cost of a wrong password, for every extension alike: the hint reveals nothing
          return yield* new AuthFailed({ message: /^[0-9a-f]{32}$/i.test(md5) ? BAD_CREDENTIALS : `${BAD_CREDENTIALS} (sa_password is the MD5 of the password: 32 hex digits)` })
        }
        throttle.succeeded(user, address, now)
        return yield* callerOf(found.value)
      })

    /**
     * Sessions opened while the disk refused writes (full, read-only, locked): a small office
     * whose disk filled with recordings must still be able to log in and read. They live in
     * memory until they expire or the process ends, and end like stored ones when the
     * extension's password changes or it is disabled (its session_epoch moved), even if it is
     * enabled again before the session is next used.
     */
    const unsaved = new Map<string, { readonly compNumber: string; readonly exteId: number; readonly epoch: number; expiresAt: number }>()
    const UNSAVED_MAX = 10_000

    const fromMemory = (hash: string, now: number) =>
      Effect.gen(function* () {
        const held = unsaved.get(hash)
        if (!held || held.expiresAt <= now) {
          unsaved.delete(hash)
          return yield* new AuthFailed({ message: "authentication failed: sessionId is unknown or expired" })
        }
        const found = yield* repo.findById(held.compNumber, held.exteId)
        if (Option.isNone(found) || found.value.session_epoch !== held.epoch) {
          unsaved.delete(hash)
          return yield* new AuthFailed({ message: "authentication failed: sessionId is unknown or expired" })
        }
        held.expiresAt = now + ttlMs
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
        if (!row) return yield* fromMemory(hash, now)
        if (row.expires_at <= now)
          return yield* new AuthFailed({ message: "authentication failed: sessionId is unknown or expired" })
        if (row.expires_at - ttlMs + SLIDE_WRITE_INTERVAL_MS < now)
          // sliding the expiry is worth a write, not a refusal: a disk that takes no writes leaves it as it was
          yield* sql`UPDATE sessions SET expires_at = ${now + ttlMs} WHERE token_hash = ${hash}`.pipe(
            Effect.catchIf(isStorageUnavailable, (e) => Effect.logWarning("a session's expiry could not be extended", e.cause))
          )
        const { expires_at: _, ...extension } = row
        return yield* callerOf(extension)
      })

    /**
     * Authenticates from the request's parameters (sa_user + sa_password, else sessionId).
     * `address` is the client's, for throttling guesses; callers without one share one bucket.
     */
    const authenticate = (params: RawParams, address = "unknown") => {
      const user = single(params, "sa_user")
      const md5 = single(params, "sa_password")
      const session = single(params, "sessionId")
      if (user !== undefined && md5 !== undefined) return withPassword(user, md5, address)
      if (session !== undefined) return withSession(session)
      return Effect.fail(new AuthFailed({ message: "authentication failed: sa_user and sa_password are required" }))
    }

    /**
     * A new session for the work-order endpoints; expired sessions of everyone are swept on the
     * way. When the disk takes no writes the session is held in memory instead (see `unsaved`).
     */
    const openSession = (extension: Pick<ExtensionRecord, "comp_number" | "exte_id" | "session_epoch">) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const token = `voip_${crypto.randomBytes(12).toString("hex")}`
        const hash = tokenHash(token)
        yield* Effect.zipRight(
          sql`DELETE FROM sessions WHERE expires_at <= ${now}`,
          sql`INSERT INTO sessions (token_hash, exte_id, expires_at, created_at)
              VALUES (${hash}, ${extension.exte_id}, ${now + ttlMs}, ${now})`
        ).pipe(
          Effect.catchIf(isStorageUnavailable, (e) =>
            Effect.gen(function* () {
              if (unsaved.size >= UNSAVED_MAX) for (const [k, v] of unsaved) if (v.expiresAt <= now) unsaved.delete(k)
              if (unsaved.size >= UNSAVED_MAX) unsaved.delete(unsaved.keys().next().value!)
              unsaved.set(hash, { compNumber: extension.comp_number, exteId: extension.exte_id, epoch: extension.session_epoch, expiresAt: now + ttlMs })
              yield* Effect.logWarning("storage refuses writes: the session is held in memory until it expires or the bridge stops", e.cause)
            })
          )
        )
        return token
      })

    return { authenticate, openSession } as const
  })
}) {}
