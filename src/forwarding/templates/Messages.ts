/**
 * An event told in words for a chat: a title and a few lines, in Chinese (the default) or
 * English, and whom it concerns (the extension, whose mobile a bot can @-mention). The bots'
 * transforms read it as `$message`; a target's own transform may too.
 */

export type Language = "zh" | "en"

export interface Envelope {
  readonly id: number
  readonly type: string
  readonly occurredAt: string
  readonly enterprise: string | null
  readonly data: unknown
}

export interface Message {
  readonly title: string
  readonly lines: ReadonlyArray<string>
  /** title and lines as plain text */
  readonly text: string
  /** as markdown (DingTalk, WeCom, Feishu cards) */
  readonly markdown: string
  /** as Slack mrkdwn */
  readonly mrkdwn: string
  /** mobiles to @-mention (empty when unknown or not wanted) */
  readonly mobiles: ReadonlyArray<string>
  /** a call that rang in and was never answered */
  readonly missed: boolean
  /** a call event, for the `calls` setting */
  readonly call: boolean
}

type Json = Record<string, unknown>
const obj = (u: unknown): Json => (typeof u === "object" && u !== null && !Array.isArray(u) ? (u as Json) : {})
const str = (u: unknown) => (u === undefined || u === null ? "" : String(u))

/** The extension an event is about, where it names one (a call's, a callback's, an upload's). */
export const extensionOf = (e: Envelope): string | undefined => {
  const data = obj(e.data)
  const ext = obj(data.memo).cdrExtension ?? data.cbkExtension ?? data.extension
  const text = str(ext).trim()
  return /^\d{9}$/.test(text) ? text : undefined
}

const INBOUND = new Set([2, 4])
const talkSeconds = (memo: Json) => {
  const n = Number(memo.cdrTalktime ?? 0)
  return Number.isFinite(n) ? n : 0
}
/** A hang-up of a call that rang in (peer 2, or 4: a group call put through to an agent) with no talk time. */
export const isMissed = (e: Envelope) => {
  const data = obj(e.data)
  return e.type === "call.hangup" && INBOUND.has(Number(data.peer)) && talkSeconds(obj(data.memo)) === 0
}

const WORDS = {
  zh: {
    dialing: (inbound: boolean) => (inbound ? "来电" : "呼出"),
    answered: "通话已接通",
    hangup: "通话结束",
    missed: "未接来电",
    recording: "通话录音",
    uploaded: "录音已上传",
    phone: "号码",
    extension: "分机",
    talk: "通话时长",
    seconds: (n: number) => `${n} 秒`,
    at: "时间",
    file: "录音文件",
    reason: "挂断原因",
    workorder: { "workorder.saved": "工单已保存", "workorder.submitted": "工单已提交", "workorder.returned": "工单已退回", "workorder.ended": "工单已结束" } as Json,
    customer: "客户",
    step: "步骤",
    callback: "回拨状态",
    callbackStatus: ["未呼叫", "呼叫中", "暂停", "未接听", "已接听", "已转接"],
    exhausted: "投递失败，已进入死信",
    target: "目标",
    event: "事件",
    attempts: "尝试次数",
    error: "原因",
    failing: "目标连续失败，已熔断",
    failures: "连续失败",
    recovered: "目标已恢复",
    other: "事件"
  },
  en: {
    dialing: (inbound: boolean) => (inbound ? "Incoming call" : "Outgoing call"),
    answered: "Call answered",
    hangup: "Call ended",
    missed: "Missed call",
    recording: "Call recording",
    uploaded: "Recording uploaded",
    phone: "Number",
    extension: "Extension",
    talk: "Talk time",
    seconds: (n: number) => `${n} s`,
    at: "Time",
    file: "Recording",
    reason: "Hang-up reason",
    workorder: { "workorder.saved": "Work order saved", "workorder.submitted": "Work order submitted", "workorder.returned": "Work order sent back", "workorder.ended": "Work order closed" } as Json,
    customer: "Customer",
    step: "Step",
    callback: "Callback",
    callbackStatus: ["not called", "calling", "paused", "not answered", "answered", "transferred"],
    exhausted: "Delivery failed: dead-lettered",
    target: "Target",
    event: "Event",
    attempts: "Attempts",
    error: "Reason",
    failing: "Target failing: circuit open",
    failures: "Failures in a row",
    recovered: "Target recovered",
    other: "Event"
  }
} as const

