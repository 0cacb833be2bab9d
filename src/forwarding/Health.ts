/**
 * The delivery worker's health, read by /readyz: degraded while any of its writes (a claim,
 * the lease sweep, an outcome) fails and has not worked since. Logged as it changes.
 */
import { Cause, Context, Effect } from "effect"

export type WorkerStatus =
  | { readonly status: "ok" }
  | { readonly status: "degraded"; readonly lastError: string; readonly since: number; readonly failures: number }

export class WorkerHealth extends Context.Tag("WorkerHealth")<WorkerHealth, { readonly current: () => WorkerStatus }>() {}

const messageOf = (cause: Cause.Cause<unknown>) => {
  const e = Cause.squash(cause)
  const inner = e instanceof Error && "cause" in e && e.cause instanceof Error ? e.cause : e
  return inner instanceof Error ? inner.message : String(inner)
}

export type Health = ReturnType<typeof makeHealth>

export const makeHealth = () => {
  /** the writes that failed and have not worked since, by what they are ("claim", "sweep", "outcome <id>") */
  const failing = new Map<string, { readonly since: number; readonly lastError: string; readonly at: number; readonly failures: number }>()
  const current = (): WorkerStatus => {
    if (failing.size === 0) return { status: "ok" }
    const all = [...failing.values()]
    const latest = all.reduce((a, b) => (b.at > a.at ? b : a))
    return { status: "degraded", lastError: latest.lastError, since: Math.min(...all.map((f) => f.since)), failures: all.reduce((n, f) => n + f.failures, 0) }
  }
  const failed = (key: string, what: string, cause: Cause.Cause<unknown>) =>
    Effect.suspend(() => {
      const entering = failing.size === 0
      const before = failing.get(key)
      const now = Date.now()
      failing.set(key, { since: before?.since ?? now, lastError: messageOf(cause), at: now, failures: (before?.failures ?? 0) + 1 })
      const { failures, lastError } = current() as Extract<WorkerStatus, { status: "degraded" }>
      const log = entering ? Effect.logError(`delivery worker: ${what}; degraded until storage works again`, cause) : Effect.logWarning(`delivery worker: ${what}`)
      return log.pipe(Effect.annotateLogs({ failures, lastError }))
    })
  const worked = (key: string) =>
    Effect.suspend(() => {
      const was = current()
      if (!failing.delete(key) || failing.size > 0 || was.status === "ok") return Effect.void
      return Effect.logInfo("delivery worker: storage works again").pipe(Effect.annotateLogs({ failures: was.failures }))
    })
  /** an outcome given up at the end of its window is the lease sweep's to write: its failure is, too */
  const handToSweep = (key: string) =>
    Effect.sync(() => {
      const given = failing.get(key)
      if (!given || !failing.delete(key)) return
      const sweep = failing.get("sweep")
      failing.set("sweep", sweep ? { ...sweep, since: Math.min(sweep.since, given.since), failures: sweep.failures + given.failures } : given)
    })
  return { current, failed, worked, handToSweep } as const
}
