/** The admin API's capture: switched on and off, its status, its file downloaded. */
import * as fs from "node:fs"
import { HttpApiBuilder, HttpServerResponse } from "@effect/platform"
import * as NodeStream from "@effect/platform-node/NodeStream"
import { Effect } from "effect"
import { Capture } from "../../capture/Capture.js"
import { AdminApi, CaptureBody, NotFound } from "../Api.js"
import { decoder, jsonBody } from "./Shared.js"

const decodeCapture = decoder(CaptureBody)

export const CaptureLive = HttpApiBuilder.group(AdminApi, "capture", (handlers) =>
  handlers
    .handleRaw("set", ({ request }) =>
      Effect.gen(function* () {
        const { enabled } = yield* decodeCapture(yield* jsonBody(request))
        const capture = yield* (yield* Capture).set(enabled)
        return { code: 0, message: "OK", capture } as const
      })
    )
    .handle("status", () => Effect.map(Capture, (c) => ({ code: 0, message: "OK", capture: c.status() }) as const))
    .handleRaw("download", () =>
      Effect.gen(function* () {
        const capture = yield* Capture
        yield* capture.flush
        if (!fs.existsSync(capture.file)) return yield* Effect.fail(NotFound.of("capture file"))
        const body = NodeStream.fromReadable(
          () => fs.createReadStream(capture.file),
          (e) => e
        )
        return HttpServerResponse.stream(body, { contentType: "application/x-ndjson" })
      })
    )
)
