/**
 * The box driver: calls are dialled by a registered recording box's SmartTel phone, handed out
 * by its getCallList poll (src/box/BoxQueue.ts). A box reports a call only once it is over (its
 * cmd=upload, which writes the call record): a callback, verification or task call placed here is
 * "calling" once queued, and ends when the box uploads the record of the call it dialled (matched
 * as BoxQueue.ts says) or, never reported, at its due time as not answered. The end is stored
 * with the dial and delivered to the requester's `onEnd` handler (registered by kind) — also
 * after a restart, when the fiber that placed the call is gone — then forgotten.
 *
 * The agent's own box channel dials; an agent with none is served by the box `telephony.box.mac`
 * names (its first channel), when that box is the agent's enterprise's.
 */
import type { SqlError } from "@effect/sql/SqlError"
import { Deferred, Duration, Effect } from "effect"
import { InvalidParam, MethodFailed, NoPermission, NotFound, OverLimit } from "../api/Errors.js"
import type { Caller } from "../auth/Auth.js"
import { BoxQueue, type DialFor, MAX_WAITING_PER_CHANNEL } from "../box/BoxQueue.js"
import { AppConfig } from "../config/AppConfig.js"
import { type Device, DevicesStore } from "../box/DevicesStore.js"
import { normalizeMac } from "../shared/Mac.js"
import { type CallState, initialState, STATUS, type TelephonyDriver } from "./Driver.js"

/**
 * Hands a call's end to its requester (Callbacks, Audits, Tasks register one each). It fails when
 * the end could not be stored: the dial is then kept, and its end handed over again.
 */
export type EndHandler = (id: number, state: CallState) => Effect.Effect<void, SqlError>

/** A call placed in this process: its end waits until it said "calling" (or never will: its requester failed to store it). */
interface Placed {
  readonly placedAt: number
  started: boolean
  readonly done: Deferred.Deferred<void>
}
/** Placed this long ago and still not started: its requester never stored it, and its end is delivered all the same. */
const START_GRACE_MS = 60_000
/** How often ends are looked for with nothing due (dials and uploads wake the deliverer themselves). */
const IDLE_MS = 60_000
/** How soon an end held back (not yet started, no handler yet, not stored) is tried again. */
const RETRY_MS = 1_000

