/**
 * The one registry of pushes we receive from the platform. Each receiver says how its
 * decoded fields become an event, what identifies a sender's retry (natural key), and what
 * state the push changes besides (a call push upserts its call record).
 */
import * as crypto from "node:crypto"
import { Effect, type Schema } from "effect"
import type { EmbeddedJson } from "../../schemas/Param.js"
import { CALL_EVENT_TYPES, CallbackPush, CallPush, WORKORDER_EVENT_TYPES, WorkOrderPush } from "../../schemas/push.js"
import type { AppServices } from "../AppServices.js"
import type { Prepared } from "../db/Sqlite.js"
import { CdrStore } from "../records/CdrStore.js"

export interface Received {
  readonly type: string
  readonly data: Readonly<Record<string, unknown>>
  readonly enterprise: string | null
  /** natural key of the push; null: a hash of the whole request is used */
  readonly key: string | null
}

export interface Receiver<A> {
  readonly name: "voip" | "workorder" | "callback"
  readonly schema: Schema.Schema<A, unknown>
  readonly methods: ReadonlyArray<"GET" | "POST">
  readonly receive: (push: A) => Received
  /** a state change committed with the event: resolved before the commit, run inside it (synchronously) */
  readonly apply?: (received: Received) => Effect.Effect<((prepared: Prepared) => void) | undefined, never, AppServices>
}

/** An extension number is the enterprise's 6 digits and a 3-digit suffix. */
const enterpriseOf = (extension: unknown) => (typeof extension === "string" || typeof extension === "number") && /^\d{9}$/.test(String(extension)) ? String(extension).slice(0, 6) : null

const memoObject = (memo: EmbeddedJson | undefined) =>
  memo?.parsed && typeof memo.value === "object" && memo.value !== null && !Array.isArray(memo.value) ? (memo.value as Record<string, unknown>) : undefined

const voip: Receiver<typeof CallPush.Type> = {
  name: "voip",
  schema: CallPush as Receiver<typeof CallPush.Type>["schema"],
  methods: ["GET", "POST"],
  receive: (push) => {
    const memo = memoObject(push.memo)
    const cdrId = memo?.cdrId
    return {
      type: CALL_EVENT_TYPES[push.type as 1 | 2 | 3 | 4],
      enterprise: enterpriseOf(memo?.cdrExtension),
      key: cdrId === undefined || cdrId === null ? null : `voip:${String(cdrId)}:${push.type}`,
      data: {
        type: push.type,
        peer: push.peer,
        phone: push.phone ?? "",
        ...(cdrId !== undefined ? { cdrId } : {}),
        memo: memo ?? null,
        // a memo that is neither strict nor relaxed JSON is kept as it came, and says so
        memoParsed: push.memo === undefined || memo !== undefined,
        ...(push.memo !== undefined && memo === undefined ? { memoRaw: push.memo.raw } : {})
      }
    }
  },
  apply: (received) =>
    Effect.map(CdrStore, (store) => {
      const memo = received.data.memo as Record<string, unknown> | null
      const enterprise = received.enterprise
      if (!memo || memo.cdrId === undefined || enterprise === null) return undefined
      // the push's own phone and direction fill what the memo leaves out
      const { phone, peer } = received.data
      const defaults = { cdrPhoneNum: phone ? phone : undefined, cdrPeer: peer }
      return (prepared: Prepared) => void store.upsertFromPlatformIn(prepared, enterprise, memo, defaults)
    })
}

const workorder: Receiver<typeof WorkOrderPush.Type> = {
  name: "workorder",
  schema: WorkOrderPush as Receiver<typeof WorkOrderPush.Type>["schema"],
  methods: ["POST", "GET"],
  receive: (push) => ({
    type: WORKORDER_EVENT_TYPES[push.wo_action as 1 | 2 | 3 | 4],
    // a work-order push names no extension number, so it carries no enterprise
    enterprise: null,
    key: `wo:${push.woId}:${push.wo_action}:${push.woStepId ?? ""}`,
    data: { ...push }
  })
}

const callback: Receiver<typeof CallbackPush.Type> = {
  name: "callback",
  schema: CallbackPush as Receiver<typeof CallbackPush.Type>["schema"],
  methods: ["GET", "POST"],
  receive: (push) => ({
    type: "callback.status",
    enterprise: enterpriseOf(push.cbkExtension),
    key: `cbk:${push.cbkId}:${push.cbkStatus}`,
    data: { ...push }
  })
}

export const receivers = [voip, workorder, callback] as const

/** When a push has no natural key, the request itself is the key: the same bytes again are a retry. */
export const requestHash = (pairs: ReadonlyArray<readonly [string, string]>) =>
  crypto.createHash("sha256").update(JSON.stringify([...pairs].sort(([a, x], [b, y]) => (a === b ? (x < y ? -1 : 1) : a < b ? -1 : 1)))).digest("hex")
