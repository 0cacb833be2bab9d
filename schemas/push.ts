/**
 * What the platform pushes to a "third-party system" — us: the call/recording push
 * (§2.10.4), the work-order push (§2.12.9) and the callback status push (§2.3.1
 * `callbackUrl`). Fields the contract names are declared; the receiver keeps the raw request
 * besides, so nothing the platform adds is lost.
 */
import { Schema } from "effect"
import * as P from "./Param.js"

const d = P.doc
const opt = Schema.optional
const Str = Schema.String
const Num = Schema.Number
/** The platform writes memo values as strings or numbers, and null where it has none. */
const Value = Schema.Union(Str, Num, Schema.Null)

/** The memo of §2.10.4: the call record, the callback's paramvalue and work-order fields. */
export const CdrMemo = Schema.Struct({
  cdrId: opt(d("记录 ID")(Value)),
  cdrExtension: opt(d("呼叫所属分机")(Value)),
  cdrCalledName: opt(d("被号名称")(Value)),
  cdrExtensionIp: opt(d("呼叫分机 IP")(Value)),
  cdrHangupTime: opt(d("挂断时间")(Value)),
  cdrPhonePort: opt(d("被号端口")(Value)),
  cdrStartTime: opt(d("开始呼叫时间")(Value)),
  cdrIVR: opt(d("呼叫导航名称")(Value)),
  cdrTalktime: opt(d("通话时长（秒）")(Value)),
  cdrChargingTimes: opt(d("消费时长（分钟）")(Value)),
  cdrLastPhoneNum: opt(d("最后呼叫的去除前面 0 的号码")(Value)),
  cdrPeer: opt(d("呼叫方向（1.呼出 2.呼入 3.群呼呼出 4.群呼转座席）")(Value)),
  exteName: opt(d("呼叫所属分机名")(Value)),
  cdrHangupReasonText: opt(d("挂断原因文本")(Value)),
  cdrPhoneNum: opt(d("被叫号码")(Value)),
  cdrPhoneIp: opt(d("被叫号码经过 IP")(Value)),
  cdrHangupReasonCode: opt(d("挂断原因代码")(Value)),
  cdrTrunkRoute: opt(d("经过路由")(Value)),
  cdrCmmId: opt(d("关联 ID")(Value)),
  cdrExtensionPort: opt(d("所属分机路由端口")(Value)),
  cdrIVRKey: opt(d("IVR 按键")(Value)),
  cdrRecordFile: opt(d("录音文件路径 /voip/record/{cdrRecordFile}")(Value)),
  paramvalue: opt(d("回传 paramvalue")(Value)),
  ...P.numbered("woOther", 50, "", (n) => opt(d(n === 1 ? "工单数据：语音文字" : n === 11 ? "工单数据：按键" : `工单数据：自定义字段 ${n}`)(Value)))
})

export const CALL_EVENT_TYPES = { 1: "call.dialing", 2: "call.answered", 3: "call.hangup", 4: "call.recording" } as const

/** §2.10.4 `/api/voip.json?type=3&phone=…&peer=1&memo={…}` */
export const CallPush = Schema.Struct({
  type: d("1 呼叫 2 接听 3 挂断 4 录音推送")(P.intIn(1, 4)),
  peer: d("1 呼出 2 呼入（3 群呼呼出 4 群呼转座席）")(P.intIn(1, 4)),
  phone: opt(d("电话号码")(P.textMax(64))),
  memo: opt(d("在挂机的时候返回的 JSON（严格或宽松 JSON；解析失败时保留原文）")(P.json))
})

// Step fields and times stay text: the platform may write times as Java does (`…12:00:00.0`),
// and a push is not refused over the format of a field the contract does not require.
const stepFields = {
  ...P.numbered("woStep", 20, "_exteId", (n) => opt(d(`工单第 ${n} 步 –创建者（处理人 ID）`)(P.text))),
  ...P.numbered("woStep", 20, "Time", (n) => opt(d(`工单第 ${n} 步 提交时间`)(P.text))),
  ...P.numbered("woStep", 20, "Answer", (n) => opt(d(`工单第 ${n} 步 问题答案`)(P.text))),
  ...P.numbered("woStep", 20, "Status", (n) => opt(d(`工单第 ${n} 步 状态`)(P.text)))
}

const woOtherFields = P.numbered("woOther", 50, "", (n) => opt(d(`自定义字段 ${n}`)(P.text)))

export const WORKORDER_EVENT_TYPES = { 1: "workorder.saved", 2: "workorder.submitted", 3: "workorder.returned", 4: "workorder.ended" } as const

/** §2.12.9 */
export const WorkOrderPush = Schema.Struct({
  woId: d("工单号")(P.idText),
  wo_custId: opt(d("关联客户 ID")(P.idText)),
  wo_wotId: d("工单类型 ID")(P.idText),
  wotName: d("工单名称")(P.text),
  woCode: opt(d("工单编号")(P.text)),
  woPhone: opt(d("工单电话")(P.text)),
  cpPhone1: opt(d("客户电话 1")(P.text)),
  cpPhone2: opt(d("客户电话 2")(P.text)),
  custName: opt(d("客户名称")(P.text)),
  woCreateTime: opt(d("工单创建时间")(P.text)),
  woStepId: opt(d("工单第 N 步")(P.int)),
  woEndTime: opt(d("工单结束时间")(P.text)),
  woMoney: opt(d("自宝义金额（自定义金额）")(P.decimal)),
  woMoney2: opt(d("自定义金额 2")(P.decimal)),
  wosName: opt(d("工单所在步骤名")(P.text)),
  wo_action: d("1.保存 2.提交 3.返回 4.结束")(P.intIn(1, 4)),
  ...stepFields,
  ...woOtherFields
})

/** §2.3.1: what the platform calls `callbackUrl` with as a callback call progresses. */
export const CallbackPush = Schema.Struct({
  cbkId: d("通话 ID")(P.idText),
  cbkStatus: d("状态：0.未呼叫 1.呼叫中 2.暂停 3.未接听 4.已接听 5.已转接")(P.intIn(0, 5)),
  cbkSourcePhone: opt(d("源号码")(P.text)),
  cbkDescPhone: opt(d("转接号码")(P.text)),
  cbkCreateTime: opt(d("创建时间")(P.text)),
  cbkBeginTime: opt(d("开始呼叫时间")(P.text)),
  cbkSuccessTime: opt(d("接听时间")(P.text)),
  cbkEndTime: opt(d("挂断时间")(P.text)),
  cbkTransferSuccessTime: opt(d("转接接听时间")(P.text)),
  cbkTransferEndTime: opt(d("转接挂断时间")(P.text)),
  cbkTimes: opt(d("通话时间")(P.text)),
  cbkTransferTimes: opt(d("转接时长")(P.text)),
  cbkResultCode: opt(d("返回代码")(P.text)),
  cbkErrorCode: opt(d("错误代码")(P.text)),
  cbkWavFile: opt(d("录音路径")(P.text)),
  cbkExtension: opt(d("所属坐席")(P.text)),
  cbkType: opt(d("类型：0. 回拨 1. 坐席呼叫")(P.intOneOf(0, 1))),
  cbkUrl: opt(d("回调 URL")(P.text))
})

/** The acknowledgement, only after the event is committed. */
export const PushAck = Schema.Struct({
  code: d("code=0 时表示成功，其它表示失败")(Num),
  message: d("OK")(Str)
})