export const makeBoxDriver = (enders: ReadonlyMap<DialFor["kind"], EndHandler>) => Effect.gen(function* () {
  const devices = yield* DevicesStore
  const queue = yield* BoxQueue
  const fallbackMac = (yield* AppConfig).telephony.box?.mac
  const fallback = fallbackMac === undefined ? undefined : normalizeMac(fallbackMac)

  /** the configured box's first channel (assigned, else reported), when it is the enterprise's */
  const fallbackLine = (comp: string) =>
    Effect.gen(function* () {
      if (fallback === undefined) return undefined
      const device = yield* devices.get(fallback)
      if (!device || device.pending || device.enterprise !== comp) return undefined
      const channels = [...Object.keys(device.channels).map(Number), ...device.live.map((c) => c.ch)].sort((a, b) => a - b)
      return channels[0] === undefined ? undefined : { device, channel: channels[0] }
    })

  const enqueue = (device: Device, channel: number, phone: string, caller: Caller, source: string, call?: DialFor) =>
    Effect.gen(function* () {
      const { outcome, id } = yield* queue.queue(device, { channel, phone, status: "0" }, { by: caller.extension.extension, source }, call)
      if (outcome === "full")
        return yield* new OverLimit({ message: `channel ${channel} of box ${device.mac} has ${MAX_WAITING_PER_CHANNEL} dials waiting already` })
      // its due time is the deliverer's to watch
      if (call) yield* queue.reported
      return id
    })

  /** the calls placed by this process, by dial id */
  const placed = new Map<number, Placed>()

  /** One round: every ended dial handed to its requester; how long until the next round. */
  const deliverRound = Effect.gen(function* () {
    const { ended, nextDueMs } = yield* queue.endedDials
    let held = false
    for (const d of ended) {
      const mine = placed.get(d.msgId)
      const end = enders.get(d.kind)
      // a "calling" still on its way would overwrite the end
      if (end === undefined || (mine && !mine.started && Date.now() - mine.placedAt < START_GRACE_MS)) {
        held = true
        continue
      }
      // not stored (a full disk, a locked file): the dial is kept and its end tried again soon, the others go on
      const stored = yield* end(d.reqId, d.state).pipe(
        Effect.as(true),
        Effect.catchAll((e) => Effect.as(Effect.logError(`the end of a box call (${d.kind} ${d.reqId}) could not be stored; tried again`, e), false))
      )
      if (!stored) {
        held = true
        continue
      }
      yield* queue.delivered(d.msgId)
      if (mine) {
        placed.delete(d.msgId)
        yield* Deferred.succeed(mine.done, undefined)
      }
    }
    const untilDue = nextDueMs === null ? IDLE_MS : Math.max(0, nextDueMs - Date.now())
    return Math.min(untilDue, held ? RETRY_MS : IDLE_MS)
  })

  /** Delivers the ends of box-driver calls for as long as the bridge runs: woken by a dial or a matching upload, or at the next due time. */
  const deliverEnds = Effect.gen(function* () {
    for (;;) {
      const waitMs = yield* deliverRound.pipe(Effect.catchAll((e) => Effect.as(Effect.logError("the ends of box calls could not be delivered", e), RETRY_MS)))
      yield* Effect.raceFirst(queue.nextReport, Effect.sleep(Duration.millis(Math.max(10, waitMs))))
    }
  })

  const dialOnDevice: TelephonyDriver["dialOnDevice"] = ({ mac, channel, phone }, caller) =>
    Effect.gen(function* () {
      const normal = normalizeMac(mac)
      const device = normal === undefined ? undefined : yield* devices.get(normal)
      // a pending box belongs to nobody yet: as unknown as a box never seen
      if (!device || device.pending) return yield* new NotFound({ message: `no registered box ${mac}` })
      if (device.enterprise !== caller.enterprise.comp_number) return yield* new NoPermission({ message: `box ${device.mac} belongs to another enterprise` })
      // the box's channels: those assigned an extension and those its heartbeats report
      const known = Object.hasOwn(device.channels, String(channel)) || device.live.some((c) => c.ch === channel)
      if (!known) return yield* new InvalidParam({ param: "channel", problem: `box ${device.mac} has no channel ${channel}` })
      yield* enqueue(device, channel, phone, caller, "api:sendTelCall")
    })

  const place: TelephonyDriver["place"] = (request) =>
    Effect.gen(function* () {
      const own = request.caller.extension.extension
      const boxes = yield* devices.listOf(request.caller.enterprise.comp_number)
      // the agent's own line dials (it reaches the agent first); failing that, the configured box's
      const line =
        boxes.flatMap((d) => Object.entries(d.channels).filter(([, ext]) => ext === own).map(([ch]) => ({ device: d, channel: Number(ch) })))[0] ??
        (yield* fallbackLine(request.caller.enterprise.comp_number))
      if (!line)
        return yield* new MethodFailed({ message: `the box driver dials from the agent's own box channel (or telephony.box.mac's): extension ${own} has none` })
      const done = yield* Deferred.make<void>()
      const mine: Placed = { placedAt: Date.now(), started: false, done }
      const id = yield* enqueue(line.device, line.channel, request.to, request.caller, `telephony:box:${request.kind}`, { kind: request.kind, reqId: request.id })
      placed.set(id, mine)
      return {
        answer: null,
        // the call's life lasts until its end was delivered (a task's dialling slot is held as long)
        run: (report) =>
          Effect.zipRight(
            Effect.zipRight(report({ ...initialState, status: STATUS.calling, beginMs: Date.now() }), Effect.sync(() => void (mine.started = true))),
            Deferred.await(done)
          )
      }
    })

  return { driver: { name: "box", place, dialOnDevice } satisfies TelephonyDriver, deliverEnds }
})
