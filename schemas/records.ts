/** §2.1.3–2.1.7, §2.4.1–2.4.4, §2.7.1 — messaging between clients, call and SMS records, verification calls, number areas. */
import { Schema } from "effect"
import { method } from "./Method.js"
import * as P from "./Param.js"

const d = P.doc
const opt = Schema.optional
const Str = Schema.String
const Num = Schema.Number
const NullableStr = Schema.NullOr(Str)

export const sendMsg = method({
  name: "sendMsg",
  section: "2.1.3",
  title: "发送消息（客户端之间）",
  params: {
    kind: d("消息类型：1 去电（拨号） 2 来电 3 发送短信 4 接收短信 5 GPS 定位上传 6 客户端接电话 7 客户端挂机")(P.intIn(1, 7)),
    client: d("客户端类型：1 PC，2 手机")(P.intOneOf(1, 2)),
    lon: opt(d("经度")(P.decimal.pipe(Schema.filter((n) => (n >= -180 && n <= 180) || "expected a longitude from -180 to 180")))),
    lat: opt(d("纬度")(P.decimal.pipe(Schema.filter((n) => (n >= -90 && n <= 90) || "expected a latitude from -90 to 90")))),
    phone: d("电话号码")(P.textMax(64)),
    // kind 1/2 carry a relaxed-JSON object, other kinds plain text: kept as sent, parsed by kind in the handler
    content: opt(d("消息内容；kind=1、2 时为 {status:0,talkTimes:10}（status: 0 正在呼叫 1 接听 2 挂机）")(P.textMax(4000))),
    time: opt(d("时间，Unix 毫秒格式（缺省为服务器时间）")(P.unixMs)),
    lostTime: opt(d("消息过期周期（秒），0 表示不限制")(P.intIn(0, 31_536_000))),
    extension: opt(d("坐席号（缺省为当前坐席）")(P.extension)),
    loginType: opt(d("登录类型（合同示例中出现，保留）")(P.int))
  },
  result: {
    waterLine: d("服务器存储消息时间戳（bridge 增加的字段）")(Num)
  }
})

export const Message = Schema.Struct({
  kind: d("消息类型")(Str),
  phone: d("电话号码")(Str),
  content: d("消息内容，来去电时为 JS 对象文本：status 0 来电或去电，1 接通，3 挂机；cdrId 通话记录 ID")(Str),
  time: d("时间，Unix 毫秒格式")(Num),
  waterLine: d("服务器存储消息时间戳")(Num),
  client: d("发送方客户端类型：1 PC，2 手机")(Num),
  lon: opt(d("经度")(Num)),
  lat: opt(d("纬度")(Num)),
  status: opt(d("content 中的 status（kind=1、2）")(Num)),
  cdrId: opt(d("content 中的 cdrId")(Schema.Union(Num, Str))),
  talkTimes: opt(d("content 中的 talkTimes")(Num))
})

export const recvMsg = method({
  name: "recvMsg",
  section: "2.1.4",
  title: "获取接收消息",
  params: {
    client: d("客户端类型：1 PC，2 手机")(P.intOneOf(1, 2)),
    waterLine: opt(d("消息开始的时间戳（返回其后的消息）")(P.unixMs)),
    // the ceiling is configuration (limits.pageMax, 1000 by default), answered -12 by the handler
    limit: opt(d("最大消息条数，默认 100 条")(P.intIn(1, 1_000_000)))
  },
  result: {
    msgs: d("消息列表（按 waterLine 升序）")(Schema.Array(Message)),
    waterLine: d("本次最后一条的 waterLine（无消息时为请求的 waterLine）（bridge 增加的字段）")(Num)
  }
})

