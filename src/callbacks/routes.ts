/**
 * `POST /voip/upstream/callback/{cbkId}`: where the platform pushes the statuses of a callback the
 * upstream driver relayed to it (§2.3.1 push, its cbk* fields), when `telephony.upstream.publicUrl`
 * is set (src/telephony/Upstream.ts). `{cbkId}` is the platform's id of the callback and `key` the
 * secret its URL was given: together they name one of our rows, which follows the push and is
 * announced — with our cbkId — to the integrator's own callbackUrl and the targets, durably, as
 * any change is. An unknown id or a wrong key is -11 (one answer for both), a malformed field
 * -14; nothing is stored for either.
 */
import { Effect, Schema } from "effect"
import * as P from "../../schemas/Param.js"
import { CallbackPush } from "../../schemas/push.js"
import { InvalidParam, storageFailed } from "../api/Errors.js"
import { coded, type Endpoint, endpoint } from "../http/Endpoint.js"
import { parseLocal } from "../shared/Time.js"
import type { CallState, Status } from "../telephony/Driver.js"
import { UPSTREAM_CALLBACK_PATH } from "../telephony/Upstream.js"
import { Callbacks } from "./Callbacks.js"

const { cbkId: _ours, ...pushed } = CallbackPush.fields
const Params = Schema.Struct({
  key: P.doc("回调地址中的密钥（桥接器交给平台的 callbackUrl 所带）")(P.text),
  ...pushed
})
type Params = typeof Params.Type

const TIME = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/
const PLATFORM_ID = /^[0-9A-Za-z_-]{1,64}$/

/** The push as a call state: its times (local, the platform's zone is ours), talk times and causes. */
const stateOf = (p: Params, tz: string) =>
  Effect.gen(function* () {
    const time = (param: keyof Params & `cbk${string}Time`) => {
      const v = p[param]
      if (v === undefined || v === "") return Effect.succeed(null)
      return TIME.test(v) ? Effect.succeed(parseLocal(v, tz)) : Effect.fail(new InvalidParam({ param, problem: `expected a time as yyyy-mm-dd hh:nn:ss, got ${JSON.stringify(v.slice(0, 40))}` }))
    }
    const secs = (param: "cbkTimes" | "cbkTransferTimes") => {
      const v = p[param]
      if (v === undefined || v === "") return Effect.succeed(0)
      return /^\d{1,7}$/.test(v) ? Effect.succeed(Number(v)) : Effect.fail(new InvalidParam({ param, problem: `expected whole seconds, got ${JSON.stringify(v.slice(0, 40))}` }))
    }
    const endMs = yield* time("cbkEndTime")
    return {
      status: p.cbkStatus as Status,
      beginMs: yield* time("cbkBeginTime"),
      successMs: yield* time("cbkSuccessTime"),
      endMs,
      transferSuccessMs: yield* time("cbkTransferSuccessTime"),
      transferEndMs: yield* time("cbkTransferEndTime"),
      talkSecs: yield* secs("cbkTimes"),
      transferSecs: yield* secs("cbkTransferTimes"),
      resultCode: p.cbkResultCode ?? "",
      errorCode: p.cbkErrorCode ?? "",
      recordFile: p.cbkWavFile ?? "",
      cdrId: null,
      ended: endMs !== null
    } satisfies CallState
  })

const upstreamCallback = endpoint({
  id: "upstreamCallbackStatus",
  summary: "平台的回拨状态推送（上游驱动转发的 callbackPhone）",
  description:
    "The platform pushes a relayed callback's status here (the callbackUrl the bridge gave it, with telephony.upstream.publicUrl). Our row follows; the integrator's callbackUrl gets it with our cbkId.",
  tags: ["telephony"],
  paths: `${UPSTREAM_CALLBACK_PATH}/:cbkId`,
  documentedPath: `${UPSTREAM_CALLBACK_PATH}/{cbkId}`,
  methods: ["GET", "POST"],
  auth: { kind: "none" },
  // the key lets anyone push this callback's statuses on to the integrator: a credential, not kept by a capture
  secrets: ["key"],
  body: { kind: "form" },
  params: Params,
  answer: coded(Schema.Struct({}), "the status was stored and announced"),
  handler: ({ req, config, params }) =>
    Effect.gen(function* () {
      const segment = (req.url ?? "").split("?")[0]!.slice(UPSTREAM_CALLBACK_PATH.length + 1)
      let platformId: string
      try {
        platformId = decodeURIComponent(segment)
      } catch {
        platformId = ""
      }
      if (!PLATFORM_ID.test(platformId)) return yield* new InvalidParam({ param: "cbkId", problem: "expected the platform's callback id in the path" })
      const state = yield* stateOf(params, config.tz)
      yield* (yield* Callbacks).fromUpstream(platformId, params.key, state).pipe(Effect.catchTag("SqlError", storageFailed))
      return {}
    })
})

export const endpoints: ReadonlyArray<Endpoint> = [upstreamCallback]
