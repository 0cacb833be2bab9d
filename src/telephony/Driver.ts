/**
 * What a telephony driver does, whichever it is (simulator, box, upstream). The methods that
 * make a phone ring (src/callbacks, src/box) ask a driver to place a call and hear back each
 * change of the call's state; they own their records and pushes, the driver the call itself
 * (and, for the simulator, the call records and recordings the platform would have made).
 */
import type { SqlError } from "@effect/sql/SqlError"
import type { Effect } from "effect"
import type { MethodFailed, NoPermission, NotFound, OverLimit, InvalidParam, UpstreamFailed } from "../api/Errors.js"
import type { Caller } from "../auth/Auth.js"

/** The contract's call states (§2.3.1 cbkStatus, §2.4.3 wsStatus). */
export const STATUS = { notCalled: 0, calling: 1, paused: 2, notAnswered: 3, answered: 4, transferred: 5 } as const
export type Status = (typeof STATUS)[keyof typeof STATUS]

/** The cause of a simulated call the bridge's stop cut short. */
export const INTERRUPTED = "INTERRUPTED"

/** Where a call stands; each change is handed to the requester whole. Times are Unix ms. */
export interface CallState {
  readonly status: Status
  readonly beginMs: number | null
  readonly successMs: number | null
  readonly endMs: number | null
  readonly transferSuccessMs: number | null
  readonly transferEndMs: number | null
  /** answered talk time, seconds */
  readonly talkSecs: number
  /** the transferred leg's talk time, seconds */
  readonly transferSecs: number
  /** how the call ended: a SIP-like cause (`NORMAL_CLEARING`, `NO_ANSWER`, `USER_BUSY`, …) */
  readonly resultCode: string
  /** the SIP status of a failed call (`480`, `486`, `503`), "" otherwise */
  readonly errorCode: string
  /** the recording's path under /voip/record/, "" when none */
  readonly recordFile: string
  /** the call record's id (the platform's cdrId), once there is one */
  readonly cdrId: string | null
  /** whether the call is over (no further change follows) */
  readonly ended: boolean
}

export const initialState: CallState = {
  status: STATUS.notCalled,
  beginMs: null,
  successMs: null,
  endMs: null,
  transferSuccessMs: null,
  transferEndMs: null,
  talkSecs: 0,
  transferSecs: 0,
  resultCode: "",
  errorCode: "",
  recordFile: "",
  cdrId: null,
  ended: false
}

export interface CallRequest {
  /**
   * callback: ring `from` (the enterprise side), then transfer to `to`; audit: ring `to` and say
   * `say`; task: ring `to`, play the flow (`flow`), then transfer to the agent `from` when the flow does
   */
  readonly kind: "callback" | "audit" | "task"
  /** the requester's id of the call (cbkId, wsId, ctdId) */
  readonly id: number
  readonly caller: Caller
  readonly from: string
  readonly to: string
  readonly record: boolean
  /** audit: what the called party hears, and how (§2.4.2 type) */
  readonly say?: { readonly text: string; readonly type: number; readonly commandNo: string } | undefined
  /** task: how long the flow plays (simulated ms) and whether the answered call is then transferred to an agent */
  readonly flow?: { readonly playMs: number; readonly transfer: boolean; readonly label: string } | undefined
  /** the request's own parameters, as a relaying driver passes them on */
  readonly params: Readonly<Record<string, string>>
}

export type DriverError = UpstreamFailed | MethodFailed | NotFound | NoPermission | InvalidParam | OverLimit | SqlError

/** A call accepted by the driver: what it answered (an upstream's reply), and the call's life to start once the requester stored it. */
export interface Placed {
  readonly answer: Readonly<Record<string, unknown>> | null
  /** a relayed request: the platform's id of it, and the secret its status pushes back to us carry */
  readonly upstream?: { readonly id: string | null; readonly key: string } | undefined
  /** runs the call, reporting each change; forked by the requester after its record is committed */
  readonly run: (report: (state: CallState) => Effect.Effect<void>) => Effect.Effect<void>
}

export interface TelephonyDriver {
  readonly name: "simulator" | "box" | "upstream"
  readonly place: (request: CallRequest) => Effect.Effect<Placed, DriverError>
  /** §2.5.1: a SmartTel phone on a box's channel dials `phone` */
  readonly dialOnDevice: (request: { readonly mac: string; readonly channel: number; readonly phone: string }, caller: Caller) => Effect.Effect<void, DriverError>
  /**
   * A driver in front of a real platform relays the methods the platform carries out itself
   * (smsSend, the verification codes) and answers what it said; the others have none, and the
   * bridge does the work (an SMS record for a gateway target, a code of its own).
   */
  readonly relay?: (method: string, params: Readonly<Record<string, string>>) => Effect.Effect<Readonly<Record<string, unknown>>, DriverError>
}
