/**
 * Comparing a secret someone sent with the one we hold. Both sides are hashed first, so the
 * comparison always runs over two 32-byte digests: it cannot throw on inputs of different byte
 * lengths (a non-ASCII character is one JavaScript character but several UTF-8 bytes), and its
 * time depends on neither the content nor the length of the expected secret.
 */
import * as crypto from "node:crypto"

const digest = (s: string) => crypto.createHash("sha256").update(s, "utf8").digest()

/** Whether `given` is exactly `expected`, in constant time; `undefined` never matches. */
export const sameSecret = (given: string | undefined, expected: string): boolean =>
  // the digests are compared even when nothing was given, so "missing" costs the same as "wrong"
  crypto.timingSafeEqual(digest(given ?? ""), digest(expected)) && given !== undefined
