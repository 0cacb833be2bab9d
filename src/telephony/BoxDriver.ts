/**
 * The box driver: calls are dialled by a registered recording box's SmartTel phone, handed out
 * by its getCallList poll (src/box/BoxQueue.ts). A box reports a call only once it is over (its
 * cmd=upload, which writes the call record): so a callback or verification call placed here is
 * "calling" once queued, and stays so — the box protocol has no way to say more.
 *
 * The agent's own box channel dials; an agent with none is served by the box `telephony.box.mac`
 * names (its first channel), when that box is the agent's enterprise's.
 */
import { Effect } from "effect"
import { InvalidParam, MethodFailed, NoPermission, NotFound, OverLimit } from "../api/Errors.js"
import type { Caller } from "../auth/Auth.js"
import { BoxQueue, MAX_WAITING_PER_CHANNEL } from "../box/BoxQueue.js"
import { AppConfig } from "../config/AppConfig.js"
import { type Device, DevicesStore } from "../box/DevicesStore.js"
import { normalizeMac } from "../shared/Mac.js"
import { initialState, STATUS, type TelephonyDriver } from "./Driver.js"

export const makeBoxDriver = Effect.gen(function* () {
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

  const enqueue = (device: Device, channel: number, phone: string, caller: Caller, source: string) =>
    Effect.gen(function* () {
      const { outcome } = yield* queue.queue(device, { channel, phone, status: "0" }, { by: caller.extension.extension, source })
      if (outcome === "full")
        return yield* new OverLimit({ message: `channel ${channel} of box ${device.mac} has ${MAX_WAITING_PER_CHANNEL} dials waiting already` })
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
      yield* enqueue(line.device, line.channel, request.to, request.caller, `telephony:box:${request.kind}`)
      return {
        answer: null,
        run: (report) => report({ ...initialState, status: STATUS.calling, beginMs: Date.now() })
      }
    })

  return { name: "box", place, dialOnDevice } satisfies TelephonyDriver
})
