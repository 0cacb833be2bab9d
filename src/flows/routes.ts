/**
 * `GET /voip/sound/<wfPath>` (§2.10.1: "语音文件完整路径 http://ip:port/voip/sound/{wfPath}"): a call
 * flow's sound, for whoever plays it. The enterprise's own (credentials, its `<enterprise>/`
 * prefix), or anyone from an address `recordings.openTo` opens, as for recordings.
 */
import * as path from "node:path"
import { Effect, Schema } from "effect"
import type { AppConfigShape } from "../config/AppConfig.js"
import { type Endpoint, endpoint, NO_PARAMS, rest } from "../http/Endpoint.js"
import { json } from "../http/Route.js"
import { contentTypeOf, resolveInside } from "../recordings/Files.js"
import { soundDir } from "./FlowsStore.js"

const PREFIX = "/voip/sound/"
const notFound = json({ code: -11, message: "sound does not exist" }, 404)
const audio = Object.fromEntries(
  ["audio/wav", "audio/mpeg", "audio/gsm", "application/octet-stream"].map((type) => [type, Schema.String.annotations({ jsonSchema: { type: "string", contentMediaType: type } })])
)

const sound = endpoint({
  id: "downloadSound",
  summary: "语音文件（§2.10.1 cflsend_wfPath）",
  description: "A call flow's sound: <企业号>/<file>, as findCallFlow's cflsend_wfPath names it.",
  tags: ["flows"],
  paths: `${PREFIX}{*rest}`,
  documentedPath: `${PREFIX}{enterprise}/{file}`,
  methods: ["GET"],
  auth: { kind: "credentials", openTo: (config: AppConfigShape) => config.recordings.openTo },
  body: { kind: "none" },
  params: NO_PARAMS,
  answer: rest({
    "200": { description: "the sound (Range requests answered 206)", content: audio },
    "206": { description: "part of the sound", content: audio },
    "404": { description: "no such sound, or another enterprise's (one answer for both)", content: { "application/json": "coded" } }
  }),
  handler: ({ req, config, caller }) =>
    Effect.sync(() => {
      let relative: string
      try {
        relative = decodeURIComponent((req.url ?? "").split("?")[0]!.slice(PREFIX.length))
      } catch {
        return json({ code: -14, message: "malformed path" }, 400)
      }
      if (caller !== undefined && !relative.startsWith(`${caller.enterprise.comp_number}/`)) return notFound
      const absolute = resolveInside(soundDir(config.dataDir), relative)
      if (!absolute) return notFound
      const name = path.basename(absolute)
      return { _tag: "File" as const, path: absolute, headers: { "content-type": contentTypeOf(name), "content-disposition": `inline; filename*=UTF-8''${encodeURIComponent(name)}` } }
    })
})

export const endpoints: ReadonlyArray<Endpoint> = [sound]
