/**
 * Ids the bridge issues: time-ordered like the platform's (which look like
 * 282982852097151), and always below 2^53 so every client gets them as plain JSON numbers.
 * id = (ms since 2020-01-01) × 1024 + sequence — 1024 ids a millisecond, room for
 * ~278 years. The generator never goes backwards: if the clock does, or a millisecond's
 * sequence is used up, it borrows from the next millisecond.
 */
import { Effect } from "effect"

const EPOCH_MS = Date.UTC(2020, 0, 1)
const PER_MS = 1024

export class Ids extends Effect.Service<Ids>()("Ids", {
  sync: () => {
    let last = 0
    const next = () => {
      const candidate = (Date.now() - EPOCH_MS) * PER_MS
      last = candidate > last ? candidate : last + 1
      return last
    }
    return { next: Effect.sync(next), nextSync: next }
  }
}) {}
