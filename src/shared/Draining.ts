/**
 * The bridge is stopping: set when shutdown begins, before in-flight requests are waited for.
 * Work that would otherwise hold a request open for long (a long poll) answers at once instead,
 * so a stop takes as long as real work does, not as long as the longest wait.
 */
import { Deferred, Effect } from "effect"

export class Draining extends Effect.Service<Draining>()("Draining", {
  effect: Effect.map(Deferred.make<void>(), (started) => ({
    /** Begins draining (idempotent). */
    begin: Deferred.succeed(started, undefined).pipe(Effect.asVoid),
    /** Resolves once draining has begun. */
    begun: Deferred.await(started),
    isDraining: Deferred.isDone(started)
  }))
}) {}
