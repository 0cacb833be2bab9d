/**
 * A platform push made state: its event (with its deliveries) and the change it describes
 * (a call record), committed together; a retry (same natural key) changes nothing. The push
 * endpoints call it with what arrived over HTTP, the telephony simulator with what the
 * platform would have sent — so a simulated call is stored exactly as a pushed one.
 */
import { Context, Effect } from "effect"
import { StorageFailed } from "../api/Errors.js"
import { AppConfig } from "../config/AppConfig.js"
import { CdrStore } from "../records/CdrStore.js"
import { GroupCommit } from "../db/GroupCommit.js"
import { Outbox } from "../events/Outbox.js"
import type { Receiver } from "./receivers.js"

export interface Ingested {
  /** the request as received (or as the platform would have sent it), for passthrough formats */
  readonly raw: string
  /** the event's source: `push:<receiver>`, `telephony:simulator`, … */
  readonly source: string
  /** the key when the push has no natural one */
  readonly fallbackKey: () => string
}

/**
 * Answers the event's id, or null when it was a retry of a push already stored. Every push
 * passes here: its services are read from the context in one step rather than one per
 * service; the rest is the commit's wait and its failure's catch.
 */
export const ingest = <A, I>(receiver: Receiver<A, I>, push: A, how: Ingested) =>
  Effect.contextWithEffect((context: Context.Context<Outbox | GroupCommit | CdrStore | AppConfig>) => {
    const received = receiver.receive(push)
    const outbox = Context.get(context, Outbox)
    const services = { cdrs: Context.get(context, CdrStore), config: Context.get(context, AppConfig) }
    const apply = receiver.apply?.(received, services)
    const link = receiver.link?.(received, services)
    const event = {
      type: received.type,
      enterprise: received.enterprise,
      source: how.source,
      data: received.data,
      raw: how.raw,
      dedupKey: received.key ?? `${receiver.name}:${how.fallbackKey()}`
    }
    return Context.get(context, GroupCommit)
      .submit((_, prepared) => {
        const linked = link?.(prepared)
        const eventId = outbox.emitIn(prepared, linked === undefined ? event : { ...event, data: { ...event.data, ...linked } })
        // a retry of a push already stored changes nothing
        if (eventId !== null && apply) apply(prepared)
        return eventId
      })
      .pipe(Effect.catchAll((e) => Effect.zipRight(Effect.logError("push could not be stored", e), Effect.fail(notStored))))
  })

const notStored = new StorageFailed({ message: "the push could not be stored; send it again" })
