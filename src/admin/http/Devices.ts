/** The admin API's recording boxes: registered, changed, removed, and sent a message. */
import { HttpApiBuilder } from "@effect/platform"
import { Effect } from "effect"
import { BoxQueue, MAX_WAITING_PER_CHANNEL } from "../../box/BoxQueue.js"
import { DevicesStore } from "../../box/DevicesStore.js"
import { normalizeMac } from "../../shared/Mac.js"
import { AdminApi, BadRequest, Conflict, DeviceBody, DeviceMessageBody, DevicePatch, Full, NotFound } from "../Api.js"
import { decoder, jsonBody, storage } from "./Shared.js"

const macFrom = (text: string) => Effect.fromNullable(normalizeMac(text)).pipe(Effect.mapError(() => BadRequest.of(`mac: expected a MAC address such as 00:1A:2B:3C:4D:5E, got ${JSON.stringify(text.slice(0, 64))}`)))
const decodeDevice = decoder(DeviceBody)
const decodeDevicePatch = decoder(DevicePatch)
const decodeDeviceMessage = decoder(DeviceMessageBody)
const deviceOf = (mac: string) =>
  Effect.flatMap(storage(Effect.flatMap(DevicesStore, (d) => d.get(mac))), (device) => (device ? Effect.succeed(device) : Effect.fail(NotFound.of(`device ${mac}`))))

export const DevicesLive = HttpApiBuilder.group(AdminApi, "devices", (handlers) =>
  handlers
    .handle("list", () => Effect.map(storage(Effect.flatMap(DevicesStore, (d) => d.list)), (items) => ({ items })))
    .handleRaw("create", ({ request }) =>
      Effect.gen(function* () {
        const body = yield* decodeDevice(yield* jsonBody(request))
        const mac = yield* macFrom(body.mac)
        const created = yield* storage((yield* DevicesStore).create(mac, body))
        if (created === "exists") return yield* Effect.fail(new Conflict({ code: -10, message: `device ${mac} is registered already` }))
        if ("refused" in created) return yield* Effect.fail(BadRequest.of(created.refused))
        return { code: 0, message: "OK", device: created } as const
      })
    )
    .handle("get", ({ path }) => Effect.flatMap(macFrom(path.mac), deviceOf))
    .handleRaw("update", ({ path, request }) =>
      Effect.gen(function* () {
        const mac = yield* macFrom(path.mac)
        const patch = yield* decodeDevicePatch(yield* jsonBody(request))
        const device = yield* storage((yield* DevicesStore).update(mac, patch))
        // a box given to another enterprise ended the calls it was dialling: their ends go out now
        yield* (yield* BoxQueue).reported
        if (!device) return yield* Effect.fail(NotFound.of(`device ${mac}`))
        if ("refused" in device) return yield* Effect.fail(BadRequest.of(device.refused))
        return { code: 0, message: "OK", device } as const
      })
    )
    .handleRaw("message", ({ path, request }) =>
      Effect.gen(function* () {
        const mac = yield* macFrom(path.mac)
        const body = yield* decodeDeviceMessage(yield* jsonBody(request))
        const device = yield* deviceOf(mac)
        if (device.pending) return yield* Effect.fail(NotFound.of(`registered device ${mac}`))
        const queued = yield* storage((yield* BoxQueue).queue(device, { channel: body.channel, phone: body.phone, status: "51", memo: { functionname: body.functionname, paramvalue: body.paramvalue } }, { by: "admin", source: "admin" }))
        if (queued.outcome === "full") return yield* Effect.fail(new Full({ code: -12, message: `channel ${body.channel} of box ${mac} has ${MAX_WAITING_PER_CHANNEL} entries waiting already` }))
        return { code: 0, message: "OK", id: queued.id } as const
      })
    )
    .handle("remove", ({ path }) =>
      Effect.gen(function* () {
        const mac = yield* macFrom(path.mac)
        const removed = yield* storage((yield* DevicesStore).remove(mac))
        // the calls it was dialling ended with it: their ends go out now
        yield* (yield* BoxQueue).reported
        if (!removed) return yield* Effect.fail(NotFound.of(`device ${mac}`))
        return { code: 0, message: "OK" } as const
      })
    )
)
