/** `/voip/api/jsondata.html` (§1.1): GET or POST, query and body parameters mixed. */
import { Effect } from "effect"
import { endpoint, NO_PARAMS, rest } from "../http/Endpoint.js"
import { json } from "../http/Route.js"
import { dispatch } from "./Dispatch.js"

/**
 * One URL for every method: the dispatcher decodes each method's parameters and checks its
 * credentials (`method` names what it needs), and the document describes it from the method
 * specs (OpenApi.ts), so this declaration only says where it is served and what it reads.
 */
export const jsondata = endpoint({
  id: "jsondata",
  summary: "jsondata",
  tags: ["jsondata"],
  paths: "/voip/api/jsondata.html",
  methods: ["GET", "POST"],
  auth: { kind: "none" },
  body: { kind: "form" },
  params: NO_PARAMS,
  answer: rest({}),
  documented: false,
  handler: ({ req, raw }) => Effect.map(dispatch(raw, req.socket.remoteAddress), (answer) => json(answer))
})
