/** §2.5.1 sendTelCall — the platform asks a recording box's phone to dial (handed out by its getCallList poll). */
import { Effect } from "effect"
import * as spec from "../../schemas/system.js"
import { InvalidParam, NoPermission, NotFound, OverLimit } from "../api/Errors.js"
import { implement } from "../api/Implementation.js"
import { normalizeMac } from "../shared/Mac.js"
import { MAX_WAITING_PER_CHANNEL, queueDial } from "./Dials.js"
import { DevicesStore } from "./DevicesStore.js"

export const handlers = [
  implement(spec.sendTelCall, ({ mac, channel, phone }, caller) =>
    Effect.gen(function* () {
      const devices = yield* DevicesStore
      const normal = normalizeMac(mac)
      const device = normal === undefined ? undefined : yield* devices.get(normal)
      // a pending box belongs to nobody yet: as unknown as a box never seen
      if (!device || device.pending) return yield* new NotFound({ message: `no registered box ${mac}` })
      if (device.enterprise !== caller.enterprise.comp_number) return yield* new NoPermission({ message: `box ${device.mac} belongs to another enterprise` })
      // the box's channels: those assigned an extension and those its heartbeats report
      const known = Object.hasOwn(device.channels, String(channel)) || device.live.some((c) => c.ch === channel)
      if (!known) return yield* new InvalidParam({ param: "channel", problem: `box ${device.mac} has no channel ${channel}` })
      const outcome = yield* queueDial(device, channel, phone, caller.extension.extension)
      if (outcome === "full")
        return yield* new OverLimit({ message: `channel ${channel} of box ${device.mac} has ${MAX_WAITING_PER_CHANNEL} dials waiting already` })
      return {}
    })
  )
]
