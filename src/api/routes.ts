/** `/voip/api/jsondata.html` (§1.1): GET or POST, query and body parameters mixed. */
import { Effect } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { collect, toRawParams } from "../http/Params.js"
import { json, type Route } from "../http/Route.js"
import { dispatch } from "./Dispatch.js"

export const routes: ReadonlyArray<Route> = [
  {
    methods: ["GET", "POST"],
    path: "/voip/api/jsondata.html",
    handle: (req) =>
      Effect.gen(function* () {
        const config = yield* AppConfig
        const { pairs } = yield* collect(req, { bodyLimit: config.http.bodyLimitBytes })
        return json(yield* dispatch(toRawParams(pairs), req.socket.remoteAddress))
      })
  }
]
