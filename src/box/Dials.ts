/**
 * The dial queue of the recording boxes: `sendTelCall` (§2.5.1) queues a number for a box's
 * channel; the box, polling `cmd=getCallList` every second once its phone is off the hook
 * (§2.1.10), is handed each dial exactly once. A dial not taken within `box.dialTtlMs` is never
 * handed out: a phone picked up minutes later must not start calling a stale number.
 */
import { Effect } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { GroupCommit } from "../db/GroupCommit.js"
import { Outbox } from "../events/Outbox.js"
import { Ids } from "../shared/Ids.js"
import type { Device } from "./DevicesStore.js"

/** Dials waiting on one channel at most: more is somebody's loop, not a person at a phone. */
export const MAX_WAITING_PER_CHANNEL = 16
/** Dials one poll hands out at most (the box asks again a second later). */
const MAX_PER_POLL = 16

export interface Dial {
  readonly id: number
  readonly channel: number
  readonly phone: string
}

// Handed out and expired dials are of no further use (the outbox keeps the record): pruned when the box's queue is written.
const PRUNE = `DELETE FROM box_dials WHERE mac = ? AND (taken_at IS NOT NULL OR expires_at <= ?)`
const WAITING = `SELECT count(*) AS n FROM box_dials WHERE mac = ? AND channel = ? AND taken_at IS NULL AND expires_at > ?`
const INSERT = `INSERT INTO box_dials (id, mac, channel, phone, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`
/**
 * One statement marks and returns: two polls at once (or two bridges on one file) cannot both
 * see a dial untaken, since SQLite runs the statement whole under its write lock.
 */
const take = (oneChannel: boolean) => `UPDATE box_dials SET taken_at = ?
  WHERE id IN (
    SELECT id FROM box_dials
    WHERE mac = ? AND taken_at IS NULL AND expires_at > ?${oneChannel ? " AND channel = ?" : ""}
    ORDER BY id LIMIT ${MAX_PER_POLL}
  ) AND taken_at IS NULL
  RETURNING id, channel, phone`

/** Queues a dial for a registered box's channel; "full" when the channel has its maximum waiting. */
export const queueDial = (device: Device, channel: number, phone: string, by: string) =>
  Effect.gen(function* () {
    const commit = yield* GroupCommit
    const outbox = yield* Outbox
    const ids = yield* Ids
    const { box } = yield* AppConfig
    const id = yield* ids.next
    const now = Date.now()
    const expiresAt = now + box.dialTtlMs
    return yield* commit.submit((_, prepared): "queued" | "full" => {
      prepared(PRUNE).run(device.mac, now)
      const { n } = prepared(WAITING).get(device.mac, channel, now) as { n: number }
      if (n >= MAX_WAITING_PER_CHANNEL) return "full"
      prepared(INSERT).run(id, device.mac, channel, phone, now, expiresAt)
      outbox.emitIn(prepared, {
        type: "box.dial.queued",
        enterprise: device.enterprise,
        source: "api:sendTelCall",
        data: { id, mac: device.mac, channel, extension: device.channels[String(channel)] ?? null, phone, by, expiresAt },
        dedupKey: `box:dial:${id}`
      })
      return "queued"
    })
  })

/** Takes (marks handed out) the box's waiting dials — of one channel when it names one — oldest first. */
export const takeDials = (mac: string, channel: number | undefined) =>
  Effect.flatMap(GroupCommit, (commit) =>
    Effect.suspend(() => {
      const now = Date.now()
      return commit.submit((_, prepared) =>
        // RETURNING follows no ORDER BY: sorted here, so a box is handed its dials in the order they were asked for
        (
          (channel === undefined ? prepared(take(false)).all(now, mac, now) : prepared(take(true)).all(now, mac, now, channel)) as Array<Dial>
        ).sort((a, b) => a.id - b.id)
      )
    })
  )
