/** Events made up for a test-send: what the bridge would forward, with a test's numbers. */

const call = (type: number, peer: number, talk: number) => ({
  type,
  peer,
  phone: "13800138000",
  cdrId: 900001,
  memo: {
    cdrId: 900001,
    cdrExtension: "100008800",
    exteName: "管理员",
    cdrPhoneNum: "13800138000",
    cdrStartTime: "2026-01-01 09:00:00",
    cdrTalktime: talk,
    cdrPeer: peer,
    ...(type === 3 ? { cdrHangupReasonText: talk === 0 ? "NO_ANSWER" : "NORMAL_CLEARING" } : {}),
    ...(type === 4 ? { cdrRecordFile: "100008/20260101/900001.wav" } : {})
  },
  memoParsed: true
})

const SAMPLES: Record<string, Record<string, unknown>> = {
  "call.dialing": call(1, 2, 0),
  "call.answered": call(2, 2, 0),
  // a missed call: it rang in, nobody answered
  "call.hangup": call(3, 2, 0),
  "call.recording": call(4, 2, 35),
  "recording.uploaded": { id: 1, fileName: "900001.wav", path: "100008/900001.wav", size: 1024, extension: "100008800" },
  "workorder.ended": { woId: "1", wo_wotId: "1", wotName: "售后维修", woCode: "WO-0001", custName: "张三", woPhone: "13800138000", wosName: "回访", wo_action: 4 },
  "callback.status": { cbkId: "1", cbkStatus: 3, cbkSourcePhone: "13800138000", cbkDescPhone: "100008800", cbkExtension: "100008800" },
  "delivery.exhausted": { target: "crm", deliveryId: 1, eventId: 1, eventType: "call.hangup", attempts: 10, reason: "exhausted", lastError: "HTTP 503" },
  "target.failing": { target: "crm", failures: 5, lastError: "HTTP 503" },
  "target.recovered": { target: "crm", after: 5 }
}

/** The sample for an event type or glob: the first sample type it matches (`call.*`: a call), else a missed call. */
export const sampleFor = (events: ReadonlyArray<string>): { readonly type: string; readonly data: Record<string, unknown> } => {
  for (const glob of events) {
    const pattern = new RegExp(`^${glob.split("*").map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`)
    const type = glob === "call.*" || glob === "*" ? "call.hangup" : Object.keys(SAMPLES).find((t) => pattern.test(t))
    if (type) return { type, data: SAMPLES[type]! }
  }
  return { type: "call.hangup", data: SAMPLES["call.hangup"]! }
}

export const sampleOf = (type: string): Record<string, unknown> | undefined => SAMPLES[type]
