/**
 * What the recording boxes are handed (§2.1.10): dials queued by `sendTelCall` (§2.5.1) and web
 * messages (status 51) queued by an operator. The box polls `cmd=getCallList` every second once
 * its phone is off the hook (dials only); old firmware long-polls `getMessageList` /
 * `getMessageList_1125` (everything). Each entry is handed out exactly once, whichever poll asks
 * first. An entry not taken within `box.dialTtlMs` is never handed out: a phone picked up
 * minutes later must not start calling a stale number.
 */
import { Effect } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { GroupCommit } from "../db/GroupCommit.js"
import { Sqlite } from "../db/Sqlite.js"
import { Outbox } from "../events/Outbox.js"
import { Ids } from "../shared/Ids.js"
import type { Device } from "./DevicesStore.js"

/** Entries waiting on one channel at most: more is somebody's loop, not a person at a phone. */
export const MAX_WAITING_PER_CHANNEL = 16
/** Entries one poll hands out at most (the box asks again a second later). */
const MAX_PER_POLL = 16

/** §2.1.10 data[].status: 0 dial, 51 web message (1 answer and 2 hang up are the box's own). */
export type MessageStatus = "0" | "51"

export interface BoxMessage {
  readonly id: number
  readonly channel: number
  readonly phone: string
  readonly status: MessageStatus
  /** a web message's {functionname, paramvalue} */
  readonly memo: { readonly functionname: string; readonly paramvalue: string } | null
}

export interface Queued {
  readonly channel: number
  readonly phone: string
  readonly status: MessageStatus
  readonly memo?: BoxMessage["memo"]
}

interface Row {
  readonly id: number
  readonly channel: number
  readonly phone: string
  readonly status: string
  readonly memo: string | null
}