export const addCdrRecord = method({
  name: "addCdrRecord",
  section: "2.1.6",
  title: "上传通话记录",
  params: {
    dialId: d("本地唯一记录 ID")(P.idText),
    dialStatus: opt(d("状态")(P.int)),
    dialOpenIp: opt(d("IP")(P.textMax(64))),
    dialPeer: opt(d("呼叫方向 1 呼出 2 呼入")(P.intIn(1, 5))),
    dialPhoneNum: opt(d("电话号码")(P.textMax(64))),
    dialType: opt(d("类型")(P.int)),
    dialStartTime: opt(d("yyyy-mm-dd hh:nn:ss")(P.datetime)),
    dialSucessTime: opt(d("接通时间 yyyy-mm-dd hh:nn:ss")(P.datetime)),
    dialHangupTime: opt(d("挂断时间 yyyy-mm-dd hh:nn:ss")(P.datetime)),
    dialAnswer: opt(d("是否接听")(P.int)),
    dialHangupReason: opt(d("挂断原因")(P.int)),
    dialTalktime: opt(d("通话时长（秒）")(P.intIn(0, 86_400 * 7))),
    dialRecordFile: opt(d("录音文件名")(P.textMax(255))),
    dialCtdId: opt(d("任务明细 ID")(P.idText)),
    dialTransferSuccessTime: opt(d("转接时间")(P.datetime)),
    dialTransferTimes: opt(d("转接时长")(P.int)),
    dialSmsSendStatus: opt(d("短信发送状态：0. 未发送 1. 已发送")(P.intOneOf(0, 1)))
  },
  result: {
    cdrId: d("服务器的通话记录 ID（bridge 增加的字段）")(Num)
  }
})

export const addSmsRecord = method({
  name: "addSmsRecord",
  section: "2.1.7",
  title: "上传短信记录",
  params: {
    id: opt(d("本地唯一 ID")(P.idText)),
    kind: opt(d("类型：3 发送短信 4 接收短信")(P.intOneOf(3, 4))),
    phone: d("电话号码")(P.textMax(64)),
    content: opt(d("消息内容")(P.textMax(4000))),
    time: d("发送时间，Unix 毫秒格式")(P.unixMs)
  },
  result: {
    smsId: d("服务器的短信记录 ID（bridge 增加的字段）")(Num)
  }
})

/** A call record as findDialrecord (§2.4.1, §2.7.1) and the push memo (§2.10.4) name its fields. */
export const CdrRow = Schema.Struct({
  cdrId: d("记录 ID")(Schema.Union(Num, Str)),
  cdrCalledName: d("被号名称")(Str),
  cdrExtensionIp: d("呼叫分机 IP")(Str),
  cdrHangupTime: d("挂断时间")(Str),
  cdrPhonePort: d("被号端口")(Str),
  cdrStartTime: d("开始呼叫时间")(Str),
  cdrExtension: d("呼叫所属分机")(Str),
  cdrIVR: d("呼叫导航名称")(Str),
  cdrTalktime: d("通话时长（秒）")(Num),
  cdrChargingTimes: d("消费时长（分钟）")(Num),
  cdrLastPhoneNum: d("最后呼叫的去除前面 0 的号码")(Str),
  cdrPeer: d("呼叫方向（1.呼出 2.呼入 3.外呼呼出 4.外呼接听 5.语音留言）")(Num),
  exteName: d("呼叫所属分机名")(Str),
  cdrHangupReasonText: d("挂断原因文本")(Str),
  cdrPhoneNum: d("被叫号码")(Str),
  cdrPhoneIp: d("被叫号码经过 IP")(Str),
  cdrHangupReasonCode: d("挂断原因代码")(Str),
  cdrTrunkRoute: d("经过路由")(Str),
  cdrCmmId: d("关联 ID")(Str),
  cdrExtensionPort: d("所属分机路由端口")(Str),
  cdrIVRKey: d("IVR 按键")(Str),
  cdrRecordFile: d("录音文件路径：http://host:port/voip/record/{cdrRecordFile}")(Str)
})

const findDialrecordParams = {
  extension: opt(d("查询的分机号，多个分机号用“,”号分隔")(P.commaList(P.item.extension))),
  phoneNum: opt(d("查询的电话号码")(P.textMax(64))),
  talktimeSql: opt(d("通话时长查询条件类型 0 大于 1 小于")(P.intOneOf(0, 1))),
  talktime: opt(d("通话时长（秒），结合 talktimeSql 使用")(P.intIn(0, 86_400 * 7))),
  startTime: opt(d("开始时间，格式 yyyy-mm-dd hh:nn:ss")(P.datetime)),
  statrTime: opt(d("开始时间（§2.7.1 的拼写）")(P.datetime)),
  endTime: opt(d("结束时间，格式 yyyy-mm-dd hh:nn:ss")(P.datetime)),
  cdrPeer: opt(d("呼叫方向 1.呼出 2.呼入 3.外呼呼出 4.外呼接听 5.语音留言")(P.intIn(1, 5))),
  scdrId: opt(d("通话记录 ID")(P.idText)),
  start: opt(d("开始行，默认 0")(P.intIn(0, Number.MAX_SAFE_INTEGER))),
  limit: opt(d("条数，默认 20")(P.intIn(0, Number.MAX_SAFE_INTEGER)))
}

