/**
 * The one registry of pushes we receive from the platform. Each receiver says how its
 * decoded fields become an event, what identifies a sender's retry (natural key), and what
 * state the push changes besides (a call push upserts its call record).
 */
import type { EventType } from "../events/EventTypes.js"
import * as crypto from "node:crypto"
import type { Schema } from "effect"
import type { EmbeddedJson } from "../../schemas/Param.js"
import { CALL_EVENT_TYPES, CallbackPush, CallPush, WORKORDER_EVENT_TYPES, WorkOrderPush } from "../../schemas/push.js"
import type { Prepared } from "../db/Sqlite.js"
import type { AppConfigShape } from "../config/AppConfig.js"
import { linkCallIn } from "../customers/Phones.js"
import type { CdrStore } from "../records/CdrStore.js"
import { pushedInstant } from "../shared/Time.js"

export interface Received {
  readonly type: EventType
  readonly data: Readonly<Record<string, unknown>>
  readonly enterprise: string | null
  /** natural key of the push; null: a hash of the whole request is used */
  readonly key: string | null
}

export interface Receiver<A, I> {
  readonly name: "voip" | "workorder" | "callback"
  /** what the push is called in the API document */
  readonly summary: string
  readonly schema: Schema.Schema<A, I> & { readonly fields: Schema.Struct.Fields }
  readonly methods: ReadonlyArray<"GET" | "POST">
  readonly receive: (push: A) => Received
  /** a state change committed with the event: resolved before the commit, run inside it (synchronously) */
  readonly apply?: (received: Received, services: ReceiverServices) => ((prepared: Prepared) => void) | undefined
  /**
   * What the event's data gains from the state it is committed with (the customer a call is
   * with): run inside the commit before the event is written; re-runnable.
   */
  readonly link?: (received: Received, services: ReceiverServices) => ((prepared: Prepared) => Readonly<Record<string, unknown>> | undefined) | undefined
}

/** What a receiver's state change reads: given, so a push needs no step of its own to look them up. */
export interface ReceiverServices {
  readonly cdrs: CdrStore
  readonly config: AppConfigShape
}

/** A call's id as the platform writes it (digits, as a number or a string); anything else names no call. */
const idOf = (value: unknown) =>
  (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) || (typeof value === "string" && /^\s*[0-9A-Za-z_-]{1,64}\s*$/.test(value))
    ? String(value).trim()
    : undefined

const digest = (value: unknown) => crypto.createHash("sha256").update(JSON.stringify(value)).digest("base64url")

/** An extension number is the enterprise's 6 digits and a 3-digit suffix. */
const enterpriseOf = (extension: unknown) => (typeof extension === "string" || typeof extension === "number") && /^\d{9}$/.test(String(extension)) ? String(extension).slice(0, 6) : null

const memoObject = (memo: EmbeddedJson | undefined) =>
  memo?.parsed && typeof memo.value === "object" && memo.value !== null && !Array.isArray(memo.value) ? (memo.value as Record<string, unknown>) : undefined

const voip: Receiver<typeof CallPush.Type, typeof CallPush.Encoded> = {
  name: "voip",
  summary: "录音推送第三方接口 (§2.10.4)：平台推送，提交后才应答",
  schema: CallPush,
  methods: ["GET", "POST"],
  receive: (push) => {
    const memo = memoObject(push.memo)
    const cdrId = idOf(memo?.cdrId)
    return {
      type: CALL_EVENT_TYPES[push.type as 1 | 2 | 3 | 4],
      enterprise: enterpriseOf(memo?.cdrExtension),
      key: cdrId === undefined ? null : `voip:${cdrId}:${push.type}`,
      data: {
        type: push.type,
        peer: push.peer,
        phone: push.phone ?? "",
        ...(memo?.cdrId !== undefined ? { cdrId: memo.cdrId } : {}),
        memo: memo ?? null,
        // a memo that is neither strict nor relaxed JSON is kept as it came, and says so
        memoParsed: push.memo === undefined || memo !== undefined,
        ...(push.memo !== undefined && memo === undefined ? { memoRaw: push.memo.raw } : {})
      }
    }
  },
  apply: (received, { cdrs: store }) => {
    const memo = received.data.memo as Record<string, unknown> | null
    const enterprise = received.enterprise
    // only a memo that names its call describes a call record: the push is keyed by that id then
    if (!memo || received.key === null) return undefined
    // the push's own phone and direction fill what the memo leaves out
    const { phone, peer } = received.data
    const defaults = { cdrPhoneNum: phone ? phone : undefined, cdrPeer: peer }
    return enterprise === null
      ? (prepared: Prepared) => void store.updateFromPlatformIn(prepared, memo, defaults)
      : (prepared: Prepared) => void store.upsertFromPlatformIn(prepared, enterprise, memo, defaults)
  },
  // a call with a customer's number is that customer's latest call (as of its start), and its events say whose
  link: (received, { config: { tz } }) => {
    const memo = received.data.memo as Record<string, unknown> | null
    const enterprise = received.enterprise
    if (!memo || received.key === null || enterprise === null) return undefined
    const phone = memo.cdrPhoneNum ?? received.data.phone
    if (typeof phone !== "string" && typeof phone !== "number") return undefined
    const start = typeof memo.cdrStartTime === "string" ? pushedInstant(memo.cdrStartTime, tz) : undefined
    return (prepared: Prepared) => {
      const custId = linkCallIn(prepared, enterprise, String(phone), start ?? Date.now())
      return custId === undefined ? undefined : { custId }
    }
  }
}

const workorder: Receiver<typeof WorkOrderPush.Type, typeof WorkOrderPush.Encoded> = {
  name: "workorder",
  summary: "工单推送 (§2.12.9)",
  schema: WorkOrderPush,
  methods: ["POST", "GET"],
  receive: (push) => ({
    type: WORKORDER_EVENT_TYPES[push.wo_action as 1 | 2 | 3 | 4],
    // a work-order push names no extension number, so it carries no enterprise
    enterprise: null,
    // the same work order is saved, or submitted at the same step, more than once: what was
    // sent is part of the key, so only the same push again (a retry) is one event
    key: `wo:${push.woId}:${push.wo_action}:${push.woStepId ?? ""}:${digest(push)}`,
    data: { ...push }
  })
}

const callback: Receiver<typeof CallbackPush.Type, typeof CallbackPush.Encoded> = {
  name: "callback",
  summary: "回拨状态推送 (§2.3.1 callbackUrl)",
  schema: CallbackPush,
  methods: ["GET", "POST"],
  receive: (push) => ({
    type: "callback.status",
    enterprise: enterpriseOf(push.cbkExtension),
    key: `cbk:${push.cbkId}:${push.cbkStatus}`,
    data: { ...push }
  })
}

export const receivers = [voip, workorder, callback] as const

/** A sender retries within minutes; two pushes alike an hour apart are two events (two calls). */
export const REQUEST_KEY_WINDOW_MS = 3_600_000

/**
 * When a push has no natural key, the request itself is the key: the same parameters again
 * within the hour are a retry. A retry that straddles the hour's end is stored twice
 * (a duplicate the targets may see) rather than a second real push lost.
 */
export const requestKey = (pairs: ReadonlyArray<readonly [string, string]>, now: number) =>
  `${digest([...pairs].sort(([a, x], [b, y]) => (a === b ? (x < y ? -1 : 1) : a < b ? -1 : 1)))}:${Math.floor(now / REQUEST_KEY_WINDOW_MS)}`