// Handed out and expired entries are of no further use (the outbox keeps the record): pruned when the box's queue is written.
const PRUNE = `DELETE FROM box_messages WHERE mac = ? AND (taken_at IS NOT NULL OR expires_at <= ?)`
const WAITING = `SELECT count(*) AS n FROM box_messages WHERE mac = ? AND channel = ? AND taken_at IS NULL AND expires_at > ?`
const INSERT = `INSERT INTO box_messages (id, mac, channel, phone, status, memo, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
/**
 * One statement marks and returns: two polls at once (or two bridges on one file) cannot both
 * see an entry untaken, since SQLite runs the statement whole under its write lock.
 */
const take = (filter: { readonly channel: boolean; readonly dialsOnly: boolean }) => `UPDATE box_messages SET taken_at = ?
  WHERE id IN (
    SELECT id FROM box_messages
    WHERE mac = ? AND taken_at IS NULL AND expires_at > ?${filter.channel ? " AND channel = ?" : ""}${filter.dialsOnly ? " AND status = '0'" : ""}
    ORDER BY id LIMIT ${MAX_PER_POLL}
  ) AND taken_at IS NULL
  RETURNING id, channel, phone, status, memo`

/** Is anything waiting? Asked first, on the reader: an empty poll (most polls) writes nothing and waits for no commit. */
const anyWaiting = (filter: { readonly channel: boolean; readonly dialsOnly: boolean }) =>
  `SELECT 1 FROM box_messages WHERE mac = ? AND taken_at IS NULL AND expires_at > ?${filter.channel ? " AND channel = ?" : ""}${filter.dialsOnly ? " AND status = '0'" : ""} LIMIT 1`

const toMessage = (row: Row): BoxMessage => {
  let memo: BoxMessage["memo"] = null
  if (row.memo !== null) {
    const parsed = JSON.parse(row.memo) as { functionname?: unknown; paramvalue?: unknown }
    memo = { functionname: String(parsed.functionname ?? ""), paramvalue: String(parsed.paramvalue ?? "") }
  }
  return { id: row.id, channel: row.channel, phone: row.phone, status: row.status === "51" ? "51" : "0", memo }
}

export class BoxQueue extends Effect.Service<BoxQueue>()("BoxQueue", {
  dependencies: [Outbox.Default, GroupCommit.Default, Ids.Default],
  effect: Effect.gen(function* () {
    const commit = yield* GroupCommit
    const sqlite = yield* Sqlite
    const outbox = yield* Outbox
    const ids = yield* Ids
    const { box } = yield* AppConfig
    /** Long polls waiting, by MAC: woken when something is queued for their box. */
    const waiters = new Map<string, Set<() => void>>()

    const wake = (mac: string) => {
      const set = waiters.get(mac)
      if (set) for (const w of [...set]) w()
    }

    /**
     * Queues an entry for a registered box's channel; "full" when the channel has its maximum
     * waiting. `by` is who asked (an extension, or the admin API), `source` the event's source.
     */
    const queue = (device: Device, entry: Queued, origin: { readonly by: string; readonly source: string }) =>
      Effect.gen(function* () {
        const id = yield* ids.next
        const now = Date.now()
        const expiresAt = now + box.dialTtlMs
        const outcome = yield* commit.submit((_, prepared): "queued" | "full" => {
          prepared(PRUNE).run(device.mac, now)
          const { n } = prepared(WAITING).get(device.mac, entry.channel, now) as { n: number }
          if (n >= MAX_WAITING_PER_CHANNEL) return "full"
          prepared(INSERT).run(id, device.mac, entry.channel, entry.phone, entry.status, entry.memo ? JSON.stringify(entry.memo) : null, now, expiresAt)
          const extension = device.channels[String(entry.channel)] ?? null
          outbox.emitIn(prepared, {
            type: entry.status === "0" ? "box.dial.queued" : "box.message.queued",
            enterprise: device.enterprise,
            source: origin.source,
            data: { id, mac: device.mac, channel: entry.channel, extension, phone: entry.phone, ...(entry.memo ? { memo: entry.memo } : {}), by: origin.by, expiresAt },
            dedupKey: `box:message:${id}`
          })
          return "queued"
        })
        if (outcome === "queued") wake(device.mac)
        return { outcome, id }
      })

    /** Takes (marks handed out) the box's waiting entries — of one channel when it names one — oldest first. */
    const takeNow = (mac: string, channel: number | undefined, dialsOnly: boolean) =>
      Effect.gen(function* () {
        const now = Date.now()
        const filter = { channel: channel !== undefined, dialsOnly }
        const args = channel === undefined ? [mac, now] : [mac, now, channel]
        const waiting = yield* sqlite.exclusive((_, prepared) => prepared(anyWaiting(filter)).get(...args) !== undefined)
        if (!waiting) return []
        const sql = take(filter)
        return yield* commit.submit((_, prepared) =>
          // RETURNING follows no ORDER BY: sorted here, so a box is handed its entries in the order they were queued
          ((channel === undefined ? prepared(sql).all(now, mac, now) : prepared(sql).all(now, mac, now, channel)) as Array<Row>)
            .map(toMessage)
            .sort((a, b) => a.id - b.id)
        )
      })

    /** Resolves when something is queued for the box, or after `ms`; leaves no waiter behind when interrupted. */
    const queuedOrAfter = (mac: string, ms: number) =>
      Effect.async<void>((resume) => {
        const set = waiters.get(mac) ?? new Set<() => void>()
        waiters.set(mac, set)
        const done = () => {
          clearTimeout(timer)
          set.delete(done)
          if (set.size === 0) waiters.delete(mac)
          resume(Effect.void)
        }
        const timer = setTimeout(done, ms)
        set.add(done)
        return Effect.sync(() => {
          clearTimeout(timer)
          set.delete(done)
          if (set.size === 0) waiters.delete(mac)
        })
      })

    /**
     * The long poll of getMessageList: what is waiting now, else the first entries queued within
     * `box.messageWaitMs` — an empty list when none came.
     */
    const takeOrWait = (mac: string, channel: number | undefined) =>
      Effect.gen(function* () {
        const deadline = Date.now() + box.messageWaitMs
        for (;;) {
          const taken = yield* takeNow(mac, channel, false)
          const left = deadline - Date.now()
          if (taken.length > 0 || left <= 0) return taken
          yield* queuedOrAfter(mac, left)
        }
      })

    return {
      queue,
      /** getCallList: the dials only, never waiting (the box asks again a second later). */
      takeDials: (mac: string, channel: number | undefined) => takeNow(mac, channel, true),
      takeOrWait,
      /** long polls waiting now (for the bench and the admin page) */
      waiting: () => [...waiters.values()].reduce((n, s) => n + s.size, 0)
    } as const
  })
}) {}
