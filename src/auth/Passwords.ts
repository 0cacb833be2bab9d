/**
 * Passwords. Clients authenticate with the MD5 of the password (§1.1, 32 hex digits, any
 * case); we store only scrypt(that MD5) with a per-extension salt, so neither the password
 * nor its MD5 is ever written anywhere. scrypt is deliberately slow, and clients send
 * credentials on every call, so a verified credential is remembered in memory as an HMAC
 * under a key that lives only in this process, tied to the stored hash it was checked
 * against: a password change invalidates it without any bookkeeping.
 *
 * A wrong password costs one scrypt whether the extension exists or not (an unknown one, a
 * malformed MD5 or an unreadable stored hash are checked against a dummy hash with the same
 * parameters), so the answer's timing does not tell which extensions exist. At most
 * `auth.throttle.maxConcurrentHashes` scrypt computations run at once, in arrival order: the
 * rest wait here rather than in libuv's thread pool, which file I/O shares.
 */
import * as crypto from "node:crypto"
import { Effect } from "effect"
import { AppConfig } from "../config/AppConfig.js"

const N = 16384
const R = 8
const P = 1
const KEYLEN = 32

const scrypt = (secret: string, salt: Buffer, n: number, r: number, p: number) =>
  Effect.async<Buffer, Error>((resume) => {
    crypto.scrypt(secret, salt, KEYLEN, { N: n, r, p, maxmem: 64 * 1024 * 1024 }, (err, key) =>
      resume(err ? Effect.fail(err) : Effect.succeed(key))
    )
  })

export const md5Hex = (text: string): string => crypto.createHash("md5").update(text, "utf8").digest("hex")

export const isMd5Hex = (s: string): boolean => /^[0-9a-fA-F]{32}$/.test(s)

/** A password a person can type back: 11 digits, like the contract's test password. */
export const generatePassword = (): string =>
  Array.from(crypto.randomBytes(11), (b) => String(b % 10)).join("")

export class Passwords extends Effect.Service<Passwords>()("Passwords", {
  effect: Effect.gen(function* () {
    const { maxConcurrentHashes } = (yield* AppConfig).auth.throttle
    const hashing = yield* Effect.makeSemaphore(maxConcurrentHashes)
    const bounded = (secret: string, salt: Buffer, n: number, r: number, p: number) => hashing.withPermits(1)(scrypt(secret, salt, n, r, p))
    // matches nothing anyone can send: its key is random, not derived from any secret
    const dummy = `scrypt$${N}$${R}$${P}$${crypto.randomBytes(16).toString("base64")}$${crypto.randomBytes(KEYLEN).toString("base64")}`
    const cacheKey = crypto.randomBytes(32)
    const verified = new Map<string, string>()
    const fingerprint = (md5: string, storedHash: string) =>
      crypto.createHmac("sha256", cacheKey).update(storedHash).update("\0").update(md5).digest("base64")

    /** The stored form of a password, given as its MD5. */
    const hashMd5 = (md5: string) =>
      Effect.gen(function* () {
        const salt = crypto.randomBytes(16)
        const key = yield* bounded(md5.toLowerCase(), salt, N, R, P)
        return `scrypt$${N}$${R}$${P}$${salt.toString("base64")}$${key.toString("base64")}`
      }).pipe(Effect.orDie)

    const hashPlain = (password: string) => hashMd5(md5Hex(password))

    /** Whether this MD5 was verified against this stored hash before: no scrypt needed. */
    const knownGood = (md5: string, stored: string): boolean => {
      const lower = md5.toLowerCase()
      return isMd5Hex(lower) && verified.get(stored) === fingerprint(lower, stored)
    }

    /** `stored` is undefined for an extension that does not exist: it costs the same, and fails. */
    const verifyMd5 = (md5: string, stored: string | undefined) =>
      Effect.gen(function* () {
        const lower = md5.toLowerCase()
        const usable = stored !== undefined && isMd5Hex(lower)
        if (usable && knownGood(lower, stored)) return true
        const parts = usable ? stored.split("$") : []
        const readable = parts[0] === "scrypt" && !!parts[4] && !!parts[5]
        const [, n, r, p, salt, key] = readable ? parts : dummy.split("$")
        const expected = Buffer.from(key!, "base64")
        const actual = yield* bounded(lower, Buffer.from(salt!, "base64"), Number(n), Number(r), Number(p))
        const ok = usable && readable && actual.length === expected.length && crypto.timingSafeEqual(actual, expected)
        if (ok) {
          // bounded: one entry per stored hash seen, cleared wholesale if it ever grows large
          if (verified.size > 100_000) verified.clear()
          verified.set(stored, fingerprint(lower, stored))
        }
        return ok
      }).pipe(Effect.orDie)

    return { hashMd5, hashPlain, knownGood, verifyMd5 } as const
  })
}) {}
