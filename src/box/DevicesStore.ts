/**
 * The recording boxes (§2.1.10): which enterprise a box (by MAC) belongs to, which extension
 * each of its RJ11 channels is, and the live state its heartbeats report. A box that calls in
 * unregistered is remembered as pending (no enterprise) with its last address, so an operator
 * can assign it. Heartbeat writes go through the group commit with their events: a channel's
 * change of state and its `box.channel` event commit together.
 */
import type { SqlError } from "@effect/sql/SqlError"
import { Effect } from "effect"
import { CHANNEL_STATE_TEXT, type DeviceStatus } from "../../schemas/box.js"
import { AppConfig } from "../config/AppConfig.js"
import { GroupCommit } from "../db/GroupCommit.js"
import { type Prepared, Sqlite } from "../db/Sqlite.js"
import { Outbox } from "../events/Outbox.js"
import type { Job } from "../jobs/Job.js"
import { normalizeMac } from "../shared/Mac.js"
import { BoxQueue, endDialsOfBoxIn } from "./BoxQueue.js"

/** channel number (as text) → extension number */
export type ChannelMap = Readonly<Record<string, string>>

interface DeviceRow {
  readonly mac: string
  readonly enterprise: string | null
  readonly channels: string
  readonly origin: string
  readonly last_address: string | null
  readonly last_seen_at: number | null
  readonly status: string | null
  readonly status_at: number | null
  readonly alert: string | null
  readonly offline_at: number | null
  readonly call_list_at: number | null
  readonly created_at: number
  readonly updated_at: number
}

interface ChannelRow {
  readonly mac: string
  readonly ch: number
  readonly state: number
  readonly phone: string
  readonly timelen: number | null
  readonly peer: number | null
  readonly serial: string | null
  readonly changed_at: number
  readonly updated_at: number
}

export interface LiveChannel {
  readonly ch: number
  readonly extension: string | null
  readonly state: number
  readonly stateText: string
  readonly phone: string
  readonly timelen: number | null
  readonly peer: number | null
  readonly serial: string | null
  readonly changedAt: number
}

export interface Device {
  readonly mac: string
  /** null: pending, an unknown box that called in */
  readonly enterprise: string | null
  readonly pending: boolean
  readonly channels: ChannelMap
  readonly origin: string
  readonly lastAddress: string | null
  readonly lastSeenAt: number | null
  /** the last status report's device part (disk, ip), as decoded */
  readonly status: Readonly<Record<string, unknown>> | null
  readonly statusAt: number | null
  /** the alert in force (`disk:<diskStatus>` or `usage`), null when none */
  readonly alert: string | null
  /** online: called in within box.offlineAfterMs; offline: silent since (offlineAt); unseen: never called in */
  readonly presence: "online" | "offline" | "unseen"
  readonly offlineAt: number | null
  /** when the box first polled getCallList (new firmware: it dials through that poll), or null */
  readonly callListAt: number | null
  readonly live: ReadonlyArray<LiveChannel>
}

export interface DeviceInput {
  readonly enterprise: string
  readonly channels: ChannelMap
}

/** An assignment that cannot stand: the problem names its field (`enterprise`, `channels.<ch>`). */
export interface Refused {
  readonly refused: string
}

const parseObject = (text: string | null): Record<string, unknown> | null => {
  if (text === null) return null
  try {
    const v: unknown = JSON.parse(text)
    return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null
  } catch {
    return null
  }
}

const channelsOf = (row: DeviceRow): ChannelMap => {
  const parsed = parseObject(row.channels) ?? {}
  return Object.fromEntries(Object.entries(parsed).filter((e): e is [string, string] => typeof e[1] === "string"))
}

const toDevice = (row: DeviceRow, live: ReadonlyArray<ChannelRow>): Device => {
  const channels = channelsOf(row)
  return {
    mac: row.mac,
    enterprise: row.enterprise,
    pending: row.enterprise === null,
    channels,
    origin: row.origin,
    lastAddress: row.last_address,
    lastSeenAt: row.last_seen_at,
    status: parseObject(row.status),
    statusAt: row.status_at,
    alert: row.alert,
    presence: row.offline_at !== null ? "offline" : row.last_seen_at === null ? "unseen" : "online",
    offlineAt: row.offline_at,
    callListAt: row.call_list_at,
    live: live.map((c) => ({
      ch: c.ch,
      extension: channels[String(c.ch)] ?? null,
      state: c.state,
      stateText: CHANNEL_STATE_TEXT[c.state] ?? "",
      phone: c.phone,
      timelen: c.timelen,
      peer: c.peer,
      serial: c.serial,
      changedAt: c.changed_at
    }))
  }
}

