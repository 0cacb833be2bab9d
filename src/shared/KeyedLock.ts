/**
 * One-at-a-time per key within this process (a bridge owns its data directory alone): for
 * work that checks, writes a file and then records it, where two callers with the same key
 * must not interleave.
 */
import { Effect } from "effect"

export const keyedLock = () => {
  const locks = new Map<string, { readonly semaphore: Effect.Semaphore; users: number }>()
  return <A, E, R>(key: string, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.acquireUseRelease(
      Effect.sync(() => {
        let lock = locks.get(key)
        if (!lock) locks.set(key, (lock = { semaphore: Effect.unsafeMakeSemaphore(1), users: 0 }))
        lock.users++
        return lock
      }),
      (lock) => lock.semaphore.withPermits(1)(effect),
      (lock) =>
        Effect.sync(() => {
          // the map only holds keys someone is using
          if (--lock.users === 0) locks.delete(key)
        })
    )
}