export const findDialrecord = method({
  name: "findDialrecord",
  aliases: ["findDialrecord.html"],
  section: "2.4.1 / 2.7.1",
  title: "用户通话记录查询",
  success: true,
  params: findDialrecordParams,
  result: {
    total: d("记录条数")(Num),
    recordTotal: d("记录条数")(Num),
    rows: d("通话记录")(Schema.Array(CdrRow))
  }
})

export const phoneAudit = method({
  name: "phoneAudit",
  section: "2.4.2",
  title: "外呼语音验证码",
  success: true,
  params: {
    yzm: d("验证码（支持中文）")(P.textMax(500)),
    type: d("数字为 1，中文为 3，科大讯飞为 4，语音文件列表 5")(P.intOneOf(1, 3, 4, 5)),
    ws_wlstConnectId: opt(d("固定为接口方生成提供")(P.idText)),
    phone: d("呼叫电话")(P.phone),
    isRecord: opt(d("0．不录音 1.转接后录音 2.接通后录音")(P.intOneOf(0, 1, 2))),
    commandNo: opt(d("命令号（命令列表中自定义）")(P.textMax(64)))
  },
  result: {
    id: d("创建的任务 ID")(Num),
    yzm: d("验证码")(Str)
  }
})

export const getPhoneAudit = method({
  name: "getPhoneAudit",
  section: "2.4.3",
  title: "外呼语音记录查询",
  params: {
    id: opt(d("通话 ID")(P.idText)),
    startTime: opt(d("开始时间 yyyy-mm-dd hh:nn:ss")(P.datetime)),
    endTime: opt(d("结束时间 yyyy-mm-dd hh:nn:ss")(P.datetime)),
    status: opt(d("通话状态（可多种，用“,”分隔）0.未呼叫 1.呼叫中 2.暂停 3.未接听 4.已接听 5.已转接")(P.commaList(P.item.int))),
    sipShowPhone: opt(d("外线对应外显：0. 不对应 1. 外线对应外显")(P.intOneOf(0, 1))),
    page: opt(d("页")(P.intIn(1, Number.MAX_SAFE_INTEGER))),
    rows: opt(d("行")(P.intIn(1, Number.MAX_SAFE_INTEGER))),
    loginId: opt(d("登录帐号")(P.textMax(64)))
  },
  result: {
    total: d("记录条数")(Num),
    rows: d("外呼记录")(
      Schema.Array(
        Schema.Struct({
          wsId: d("语音 ID")(Num),
          wsStatus: d("通话状态")(Num),
          wsTalkTimes: d("通话时长")(Num),
          wsPhone: d("呼叫号码")(Str),
          wsCreateTime: d("创建时间")(Str),
          wsBeginTime: d("开始呼叫时间")(NullableStr),
          wsSuccessTime: d("接通时间")(NullableStr),
          wsEndTime: d("挂断时间")(NullableStr),
          ws_exteId: d("所属坐席")(Num),
          wsValue: d("传入值")(Str),
          wsType: d("外呼类型")(Num),
          wsRecordPath: d("录音文件路径 http://host:port/voip/record/{wsRecordPath}")(Str),
          WsResultKey: d("按键值")(Str),
          ws_tyConnectId: d("关联 ID")(NullableStr),
          wsSipRound: d("经过外线")(Str),
          wsShowPhone: d("外显号码")(Str)
        })
      )
    )
  }
})

export const getAreaPhone = method({
  name: "getAreaPhone",
  section: "2.4.4",
  title: "获取号码区域",
  params: { phone: d("电话号码")(P.textMax(64)) },
  result: {
    area: d("所在区域")(Str),
    phone: d("电话号码（规范化后）")(Str),
    areaCode: d("区号")(Str),
    serviceName: d("运营商（手机）或“固话”（合同误写作“被叫号码”）")(Str),
    oldphone: d("传入的号码")(Str)
  }
})