const SELECT_DEVICE = `SELECT * FROM box_devices WHERE mac = ?`
const SELECT_CHANNELS = `SELECT * FROM box_channels WHERE mac = ? ORDER BY ch`
const UPSERT_CONFIGURED = `INSERT INTO box_devices (mac, enterprise, channels, origin, created_at, updated_at) VALUES (?, ?, ?, 'config', ?, ?)
  ON CONFLICT (mac) DO UPDATE SET enterprise = excluded.enterprise, channels = excluded.channels, origin = 'config', updated_at = excluded.updated_at`
const INSERT_PENDING = `INSERT INTO box_devices (mac, enterprise, origin, last_address, last_seen_at, created_at, updated_at) VALUES (?, NULL, 'pending', ?, ?, ?, ?)
  ON CONFLICT (mac) DO UPDATE SET last_address = excluded.last_address, last_seen_at = excluded.last_seen_at`
const TOUCH = `UPDATE box_devices SET last_address = ?, last_seen_at = ?, offline_at = NULL WHERE mac = ?`
const OFFLINE_SINCE = `SELECT offline_at, last_seen_at FROM box_devices WHERE mac = ?`
/** The registered boxes silent since before the cutoff, marked offline in the statement that finds them. */
const MARK_OFFLINE = `UPDATE box_devices SET offline_at = ?
  WHERE enterprise IS NOT NULL AND offline_at IS NULL AND last_seen_at IS NOT NULL AND last_seen_at < ?
  RETURNING mac, enterprise, last_seen_at, last_address`
const UPSERT_CHANNEL = `INSERT INTO box_channels (mac, ch, state, phone, timelen, peer, serial, changed_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
  ON CONFLICT (mac, ch) DO UPDATE SET state = excluded.state, phone = excluded.phone, timelen = excluded.timelen, peer = excluded.peer,
    serial = excluded.serial, updated_at = excluded.updated_at,
    changed_at = CASE WHEN box_channels.state = excluded.state THEN box_channels.changed_at ELSE excluded.changed_at END`
const SAVE_STATUS = `UPDATE box_devices SET status = ?, status_at = ?, alert = ?, last_address = ?, last_seen_at = ? WHERE mac = ?`
/** A box forgotten or given to another enterprise: the dials its former owner queued must not ring on the new owner's phones. */
const FORGET_DIALS = `DELETE FROM box_messages WHERE mac = ?`
const ENTERPRISE_EXISTS = `SELECT 1 FROM enterprises WHERE comp_number = ?`
const EXTENSION_OF = `SELECT 1 FROM extensions WHERE extension = ? AND comp_number = ?`

/**
 * Unknown boxes remembered as pending at most: each calls in unasked, so without a bound any
 * sender of made-up MACs could grow the table forever. Over it, the pending boxes seen longest
 * ago are forgotten (a real box that still calls in comes back at its next call).
 */
const MAX_PENDING = 1000
const DROP_OLDEST_PENDING = `DELETE FROM box_devices WHERE mac IN (
  SELECT mac FROM box_devices WHERE enterprise IS NULL ORDER BY last_seen_at DESC, mac LIMIT -1 OFFSET ${MAX_PENDING})`

/** Why a box cannot be assigned so (the enterprise unknown, a channel not one of its extensions), or undefined. */
const problemIn = (prepared: Prepared, enterprise: string | null, channels: ChannelMap): string | undefined => {
  if (enterprise === null) return "enterprise: a box is assigned to an enterprise"
  if (!prepared(ENTERPRISE_EXISTS).get(enterprise)) return `enterprise: no enterprise ${enterprise}`
  for (const [ch, extension] of Object.entries(channels))
    if (!prepared(EXTENSION_OF).get(extension, enterprise)) return `channels.${ch}: ${extension} is not an extension of enterprise ${enterprise}`
  return undefined
}

/**
 * How often a box that keeps calling in has its last-seen time written: a poll every second need
 * not write every second. Well under box.offlineAfterMs, so a box that calls in is never seen as silent.
 */
const seenResolutionMs = (offlineAfterMs: number) => Math.min(5_000, Math.floor(offlineAfterMs / 4))

/** The alert a status report raises, or null: the disk not working, or fuller than the threshold. */
const alertOf = (status: typeof DeviceStatus.Type, thresholdPercent: number): string | null => {
  if (status.diskStatus !== undefined && status.diskStatus !== null && status.diskStatus !== 0) return `disk:${status.diskStatus}`
  if (status.diskUsagePercent !== undefined && status.diskUsagePercent !== null && status.diskUsagePercent >= thresholdPercent) return "usage"
  return null
}

