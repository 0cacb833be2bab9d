/**
 * Passwords. Clients authenticate with the MD5 of the password (§1.1, 32 hex digits, any
 * case); we store only scrypt(that MD5) with a per-extension salt, so neither the password
 * nor its MD5 is ever written anywhere. scrypt is deliberately slow, and clients send
 * credentials on every call, so a verified credential is remembered in memory as an HMAC
 * under a key that lives only in this process, tied to the stored hash it was checked
 * against: a password change invalidates it without any bookkeeping.
 */
import * as crypto from "node:crypto"
import { Effect } from "effect"

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
  sync: () => {
    const cacheKey = crypto.randomBytes(32)
    const verified = new Map<string, string>()
    const fingerprint = (md5: string, storedHash: string) =>
      crypto.createHmac("sha256", cacheKey).update(storedHash).update("\0").update(md5).digest("base64")

    /** The stored form of a password, given as its MD5. */
    const hashMd5 = (md5: string) =>
      Effect.gen(function* () {
        const salt = crypto.randomBytes(16)
        const key = yield* scrypt(md5.toLowerCase(), salt, N, R, P)
        return `scrypt$${N}$${R}$${P}$${salt.toString("base64")}$${key.toString("base64")}`
      }).pipe(Effect.orDie)

    const hashPlain = (password: string) => hashMd5(md5Hex(password))

    const verifyMd5 = (md5: string, stored: string) =>
      Effect.gen(function* () {
        if (!isMd5Hex(md5)) return false
        const lower = md5.toLowerCase()
        const fp = fingerprint(lower, stored)
        if (verified.get(stored) === fp) return true
        const [scheme, n, r, p, salt, key] = stored.split("$")
        if (scheme !== "scrypt" || !salt || !key) return false
        const expected = Buffer.from(key, "base64")
        const actual = yield* scrypt(lower, Buffer.from(salt, "base64"), Number(n), Number(r), Number(p))
        const ok = actual.length === expected.length && crypto.timingSafeEqual(actual, expected)
        if (ok) {
          // bounded: one entry per stored hash seen, cleared wholesale if it ever grows large
          if (verified.size > 100_000) verified.clear()
          verified.set(stored, fp)
        }
        return ok
      }).pipe(Effect.orDie)

    return { hashMd5, hashPlain, verifyMd5 } as const
  }
}) {}
