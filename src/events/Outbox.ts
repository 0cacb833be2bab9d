/**
 * The one way anything becomes an event. `emit` writes the event row and one delivery per
 * matching enabled target with the caller's SQL, so when the caller runs it inside the
 * transaction of its state change, all of it commits together or not at all (transactional
 * outbox). The delivery worker is woken afterwards; it only sees committed rows.
 */
import { Effect } from "effect"
import * as prom from "prom-client"
import { type Prepared, Sqlite } from "../db/Sqlite.js"
import { matches } from "../forwarding/Target.js"
import { Metrics } from "../http/Metrics.js"
import { Targets } from "../forwarding/Targets.js"
import { Ids } from "../shared/Ids.js"
import type { EventType } from "./EventTypes.js"

export interface NewEvent {
  /** e.g. `extension.created`, `call.hangup`: one of the catalogue (src/events/EventTypes.ts) */
  readonly type: EventType
  readonly enterprise: string | null
  /** where it came from: `api:<method>`, `push:voip`, `box`, … */
  readonly source: string
  readonly data: unknown
  /** the request as received, for passthrough formats */
  readonly raw?: string
  /** natural key: a second event with the same key is not recorded */
  readonly dedupKey?: string
  /** operational events about a target are not sent to that target */
  readonly aboutTarget?: string
}

/** An event as stored: `data` and `raw` are JSON text. */
export interface StoredEvent {
  readonly id: number
  readonly type: string
  readonly occurred_at: number
  readonly enterprise: string | null
  readonly source: string
  readonly data: string
  readonly raw: string | null
}

/** Deliveries of one call to one target keep their order: the call's id, wherever the event carries it. */
export const orderKeyOf = (data: unknown): string | null => {
  if (typeof data !== "object" || data === null) return null
  const d = data as Record<string, unknown>
  const memo = typeof d.memo === "object" && d.memo !== null ? (d.memo as Record<string, unknown>) : undefined
  const id = d.cdrId ?? memo?.cdrId
  if (typeof id === "string" || typeof id === "number") return String(id)
  // a callback and a verification call are calls too: their status pushes keep their order
  if (typeof d.cbkId === "string" || typeof d.cbkId === "number") return `cbk:${d.cbkId}`
  return typeof d.wsId === "string" || typeof d.wsId === "number" ? `ws:${d.wsId}` : null
}

/**
 * `next_attempt_at` of a delivery held behind its call's dead letter (one that exhausted its
 * retries): out of the due range, so claims do not walk past it again and again. Redriving or
 * deleting that dead letter releases it.
 */
export const HELD = 8_640_000_000_000_000
/**
 * What holds a call's later deliveries to a target: an earlier one pending, in flight, or dead
 * having exhausted its retries. Spelt exactly as the deliveries_order index's condition
 * (migration 0007), which every statement about a call's order must repeat for SQLite to use it.
 */
export const holdsOrder = (alias?: string) => {
  const c = alias ? `${alias}.` : ""
  return `(${c}status IN ('pending', 'in_flight') OR (${c}status = 'dead' AND ${c}dead_reason = 'exhausted'))`
}
/** Whether a call (target, order key) has a dead letter its later deliveries wait behind. */
const BEHIND_DEAD = `SELECT 1 FROM deliveries WHERE target = ? AND order_key = ? AND ${holdsOrder()} AND status = 'dead' LIMIT 1`

const INSERT_EVENT = `INSERT INTO events (id, type, occurred_at, enterprise, source, data, raw, dedup_key)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dedup_key) DO NOTHING`
const INSERT_DELIVERY = `INSERT INTO deliveries (id, event_id, target, status, next_attempt_at, order_key, webhook_id, created_at, updated_at, url)
  VALUES (?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?)`

export class Outbox extends Effect.Service<Outbox>()("Outbox", {
  dependencies: [Ids.Default, Targets.Default, Metrics.Default],
  effect: Effect.gen(function* () {
    const sqlite = yield* Sqlite
    const ids = yield* Ids
    const targets = yield* Targets
    const { registry } = yield* Metrics
    // counted when written (a group commit that re-runs a failed batch counts its events again: rare, and said in the help)
    const raised = new prom.Counter({ name: "bridge_events_total", help: "Events raised, by type (a batch written again after a failed commit is counted again)", labelNames: ["type"] as const, registers: [registry] })

    /**
     * Records the event and its deliveries on the caller's connection (inside its transaction:
     * a group-commit writer, or `exclusive` within an @effect/sql transaction); answers the
     * event id, or null when its dedupKey was seen before. Wakes the delivery worker, which
     * can only claim once the caller's transaction has released the connection.
     */
    /**
     * One delivery of an event to a target, in the call's order, held (see HELD) when the call
     * waits behind a dead letter; on the caller's connection. Answers the delivery's id.
     */
    const addDeliveryIn = (prepared: Prepared, eventId: number, target: string, orderKey: string | null, now: number, url: string | null = null) => {
      const deliveryId = ids.nextSync()
      const held = orderKey !== null && prepared(BEHIND_DEAD).get(target, orderKey) !== undefined
      prepared(INSERT_DELIVERY).run(deliveryId, eventId, target, held ? HELD : now, orderKey, `msg_${deliveryId}`, now, now, url)
      return deliveryId
    }

    const emitIn = (prepared: Prepared, event: NewEvent): number | null => {
      const id = ids.nextSync()
      const now = Date.now()
      const inserted = prepared(INSERT_EVENT).run(
        id,
        event.type,
        now,
        event.enterprise,
        event.source,
        JSON.stringify(event.data),
        event.raw ?? null,
        event.dedupKey ?? null
      )
      if (inserted.changes === 0) return null
      raised.inc({ type: event.type })
      let orderKey: string | null | undefined
      for (const target of targets.snapshot()) {
        // a disabled target's deliveries are kept, waiting: pausing a target loses nothing
        if (target.name === event.aboutTarget || !matches(target, event.type)) continue
        if (orderKey === undefined) orderKey = orderKeyOf(event.data)
        addDeliveryIn(prepared, id, target.name, orderKey, now)
      }
      if (orderKey !== undefined) targets.wakeTargetsSync()
      return id
    }

    /** `emitIn` as an Effect: atomic on its own, or part of the caller's @effect/sql transaction. */
    const emit = (event: NewEvent) =>
      sqlite.exclusive((db, prepared) => (db.inTransaction ? emitIn(prepared, event) : db.transaction(() => emitIn(prepared, event))()))

    return { emit, emitIn, addDeliveryIn } as const
  })
}) {}
