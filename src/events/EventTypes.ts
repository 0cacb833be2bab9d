/**
 * Every event type the bridge raises, by what raises it: what a target's `events` globs are
 * checked against (a glob that matches none is a typo: `calls.*`, `call.hangups`), and what the
 * admin page offers. `NewEvent.type` is typed by it: raising a type not listed here does not compile.
 */
import { CALL_EVENT_TYPES, WORKORDER_EVENT_TYPES } from "../../schemas/push.js"

export const EVENT_TYPES = [
  ...Object.values(CALL_EVENT_TYPES),
  ...Object.values(WORKORDER_EVENT_TYPES),
  "callback.status",
  "phoneaudit.status",
  "cdr.added",
  "cdr.updated",
  "sms.added",
  "sms.updated",
  "message.sent",
  "recording.uploaded",
  "extension.created",
  "extension.updated",
  "extension.deleted",
  "extension.password_reset",
  "extension.checked_in",
  "extension.checked_out",
  "blacklist.added",
  "blacklist.removed",
  "customer.saved",
  "customer.deleted",
  "customer.locked",
  "sale.saved",
  "memo.added",
  "memo.reminder",
  "verification.sent",
  "verification.passed",
  "verification.failed",
  "verification.sms",
  "ivr.dialing.set",
  "flow.saved",
  "flow.deleted",
  "task.added",
  "task.finished",
  "box.channel",
  "box.alert",
  "box.offline",
  "box.online",
  "box.recording",
  "box.dial.queued",
  "box.message.queued",
  "storage.low",
  "storage.ok",
  "delivery.exhausted",
  "target.failing",
  "target.recovered"
] as const

/** Every event type: what `NewEvent.type` is typed as, so raising an unknown one does not compile. */
export type EventType = (typeof EVENT_TYPES)[number]

const globToRegExp = (glob: string) => new RegExp(`^${glob.split("*").map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`)

/** Undefined when the glob matches a known type; else why not, naming the known namespaces. */
export const unknownGlob = (glob: string): string | undefined => {
  const r = globToRegExp(glob)
  if (EVENT_TYPES.some((t: string) => r.test(t))) return undefined
  const namespaces = [...new Set(EVENT_TYPES.map((t: string) => t.split(".")[0]))].join(", ")
  return `${JSON.stringify(glob)} matches no event type (types are <namespace>.<name>, namespaces: ${namespaces}; e.g. call.*, call.hangup, workorder.*)`
}
