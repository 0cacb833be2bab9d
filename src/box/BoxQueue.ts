/**
 * What the recording boxes are handed (§2.1.10): dials queued by `sendTelCall` (§2.5.1) and web
 * messages (status 51) queued by an operator. The box polls `cmd=getCallList` every second once
 * its phone is off the hook (dials only); old firmware long-polls `getMessageList` /
 * `getMessageList_1125` (everything). Each entry is handed out exactly once, whichever poll asks
 * first. An entry not taken within `box.dialTtlMs` is never handed out: a phone picked up
 * minutes later must not start calling a stale number.
 *
 * A dial the box driver placed for a callback, verification or task call (`call` given) is
 * also a row of box_dial_calls until its end reaches the requester. The box says nothing of a
 * call until it is over, when it uploads the call record (cmd=upload): that upload ends the
 * dial it matches — the same box and channel, an outgoing call to the same number (normal form,
 * lastPhoneOf), uploaded within its report window and started no earlier than CLOCK_SLACK_MS
 * before its hand-out, the earliest such dial handed out first. A line dials what it was handed
 * one call after another, so a dial's window (`telephony.box.reportWithinMs`) runs from the later
 * of its hand-out and the report of the dial before it on its channel: handed out while an
 * earlier one there is open, it waits ("behind") until that one ends. An end without a report
 * (the window passed, the box changed hands) proves nothing of the line, so the next one's window
 * then runs from its own hand-out, and may have passed already. A dial never
 * handed out by its expiry, or handed out and never reported in the window, ends as not
 * answered (NOT_TAKEN_BY_BOX / NOT_REPORTED_BY_BOX). A dial is its enterprise's: a box given to
 * another enterprise, or removed, ends its open dials at once (BOX_REASSIGNED), in the same
 * transaction, and an upload matches only dials of the enterprise the box is then registered to.
 */
import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Queue } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { GroupCommit } from "../db/GroupCommit.js"
import { type Prepared, Sqlite } from "../db/Sqlite.js"
import { Outbox } from "../events/Outbox.js"
import { Draining } from "../shared/Draining.js"
import { Ids } from "../shared/Ids.js"
import { lastPhoneOf } from "../records/CdrStore.js"
import { DEFAULT_REPORT_WITHIN_MS } from "../telephony/ConfigSchema.js"
import { type CallState, initialState, STATUS } from "../telephony/Driver.js"
import type { Device } from "./DevicesStore.js"

/** Entries waiting on one channel at most: more is somebody's loop, not a person at a phone. */
export const MAX_WAITING_PER_CHANNEL = 16
/** Entries one poll hands out at most (the box asks again a second later). */
const MAX_PER_POLL = 16

/** A box's clock may run behind ours: a call it says started this much before the hand-out is still the dial's. */
export const CLOCK_SLACK_MS = 60_000
/** How a box-driver call ends when the box never reports it. */
export const NOT_TAKEN = "NOT_TAKEN_BY_BOX"
export const NOT_REPORTED = "NOT_REPORTED_BY_BOX"
export const REASSIGNED = "BOX_REASSIGNED"

/** Whose call a dial is (the requester's kind and id), for the box driver's dials. */
export interface DialFor {
  readonly kind: "callback" | "audit" | "task"
  readonly reqId: number
}

/** What a box's upload says of a call (src/box/commands.ts). */
export interface UploadedCall {
  readonly mac: string
  /** the enterprise the box is registered to as it uploads */
  readonly enterprise: string
  readonly channel: number
  readonly direction: string
  readonly phone: string
  readonly callid: string
  readonly startMs: number
  readonly hangupMs: number | null
  readonly talkSecs: number
  readonly recordFile: string
}

/** A box-driver dial whose end is known, waiting to be handed to its requester. */
export interface EndedDial extends DialFor {
  readonly msgId: number
  readonly state: CallState
}