const text = (v: string | number | null | undefined) => (v === undefined || v === null ? "" : String(v))

export class DevicesStore extends Effect.Service<DevicesStore>()("DevicesStore", {
  dependencies: [Outbox.Default, GroupCommit.Default],
  effect: Effect.gen(function* () {
    const sqlite = yield* Sqlite
    const commit = yield* GroupCommit
    const outbox = yield* Outbox
    const config = yield* AppConfig
    /** Silence is only known once the bridge has listened as long: a box is not offline for the time the bridge was down. */
    const listeningSince = Date.now()
    const resolutionMs = seenResolutionMs(config.box.offlineAfterMs)

    const deviceIn = (prepared: Prepared, mac: string): Device | undefined => {
      const row = prepared(SELECT_DEVICE).get(mac) as DeviceRow | undefined
      return row && toDevice(row, prepared(SELECT_CHANNELS).all(mac) as Array<ChannelRow>)
    }

    const get = (mac: string) => sqlite.exclusive((_, prepared) => deviceIn(prepared, mac))

    /** The box is no longer its owner's: nothing waiting for it is handed out, and the calls it was dialling end (their ends are delivered by the box driver). */
    const forgetDialsIn = (prepared: Prepared, mac: string, now: number) => {
      prepared(FORGET_DIALS).run(mac)
      endDialsOfBoxIn(prepared, mac, now)
    }

    const byMac = (rows: ReadonlyArray<DeviceRow>, channels: ReadonlyArray<ChannelRow>) => {
      const live = new Map<string, Array<ChannelRow>>()
      for (const c of channels) live.set(c.mac, [...(live.get(c.mac) ?? []), c])
      return rows.map((row) => toDevice(row, live.get(row.mac) ?? []))
    }

    const list = sqlite.exclusive((_, prepared) =>
      byMac(
        prepared(`SELECT * FROM box_devices ORDER BY enterprise IS NULL, mac`).all() as Array<DeviceRow>,
        prepared(`SELECT * FROM box_channels ORDER BY mac, ch`).all() as Array<ChannelRow>
      )
    )

    /** The boxes registered to one enterprise, with their live channels (channel monitoring, §2.2.1–2.2.2). */
    const listOf = (enterprise: string) =>
      sqlite.exclusive((_, prepared) =>
        byMac(
          prepared(`SELECT * FROM box_devices WHERE enterprise = ? ORDER BY mac`).all(enterprise) as Array<DeviceRow>,
          prepared(`SELECT c.* FROM box_channels c JOIN box_devices d ON d.mac = c.mac WHERE d.enterprise = ? ORDER BY c.mac, c.ch`).all(enterprise) as Array<ChannelRow>
        )
      )

    /**
     * The devices of the config, registered (or re-assigned) at start: config wins over earlier
     * admin changes of the same box. One whose enterprise or extensions are unknown is refused
     * (the caller logs it); a box the config registered before and no longer names (or names
     * wrongly now) is forgotten, as the config is the whole truth about its own boxes.
     */
    const upsertConfigured = Effect.suspend(() => {
      const now = Date.now()
      return sqlite.exclusive((db, prepared) =>
        db.transaction(() => {
          const refused: Array<{ readonly mac: string; readonly problem: string }> = []
          const registered = new Set<string>()
          for (const d of config.devices) {
            const mac = normalizeMac(d.mac)!
            const problem = problemIn(prepared, d.enterprise, d.channels)
            if (problem !== undefined) {
              refused.push({ mac, problem })
              continue
            }
            const was = prepared(SELECT_DEVICE).get(mac) as DeviceRow | undefined
            if (was && was.enterprise !== d.enterprise) forgetDialsIn(prepared, mac, now)
            prepared(UPSERT_CONFIGURED).run(mac, d.enterprise, JSON.stringify(d.channels), now, now)
            registered.add(mac)
          }
          const stale = (prepared(`SELECT mac FROM box_devices WHERE origin = 'config'`).all() as Array<{ mac: string }>)
            .map((r) => r.mac)
            .filter((mac) => !registered.has(mac))
          for (const mac of stale) {
            forgetDialsIn(prepared, mac, now)
            prepared(`DELETE FROM box_channels WHERE mac = ?`).run(mac)
            prepared(`DELETE FROM box_devices WHERE mac = ?`).run(mac)
          }
          return { refused, removed: stale }
        })()
      )
    })

    /** Registers a box (or assigns a pending one); "exists" when it is registered already. */
    const create = (mac: string, input: DeviceInput) =>
      Effect.suspend(() => {
        const now = Date.now()
        return sqlite.exclusive((db, prepared) =>
          db.transaction((): Device | "exists" | Refused => {
            const existing = prepared(SELECT_DEVICE).get(mac) as DeviceRow | undefined
            if (existing && existing.enterprise !== null) return "exists"
            const problem = problemIn(prepared, input.enterprise, input.channels)
            if (problem !== undefined) return { refused: problem }
            if (existing) prepared(`UPDATE box_devices SET enterprise = ?, channels = ?, origin = 'admin', updated_at = ? WHERE mac = ?`).run(input.enterprise, JSON.stringify(input.channels), now, mac)
            else
              prepared(`INSERT INTO box_devices (mac, enterprise, channels, origin, created_at, updated_at) VALUES (?, ?, ?, 'admin', ?, ?)`).run(
                mac,
                input.enterprise,
                JSON.stringify(input.channels),
                now,
                now
              )
            return deviceIn(prepared, mac)!
          })()
        )
      })

    /** Changes what is given (the result must still be an assignment that stands); undefined when there is no such box. */
    const update = (mac: string, patch: Partial<DeviceInput>) =>
      Effect.suspend(() => {
        const now = Date.now()
        return sqlite.exclusive((db, prepared) =>
          db.transaction((): Device | undefined | Refused => {
            const existing = prepared(SELECT_DEVICE).get(mac) as DeviceRow | undefined
            if (!existing) return undefined
            const enterprise = patch.enterprise ?? existing.enterprise
            const channels = patch.channels ?? channelsOf(existing)
            const problem = problemIn(prepared, enterprise, channels)
            if (problem !== undefined) return { refused: problem }
            if (enterprise !== existing.enterprise) forgetDialsIn(prepared, mac, now)
            prepared(`UPDATE box_devices SET enterprise = ?, channels = ?, origin = CASE WHEN origin = 'pending' THEN 'admin' ELSE origin END, updated_at = ? WHERE mac = ?`).run(
              enterprise,
              JSON.stringify(channels),
              now,
              mac
            )
            return deviceIn(prepared, mac)
          })()
        )
      })

    /** Forgets a box and its live state; false when there was none. A box from config comes back at the next start. */
    const remove = (mac: string) =>
      sqlite.exclusive((db, prepared) =>
        db.transaction(() => {
          forgetDialsIn(prepared, mac, Date.now())
          prepared(`DELETE FROM box_channels WHERE mac = ?`).run(mac)
          return prepared(`DELETE FROM box_devices WHERE mac = ?`).run(mac).changes > 0
        })()
      )

    /**
     * A box calls in: its device when it is registered to an enterprise, else undefined — and
     * it is remembered as pending. Its address and time are written when they moved (at most
     * every few seconds for a box that polls).
     */
    const callIn = (mac: string, address: string | null, now: number) =>
      Effect.flatMap(get(mac), (device): Effect.Effect<Device | undefined, SqlError> => {
        const stale =
          !device || device.offlineAt !== null || device.lastAddress !== address || device.lastSeenAt === null || now - device.lastSeenAt >= resolutionMs
        const known = device && !device.pending ? device : undefined
        if (!stale) return Effect.succeed(known)
        return Effect.as(
          commit.submit((_, prepared) => {
            if (device && !device.pending) {
              // read again in the write: the presence sweep may have marked it offline since
              const was = prepared(OFFLINE_SINCE).get(mac) as { offline_at: number | null; last_seen_at: number | null } | undefined
              prepared(TOUCH).run(address, now, mac)
              if (was && was.offline_at !== null)
                outbox.emitIn(prepared, {
                  type: "box.online",
                  enterprise: device.enterprise,
                  source: "box",
                  data: { mac, address, offlineAt: was.offline_at, lastSeenAt: was.last_seen_at, at: now },
                  dedupKey: `box:${mac}:online:${was.offline_at}`
                })
            } else {
              prepared(INSERT_PENDING).run(mac, address, now, now, now)
              if (!device) prepared(DROP_OLDEST_PENDING).run()
            }
          }),
          known
        )
      })

    /**
     * The presence sweep: each registered box silent for box.offlineAfterMs is marked offline
     * with its `box.offline` event, once (it is online again at its next call). Returns how many.
     */
    const markOffline = Effect.suspend(() => {
      const now = Date.now()
      if (now - listeningSince < config.box.offlineAfterMs) return Effect.succeed(0)
      return commit.submit((_, prepared) => {
        const silent = prepared(MARK_OFFLINE).all(now, now - config.box.offlineAfterMs) as Array<{
          mac: string
          enterprise: string
          last_seen_at: number
          last_address: string | null
        }>
        for (const d of silent)
          outbox.emitIn(prepared, {
            type: "box.offline",
            enterprise: d.enterprise,
            source: "box",
            data: { mac: d.mac, lastSeenAt: d.last_seen_at, lastAddress: d.last_address, silentForMs: now - d.last_seen_at, at: now },
            dedupKey: `box:${d.mac}:offline:${now}`
          })
        return silent.length
      })
    })

    /**
     * A status report (cmd=channelstatus): the device's part and each channel's state are
     * stored; a channel whose state changed raises `box.channel`, an alert that begins raises
     * `box.alert` (an alert in force is not raised again on every heartbeat).
     */
    const report = (device: Device, status: typeof DeviceStatus.Type, address: string | null) =>
      Effect.suspend(() => {
        const now = Date.now()
        const { channels, ...disk } = status
        const alert = alertOf(status, config.box.diskAlertPercent)
        return commit.submit((_, prepared) => {
          const before = new Map((prepared(SELECT_CHANNELS).all(device.mac) as Array<ChannelRow>).map((c) => [c.ch, c]))
          const previousAlert = (prepared(SELECT_DEVICE).get(device.mac) as DeviceRow | undefined)?.alert ?? null
          let changed = 0
          for (const c of channels) {
            const prior = before.get(c.ch)
            const timelen = c.timelen ?? null
            const peer = c.peer ?? null
            const serial = c.serial === undefined || c.serial === null ? null : String(c.serial)
            prepared(UPSERT_CHANNEL).run(device.mac, c.ch, c.state, text(c.phone), timelen, peer, serial, now, now)
            // what the next channel of this report compares with: a channel named twice must not read as a change on every heartbeat
            before.set(c.ch, { mac: device.mac, ch: c.ch, state: c.state, phone: text(c.phone), timelen, peer, serial, changed_at: prior?.state === c.state ? prior.changed_at : now, updated_at: now })
            if (prior?.state === c.state) continue
            changed++
            outbox.emitIn(prepared, {
              type: "box.channel",
              enterprise: device.enterprise,
              source: "box",
              data: {
                mac: device.mac,
                ch: c.ch,
                extension: device.channels[String(c.ch)] ?? null,
                state: c.state,
                stateText: CHANNEL_STATE_TEXT[c.state] ?? "",
                previousState: prior?.state ?? null,
                phone: text(c.phone),
                timelen,
                peer,
                at: now
              }
            })
          }
          prepared(SAVE_STATUS).run(JSON.stringify(disk), now, alert, address, now, device.mac)
          if (alert !== null && alert !== previousAlert)
            outbox.emitIn(prepared, {
              type: "box.alert",
              enterprise: device.enterprise,
              source: "box",
              data: { mac: device.mac, alert, diskStatus: disk.diskStatus ?? null, diskUsagePercent: disk.diskUsagePercent ?? null, thresholdPercent: config.box.diskAlertPercent, at: now }
            })
          return { changed, alert }
        })
      })

    /** The box polls getCallList: noted once, so its long poll leaves the dials to that poll. */
    const notePollsCallList = (device: Device) =>
      device.callListAt !== null
        ? Effect.void
        : Effect.suspend(() => {
            const now = Date.now()
            return commit.submit((_, prepared) => void prepared(`UPDATE box_devices SET call_list_at = ? WHERE mac = ? AND call_list_at IS NULL`).run(now, device.mac))
          })

    return { notePollsCallList, get, list, listOf, upsertConfigured, create, update, remove, callIn, report, markOffline } as const
  })
}) {}

/** Seconds that divide a minute, so a cron step is even: the sweep runs about four times per box.offlineAfterMs. */
const STEPS = [1, 2, 3, 4, 5, 6, 10, 15, 20, 30]

/** Marks silent boxes offline (box.offline) and prunes what the boxes were handed; how often follows box.offlineAfterMs. */
export const presenceSweep: Job = {
  name: "box.presence",
  schedule: (config) => {
    const wanted = config.box.offlineAfterMs / 4000
    const step = [...STEPS].reverse().find((s) => s <= wanted) ?? 1
    return `*/${step} * * * * *`
  },
  run: Effect.zipRight(
    Effect.flatMap(DevicesStore, (devices) => devices.markOffline),
    Effect.flatMap(BoxQueue, (queue) => queue.prune)
  )
}
