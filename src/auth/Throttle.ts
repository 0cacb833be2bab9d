/**
 * Failed logins lock out further guesses for a while, kept in memory only (a restart forgets
 * them, which costs an attacker a restart of our process — not theirs to give).
 *
 * Three counters, so that an attacker cannot lock a real agent out for long:
 * - per (extension, address): the strict one (`maxFailures`), what a guesser meets first;
 * - per address, over all extensions: stops trying many extensions from one place;
 * - per extension, over all addresses: a high ceiling against guessing from many places.
 * Past its limit, each failure locks the counter for `lockoutMs`, doubled per further failure
 * up to `maxLockoutMs`. Refused attempts are not counted (they checked nothing), so hammering a
 * locked extension does not lengthen its lock-out. A correct password clears the pair's counter
 * and marks the pair trusted for `windowMs`: a trusted pair is held back only by its own
 * counter, so an agent who logged in from an address keeps working there while someone else's
 * guesses lock the extension or share the address. A success clears neither the address's
 * counter (logging in to one's own extension must not reset guessing at others) nor the
 * extension's (clients send credentials on every call, so the agent's own traffic would keep
 * resetting the ceiling that guessing from many addresses is meant to meet).
 *
 * An IPv6 client is counted by its /64: one host is given a whole /64 as a matter of course,
 * so its single addresses cost nothing to change.
 */
import * as net from "node:net"

/** The address a client is counted by: IPv4 (mapped ones too) as it is, IPv6 by its /64. */
export const addressBucket = (address: string): string => {
  const v4 = address.startsWith("::ffff:") ? address.slice(7) : address
  if (net.isIPv4(v4)) return v4
  if (!net.isIPv6(address)) return address
  const [head = "", tail] = address.split("::")
  const front = head === "" ? [] : head.split(":")
  const back = tail === undefined || tail === "" ? [] : tail.split(":")
  const groups = tail === undefined ? front : [...front, ...Array<string>(Math.max(0, 8 - front.length - back.length)).fill("0"), ...back]
  return `${groups.slice(0, 4).map((g) => parseInt(g, 16).toString(16)).join(":")}::/64`
}

export interface ThrottleLimits {
  readonly maxFailures: number
  readonly addressMaxFailures: number
  readonly extensionMaxFailures: number
  readonly windowMs: number
  readonly lockoutMs: number
  readonly maxLockoutMs: number
  readonly maxTracked: number
}

interface Counter {
  readonly failures: number
  /** the window runs from the first failure it counts: a failure every few minutes still ages out */
  readonly windowStart: number
  readonly lockedUntil: number
}

/** How long the `failures`-th failure within the window locks for (0: not yet). */
export const lockoutAfter = (failures: number, limit: number, limits: Pick<ThrottleLimits, "lockoutMs" | "maxLockoutMs">): number =>
  failures < limit ? 0 : Math.min(limits.lockoutMs * 2 ** Math.min(failures - limit, 30), limits.maxLockoutMs)

/** A map that forgets its least recently used entries beyond `max`, so guessing many names cannot grow memory. */
const boundedMap = <V>(max: number) => {
  const map = new Map<string, V>()
  return {
    get: (key: string) => {
      const v = map.get(key)
      if (v !== undefined) {
        map.delete(key)
        map.set(key, v)
      }
      return v
    },
    set: (key: string, v: V) => {
      map.delete(key)
      map.set(key, v)
      if (map.size > max) map.delete(map.keys().next().value!)
    },
    delete: (key: string) => map.delete(key)
  }
}

export const makeThrottle = (limits: ThrottleLimits) => {
  const pairs = boundedMap<Counter>(limits.maxTracked)
  const addresses = boundedMap<Counter>(limits.maxTracked)
  const extensions = boundedMap<Counter>(limits.maxTracked)
  const trusted = boundedMap<number>(limits.maxTracked)

  // a user name is whatever the client sent: cut it, so a long one cannot take much memory
  const keys = (user: string, address: string) => {
    const extension = user.slice(0, 64)
    const bucket = addressBucket(address)
    return { extension, address: bucket, pair: `${bucket}\n${extension}` }
  }

  const waitOf = (c: Counter | undefined, now: number) => (c === undefined || c.lockedUntil <= now ? 0 : c.lockedUntil - now)

  const fail = (map: ReturnType<typeof boundedMap<Counter>>, key: string, limit: number, now: number) => {
    const c = map.get(key)
    const fresh = c === undefined || now - c.windowStart > limits.windowMs
    const failures = (fresh ? 0 : c.failures) + 1
    const lock = lockoutAfter(failures, limit, limits)
    map.set(key, { failures, windowStart: fresh ? now : c.windowStart, lockedUntil: lock > 0 ? now + lock : (c?.lockedUntil ?? 0) })
  }

  return {
    /** Milliseconds until this user may try again from this address (0: now). */
    waitMs: (user: string, address: string, now: number): number => {
      const k = keys(user, address)
      const own = waitOf(pairs.get(k.pair), now)
      if ((trusted.get(k.pair) ?? 0) > now) return own
      return Math.max(own, waitOf(addresses.get(k.address), now), waitOf(extensions.get(k.extension), now))
    },
    failed: (user: string, address: string, now: number): void => {
      const k = keys(user, address)
      fail(pairs, k.pair, limits.maxFailures, now)
      fail(addresses, k.address, limits.addressMaxFailures, now)
      fail(extensions, k.extension, limits.extensionMaxFailures, now)
    },
    succeeded: (user: string, address: string, now: number): void => {
      const k = keys(user, address)
      pairs.delete(k.pair)
      trusted.set(k.pair, now + limits.windowMs)
    }
  }
}
