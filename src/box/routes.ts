/**
 * §2.1.10 `POST /voip/upload_record` (alias `/upload_record`): the recording box's one URL,
 * dispatched on `cmd` (commands.ts). Every answer is the box's `{time, status}`: 3002 when
 * `satellite` is missing or not a MAC, 3001 when the box is not registered to an enterprise
 * (it is then remembered as pending), -14 for a malformed parameter of its command.
 */
import * as path from "node:path"
import { Clock, Effect, Schema } from "effect"
import * as P from "../../schemas/Param.js"
import { BoxMissingSatellite, BoxNotRegistered, storageFailed } from "../api/Errors.js"
import type { AppConfigShape } from "../config/AppConfig.js"
import { box, type Endpoint, endpoint, type Failure, NO_PARAMS, rest, type RouteRequest } from "../http/Endpoint.js"
import { type FileOptions, type Pairs, toRawParams } from "../http/Params.js"
import { json } from "../http/Route.js"
import { clearLeftoversOnce, uploadBudgets } from "../recordings/Files.js"
import { normalizeMac } from "../shared/Mac.js"
import { BoxResult, boxCommands } from "./commands.js"
import { DevicesStore } from "./DevicesStore.js"

const PATHS = ["/voip/upload_record", "/upload_record"]

/** Where a box's recording is received: a directory of its own (the upload route clears its own at start). */
const boxTempDir = (dataDir: string) => path.join(dataDir, "tmp-box")

const budgetOf = (config: AppConfigShape) => {
  clearLeftoversOnce(config, boxTempDir(config.dataDir))
  // a box is known before its file is read (its MAC is checked first): the authenticated share
  return uploadBudgets(config).authenticated
}

const macOf = (satellite: string | undefined) =>
  satellite === undefined || satellite.trim() === ""
    ? Effect.fail(new BoxMissingSatellite({ message: "satellite (the box's MAC address) is missing" }))
    : Effect.fromNullable(normalizeMac(satellite)).pipe(
        Effect.mapError(() => new BoxMissingSatellite({ message: `satellite is not a MAC address: ${JSON.stringify(satellite.slice(0, 64))}` }))
      )

const notRegistered = (mac: string) => new BoxNotRegistered({ message: `box ${mac} is not registered or not assigned to an enterprise` })

/**
 * A recording is read only for a box that may send one: when its MAC came before the file, an
 * unknown box is refused before a byte of the file is read.
 */
const boxFiles = (_req: RouteRequest, config: AppConfigShape) =>
  Effect.map(DevicesStore, (devices) => {
    const options: FileOptions<Failure, never> = {
      maxBytes: config.recordings.maxUploadBytes,
      maxCount: 2,
      tempDir: boxTempDir(config.dataDir),
      budget: budgetOf(config),
      authorize: (sofar: Pairs) => {
        const satellite = P.single(toRawParams(sofar), "satellite")
        const mac = satellite === undefined ? undefined : normalizeMac(satellite)
        if (mac === undefined) return Effect.succeed(undefined)
        return Effect.flatMap(Effect.catchTag(devices.get(mac), "SqlError", storageFailed), (device) =>
          device && !device.pending ? Effect.succeed(undefined) : Effect.fail(notRegistered(mac))
        )
      }
    }
    return options
  })

const commandNames = Object.keys(boxCommands).join(", ")

const uploadRecord = endpoint({
  id: "boxUploadRecord",
  summary: "八百呼设备状态及录音记录上传 (§2.1.10)",
  description: `The recording box's one URL, dispatched on cmd (${commandNames}; any other cmd answers {time, status: 0}). urlencoded or multipart; cmd=upload's recording is the multipart part \`file\`. Every answer carries status and time (Unix ms, as text).`,
  tags: ["box"],
  paths: PATHS,
  methods: ["POST"],
  auth: { kind: "none" },
  body: { kind: "files", fields: [], optionalFields: ["file"], urlencoded: true, options: boxFiles },
  params: Schema.Struct({
    cmd: Schema.optional(P.doc(`命令：${commandNames}`)(P.text)),
    satellite: Schema.optional(P.doc("设备编号（MAC 地址），必填；缺少或不是 MAC 时 3002")(P.text))
  }),
  answer: box(BoxResult, "status 0 (with callid for cmd=upload, data for the message lists), or 3001/3002/3003/-14 with message"),
  handler: ({ req, config, params, raw, collected }) =>
    Effect.gen(function* () {
      const mac = yield* macOf(params.satellite)
      const address = req.socket.remoteAddress ?? null
      const device = yield* (yield* DevicesStore).callIn(mac, address, yield* Clock.currentTimeMillis)
      if (!device) return yield* notRegistered(mac)
      const name = params.cmd?.trim()
      // own keys only: `constructor` or `__proto__` is an unknown cmd, not the object's prototype
      if (name === undefined || !Object.hasOwn(boxCommands, name)) return {}
      return yield* boxCommands[name]!.run({ device, config, address, files: collected.files }, raw)
    }).pipe(
      // in the box's own shape ({time, status: -6, message}), not the envelope's bare code
      Effect.catchTag("SqlError", storageFailed)
    )
})

/** The box only POSTs (§2.1.10): a GET is told so, in the box's shape. */
const notPost = endpoint({
  id: "boxUploadRecordGet",
  summary: "§2.1.10 takes POST only",
  tags: ["box"],
  paths: PATHS,
  methods: ["GET"],
  auth: { kind: "none" },
  body: { kind: "none" },
  params: NO_PARAMS,
  // a refusal, not an operation: documented, its path item would replace the POST's
  documented: false,
  answer: rest({ "405": { description: "the box endpoint takes POST only: {time, status: -14, message}", content: { "application/json": "coded" } } }),
  handler: () =>
    Effect.map(Clock.currentTimeMillis, (now) => json({ time: String(now), status: -14, message: "the box endpoint takes POST only" }, 405, { allow: "POST" }))
})

export const endpoints: ReadonlyArray<Endpoint> = [uploadRecord, notPost]