/** The title and lines of an event, before they are laid out. */
const tell = (e: Envelope, language: Language): { title: string; lines: Array<string> } => {
  const w = WORDS[language]
  const data = obj(e.data)
  const memo = obj(data.memo)
  const lines: Array<string> = []
  const line = (label: string, value: unknown) => {
    const v = str(value).trim()
    if (v !== "") lines.push(`${label}: ${v}`)
  }
  const extensionLine = (ext: unknown, name: unknown) => {
    const n = str(name).trim()
    line(w.extension, n ? `${str(ext)} ${n}` : ext)
  }
  if (e.type.startsWith("call.")) {
    const inbound = INBOUND.has(Number(data.peer))
    line(w.phone, data.phone || memo.cdrPhoneNum)
    extensionLine(memo.cdrExtension, memo.exteName)
    line(w.at, memo.cdrStartTime ?? e.occurredAt)
    const title =
      e.type === "call.dialing"
        ? w.dialing(inbound)
        : e.type === "call.answered"
          ? w.answered
          : e.type === "call.hangup"
            ? isMissed(e)
              ? w.missed
              : w.hangup
            : e.type === "call.recording"
              ? w.recording
              : `${w.other} ${e.type}`
    if (e.type === "call.hangup" && !isMissed(e)) line(w.talk, w.seconds(talkSeconds(memo)))
    if (e.type === "call.hangup") line(w.reason, memo.cdrHangupReasonText)
    if (e.type === "call.recording") line(w.file, memo.cdrRecordFile)
    return { title, lines }
  }
  if (e.type === "recording.uploaded" || e.type === "box.recording") {
    line(w.file, data.fileName ?? data.path ?? data.file)
    extensionLine(data.extension, undefined)
    return { title: w.uploaded, lines }
  }
  if (e.type.startsWith("workorder.")) {
    line(w.event, [data.wotName, data.woCode].map(str).filter(Boolean).join(" "))
    line(w.customer, [data.custName, data.woPhone ?? data.cpPhone1].map(str).filter(Boolean).join(" "))
    line(w.step, data.wosName)
    return { title: str(w.workorder[e.type]) || `${w.other} ${e.type}`, lines }
  }
  if (e.type === "callback.status") {
    line(w.phone, [data.cbkSourcePhone, data.cbkDescPhone].map(str).filter(Boolean).join(" → "))
    extensionLine(data.cbkExtension, undefined)
    return { title: `${w.callback}: ${w.callbackStatus[Number(data.cbkStatus)] ?? str(data.cbkStatus)}`, lines }
  }
  if (e.type === "delivery.exhausted") {
    line(w.target, data.target)
    line(w.event, `${str(data.eventType)} #${str(data.eventId)}`)
    line(w.attempts, data.attempts)
    line(w.error, [data.reason, data.lastError].map(str).filter(Boolean).join(": "))
    return { title: w.exhausted, lines }
  }
  if (e.type === "target.failing") {
    line(w.target, data.target)
    line(w.failures, data.failures)
    line(w.error, data.lastError)
    return { title: w.failing, lines }
  }
  if (e.type === "target.recovered") {
    line(w.target, data.target)
    return { title: w.recovered, lines }
  }
  line(w.at, e.occurredAt)
  return { title: `${w.other} ${e.type}`, lines }
}

export const messageOf = (e: Envelope, options: { readonly language: Language; readonly mobile: string | undefined; readonly prefix?: string | undefined }): Message => {
  const told = tell(e, options.language)
  const { lines } = told
  const title = `${options.prefix ?? ""}${told.title}`
  const mobiles = options.mobile ? [options.mobile] : []
  // DingTalk shows an @ only when the text names the mobile as well
  const at = mobiles.map((m) => `@${m}`).join(" ")
  return {
    title,
    lines,
    text: [title, ...lines, ...(at ? [at] : [])].join("\n"),
    markdown: [`#### ${title}`, ...lines.map((l) => `- ${l}`), ...(at ? [at] : [])].join("\n"),
    mrkdwn: [`*${title}*`, ...lines].join("\n"),
    mobiles,
    missed: isMissed(e),
    call: e.type.startsWith("call.")
  }
}