/** The end of a call as the box reported it: answered when it talked, else not answered. */
export const endOfUpload = (u: UploadedCall): CallState => {
  const endMs = u.hangupMs ?? u.startMs + u.talkSecs * 1000
  const base = { ...initialState, beginMs: u.startMs, endMs, cdrId: u.callid, recordFile: u.recordFile, ended: true }
  return u.talkSecs > 0
    ? { ...base, status: STATUS.answered, successMs: Math.max(u.startMs, endMs - u.talkSecs * 1000), talkSecs: u.talkSecs, resultCode: "NORMAL_CLEARING" }
    : { ...base, status: STATUS.notAnswered, resultCode: "NO_ANSWER" }
}

const unreported = (resultCode: string, endMs: number): CallState => ({ ...initialState, status: STATUS.notAnswered, endMs, resultCode, ended: true })

const INSERT_CALL = `INSERT INTO box_dial_calls (msg_id, mac, comp_number, channel, phone_key, kind, req_id, queued_ms, due_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
const MATCH_CALL = `SELECT msg_id FROM box_dial_calls WHERE mac = ? AND (comp_number = ? OR comp_number IS NULL) AND channel = ? AND phone_key = ? AND ended IS NULL
  AND taken_ms IS NOT NULL AND taken_ms <= ? AND (behind = 1 OR due_ms >= ?) ORDER BY taken_ms, msg_id LIMIT 1`
/** a dial handed out on the channel whose window is open and which has not ended: the line is busy with it */
const CHANNEL_BUSY = `SELECT 1 FROM box_dial_calls WHERE mac = ? AND channel = ? AND ended IS NULL AND taken_ms IS NOT NULL AND behind = 0 AND msg_id <> ? LIMIT 1`
/** the next dial waiting behind on the channel: its window opens, from its hand-out or from the report before it (the later) */
const OPEN_NEXT = `UPDATE box_dial_calls SET behind = 0, due_ms = max(taken_ms + ?, ?) WHERE msg_id = (
  SELECT msg_id FROM box_dial_calls WHERE mac = ? AND channel = ? AND ended IS NULL AND behind = 1 ORDER BY taken_ms, msg_id LIMIT 1)`

/**
 * A box changes hands or is removed (src/box/DevicesStore.ts, in its own transaction): its open
 * dials end now, not answered, so no later upload of the new owner ends the former owner's call.
 * Their ends are delivered as any other; true when there were any (the deliverer is to be woken).
 */
export const endDialsOfBoxIn = (prepared: Prepared, mac: string, now: number): boolean =>
  prepared(`UPDATE box_dial_calls SET ended = ? WHERE mac = ? AND ended IS NULL`).run(JSON.stringify(unreported(REASSIGNED, now)), mac).changes > 0

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

interface Waiter {
  /** the channel it polls for, or "*" */
  readonly key: string
  /** something was queued since it last looked */
  woken: boolean
  /** a newer poll of the same box and channel took over */
  superseded: boolean
  resume: (() => void) | null
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
const take = (filter: Filter) => `UPDATE box_messages SET taken_at = ?
  WHERE id IN (
    SELECT id FROM box_messages
    WHERE ${where(filter)}
    ORDER BY id LIMIT CAST(${MAX_PER_POLL} AS INTEGER)
  ) AND taken_at IS NULL
  RETURNING id, channel, phone, status, memo`

/** Which entries a poll takes: getCallList the dials, a new box's long poll the web messages, an old box's long poll both. */
type Kinds = "dials" | "messages" | "all"
interface Filter {
  readonly channel: boolean
  readonly kinds: Kinds
}
const KIND_SQL: Record<Kinds, string> = { dials: " AND status = '0'", messages: " AND status <> '0'", all: "" }
const where = (f: Filter) => `mac = ? AND taken_at IS NULL AND expires_at > ?${f.channel ? " AND channel = ?" : ""}${KIND_SQL[f.kinds]}`

/** Is anything waiting? Asked first, on the reader: an empty poll (most polls) writes nothing and waits for no commit. */
const anyWaiting = (filter: Filter) => `SELECT 1 FROM box_messages WHERE ${where(filter)} LIMIT 1`

const toMessage = (row: Row): BoxMessage => {
  let memo: BoxMessage["memo"] = null
  if (row.memo !== null) {
    const parsed = JSON.parse(row.memo) as { functionname?: unknown; paramvalue?: unknown }
    memo = { functionname: String(parsed.functionname ?? ""), paramvalue: String(parsed.paramvalue ?? "") }
  }
  return { id: row.id, channel: row.channel, phone: row.phone, status: row.status === "51" ? "51" : "0", memo }
}

export class BoxQueue extends Effect.Service<BoxQueue>()("BoxQueue", {
  dependencies: [Outbox.Default, GroupCommit.Default, Ids.Default, Draining.Default],
  effect: Effect.gen(function* () {
    const commit = yield* GroupCommit
    const sqlite = yield* Sqlite
    const outbox = yield* Outbox
    const ids = yield* Ids
    const { box } = yield* AppConfig
    const draining = yield* Draining
    const { telephony } = yield* AppConfig
    const reportWithinMs = telephony.box?.reportWithinMs ?? DEFAULT_REPORT_WITHIN_MS
    /** a box-driver dial ended (an upload matched it): its end is to be delivered */
    const reports = yield* Queue.sliding<void>(1)
    /** Long polls open, by MAC: woken when something is queued for their box. */
    const waiters = new Map<string, Set<Waiter>>()

    const wake = (mac: string) => {
      for (const w of waiters.get(mac) ?? []) {
        w.woken = true
        w.resume?.()
      }
    }

    /**
     * Queues an entry for a registered box's channel; "full" when the channel has its maximum
     * waiting. `by` is who asked (an extension, or the admin API), `source` the event's source.
     */
    const queue = (device: Device, entry: Queued, origin: { readonly by: string; readonly source: string }, call?: DialFor) =>
      Effect.gen(function* () {
        const id = yield* ids.next
        const now = Date.now()
        const expiresAt = now + box.dialTtlMs
        const outcome = yield* commit.submit((_, prepared): "queued" | "full" => {
          prepared(PRUNE).run(device.mac, now)
          const { n } = prepared(WAITING).get(device.mac, entry.channel, now) as { n: number }
          if (n >= MAX_WAITING_PER_CHANNEL) return "full"
          prepared(INSERT).run(id, device.mac, entry.channel, entry.phone, entry.status, entry.memo ? JSON.stringify(entry.memo) : null, now, expiresAt)
          if (call) prepared(INSERT_CALL).run(id, device.mac, device.enterprise, entry.channel, lastPhoneOf(entry.phone), call.kind, call.reqId, now, expiresAt)
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

    /** Puts taken entries back: their answer never reached the box. */
    const giveBack = (mac: string, taken: ReadonlyArray<BoxMessage>) =>
      Effect.zipRight(
        commit.submit((_, prepared) => {
          const now = Date.now()
          for (const m of taken) {
            prepared(`UPDATE box_messages SET taken_at = NULL WHERE id = ? AND expires_at > ?`).run(m.id, now)
            // waiting again: it ends unreported at the dial's expiry, as one never handed out
            prepared(`UPDATE box_dial_calls SET taken_ms = NULL, behind = 0, due_ms = (SELECT expires_at FROM box_messages WHERE id = ?) WHERE msg_id = ? AND ended IS NULL`).run(m.id, m.id)
          }
        }),
        Effect.logWarning("a box poll went away while being answered: its entries are queued again").pipe(Effect.annotateLogs({ ids: taken.map((m) => m.id) }))
      ).pipe(
        Effect.tap(() => Effect.sync(() => wake(mac))),
        Effect.catchAll((e) => Effect.logError("entries taken by a poll that went away could not be queued again", e))
      )
    /** Takes (marks handed out) the box's waiting entries — of one channel when it names one — oldest first. */
    const takeNow = (mac: string, channel: number | undefined, kinds: Kinds) =>
      Effect.gen(function* () {
        const now = Date.now()
        const filter = { channel: channel !== undefined, kinds }
        const args = channel === undefined ? [mac, now] : [mac, now, channel]
        const waiting = yield* sqlite.exclusive((_, prepared) => prepared(anyWaiting(filter)).get(...args) !== undefined)
        if (!waiting) return []
        const sql = take(filter)
        return yield* commit.submit((_, prepared) => {
          // RETURNING follows no ORDER BY: sorted here, so a box is handed its entries in the order they were queued
          const taken = ((channel === undefined ? prepared(sql).all(now, mac, now) : prepared(sql).all(now, mac, now, channel)) as Array<Row>)
            .map(toMessage)
            .sort((a, b) => a.id - b.id)
          // a box-driver dial's report window opens as it is handed out, unless its line is still busy with an earlier one
          const handed = prepared(`UPDATE box_dial_calls SET taken_ms = ?, due_ms = ?, behind = ? WHERE msg_id = ? AND ended IS NULL`)
          for (const m of taken) {
            if (m.status !== "0") continue
            const busy = prepared(CHANNEL_BUSY).get(mac, m.channel, m.id) !== undefined
            handed.run(now, now + reportWithinMs, busy ? 1 : 0, m.id)
          }
          return taken
        })
      })

    /** Waits for `me` to be woken (something queued, a newer poll, draining), or `ms`. */
    const wokenOrAfter = (me: Waiter, ms: number) =>
      Effect.async<void>((resume) => {
        const timer = setTimeout(() => resume(Effect.void), ms)
        me.resume = () => {
          clearTimeout(timer)
          resume(Effect.void)
        }
        return Effect.sync(() => {
          clearTimeout(timer)
          me.resume = null
        })
      }).pipe(Effect.ensuring(Effect.sync(() => (me.resume = null))))

    /**
     * The long poll of getMessageList: what is waiting now, else the first entries queued within
     * `box.messageWaitMs` — an empty list when none came. A box runs one long poll: a newer poll
     * of the same box and channel supersedes an older one, which answers empty without taking
     * anything (the older one may be a connection the box abandoned when it restarted). Entries
     * taken by a poll that is then interrupted (the box went away) are queued again.
     */
    const takeOrWait = (mac: string, channel: number | undefined, dialsToo: boolean) =>
      Effect.gen(function* () {
        const key = channel === undefined ? "*" : String(channel)
        // registered before the first look: an entry queued between the look and the wait still wakes it
        const me: Waiter = { key, woken: false, superseded: false, resume: null }
        const set = waiters.get(mac) ?? new Set<Waiter>()
        waiters.set(mac, set)
        for (const older of set)
          if (older.key === key) {
            older.superseded = true
            older.resume?.()
          }
        set.add(me)
        const leave = Effect.sync(() => {
          set.delete(me)
          if (set.size === 0 && waiters.get(mac) === set) waiters.delete(mac)
        })
        const deadline = Date.now() + box.messageWaitMs
        const poll: Effect.Effect<ReadonlyArray<BoxMessage>, SqlError> = Effect.gen(function* () {
          for (;;) {
            if (me.superseded || (yield* draining.isDraining)) return []
            me.woken = false
            const taken = yield* takeNow(mac, channel, dialsToo ? "all" : "messages")
            const left = deadline - Date.now()
            if (taken.length > 0 || left <= 0) return taken
            if (!me.woken) yield* Effect.raceFirst(wokenOrAfter(me, left), draining.begun)
          }
        })
        return yield* Effect.uninterruptibleMask((restore) =>
          Effect.flatMap(restore(poll), (taken) => {
            if (taken.length === 0) return Effect.succeed(taken)
            // an interruption that came while the take was being written lands here: the box never gets them
            return restore(Effect.succeed(taken)).pipe(Effect.onInterrupt(() => giveBack(mac, taken)))
          })
        ).pipe(Effect.ensuring(leave))
      })

    /** Every box's handed-out and expired entries (a box never queued for again is not pruned by its own queueing). */
    const prune = Effect.suspend(() => {
      const now = Date.now()
      const any = sqlite.exclusive((_, prepared) => prepared(`SELECT 1 FROM box_messages WHERE taken_at IS NOT NULL OR expires_at <= ? LIMIT 1`).get(now) !== undefined)
      return Effect.flatMap(any, (some) =>
        some ? commit.submit((_, prepared) => void prepared(`DELETE FROM box_messages WHERE taken_at IS NOT NULL OR expires_at <= ?`).run(now)) : Effect.void
      )
    })

    /**
     * An upload's call ends the box-driver dial it matches (see the module's note), on the
     * upload's connection: the end is stored with the dial, to be delivered once committed.
     */
    /** A dial on the channel ended (`reportedAt`: by the box's report): when none handed out there is open any more, the next one behind gets its window. */
    const openNextIn = (prepared: Prepared, mac: string, channel: number, reportedAt: number | null) => {
      if (prepared(CHANNEL_BUSY).get(mac, channel, -1) === undefined)
        prepared(OPEN_NEXT).run(reportWithinMs, reportedAt === null ? 0 : reportedAt + reportWithinMs, mac, channel)
    }

    const matchUploadIn = (prepared: Prepared, u: UploadedCall): boolean => {
      if (u.direction !== "out") return false
      const now = Date.now()
      const row = prepared(MATCH_CALL).get(u.mac, u.enterprise, u.channel, lastPhoneOf(u.phone), u.startMs + CLOCK_SLACK_MS, now) as { msg_id: number } | undefined
      if (row === undefined) return false
      prepared(`UPDATE box_dial_calls SET callid = ?, ended = ? WHERE msg_id = ?`).run(u.callid, JSON.stringify(endOfUpload(u)), row.msg_id)
      openNextIn(prepared, u.mac, u.channel, now)
      return true
    }

    /** Dials past their due time end unreported; then every ended dial not yet delivered, oldest first, and when the next falls due. */
    const endedDials = Effect.suspend(() => {
      const now = Date.now()
      return commit.submit((_, prepared) => {
        const end = prepared(`UPDATE box_dial_calls SET ended = ? WHERE msg_id = ?`)
        // a dial opened behind one ended here may be past its window already: until none is due
        for (;;) {
          const due = prepared(`SELECT msg_id, mac, channel, taken_ms FROM box_dial_calls WHERE ended IS NULL AND behind = 0 AND due_ms <= ?`).all(now) as Array<{
            msg_id: number
            mac: string
            channel: number
            taken_ms: number | null
          }>
          if (due.length === 0) break
          for (const d of due) end.run(JSON.stringify(unreported(d.taken_ms === null ? NOT_TAKEN : NOT_REPORTED, now)), d.msg_id)
          for (const d of due) if (d.taken_ms !== null) openNextIn(prepared, d.mac, d.channel, null)
        }
        const ended = (prepared(`SELECT msg_id, kind, req_id, ended FROM box_dial_calls WHERE ended IS NOT NULL ORDER BY msg_id`).all() as Array<{ msg_id: number; kind: DialFor["kind"]; req_id: number; ended: string }>).map(
          (r): EndedDial => ({ msgId: r.msg_id, kind: r.kind, reqId: r.req_id, state: JSON.parse(r.ended) as CallState })
        )
        const next = prepared(`SELECT min(due_ms) AS at FROM box_dial_calls WHERE ended IS NULL AND behind = 0`).get() as { at: number | null }
        return { ended, nextDueMs: next.at }
      })
    })

    return {
      queue,
      matchUploadIn,
      endedDials,
      /** an ended dial reached its requester */
      delivered: (msgId: number) => commit.submit((_, prepared) => void prepared(`DELETE FROM box_dial_calls WHERE msg_id = ?`).run(msgId)),
      /** an upload ended a dial: its requester is told */
      reported: Queue.offer(reports, undefined),
      nextReport: Queue.take(reports),
      prune,
      /** getCallList: the dials only, never waiting (the box asks again a second later). */
      takeDials: (mac: string, channel: number | undefined) => takeNow(mac, channel, "dials"),
      takeOrWait,
      /** long polls open now (for the admin page) */
      waiting: () => [...waiters.values()].reduce((n, s) => n + s.size, 0)
    } as const
  })
}) {}
