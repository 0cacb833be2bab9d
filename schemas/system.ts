/** §2.2.1–2.2.5, §2.3.*, §2.5.1, §2.11.6–2.11.7 — channels, SMS, callback calls, device dialling, verification. */
import { ParseResult, Schema } from "effect"
import { method } from "./Method.js"
import * as P from "./Param.js"

const d = P.doc
const opt = Schema.optional
const Str = Schema.String
const Num = Schema.Number
const NullableStr = Schema.NullOr(Str)

// Channel monitoring shows every line of the enterprise (§2.2 系统管理): administrators only.
export const systemChannels = method({
  name: "systemChannels",
  section: "2.2.1",
  title: "系统通道监控",
  admin: true,
  params: { CompNumber: opt(d("企业号（可不填）")(P.textMax(6))) },
  result: {
    channelviewinfo: d("通道列表")(Schema.Array(Schema.Record({ key: Str, value: Schema.Unknown }))),
    totalNum: d("总通道数")(Num),
    totalGroupCallNum: d("总群呼通道数")(Num),
    useGroupCallNum: d("使用的群呼通道数")(Num),
    useAgiCallNum: d("使用的正常通道数")(Num),
    channelNum: d("总正常通道数")(Num)
  }
})

// The inbound queue of the whole enterprise, not the caller's own calls: administrators only.
export const getChannelList = method({
  name: "getChannelList",
  section: "2.2.2",
  title: "获取通道列表",
  admin: true,
  params: { queueSize: opt(d("队列方式返回（0.所有列表 1.队列等待）")(P.intOneOf(0, 1))) },
  result: {
    rows: d("等待列表")(
      Schema.Array(Schema.Struct({ channelName: d("通道名称")(Str), callinTel: d("呼入号码")(Str), createTime: d("呼入时间")(Str), queueId: d("队列 ID")(Num) }))
    )
  }
})

export const smsSend = method({
  name: "smsSend",
  section: "2.2.3",
  title: "短信发送",
  params: {
    phoneNum: d("手机号，以“,”做为分隔符")(P.commaList(P.item.phone)),
    memo: d("发送内容，70 个字以内（更长：-12）")(P.textAtMost(70)),
    listId: opt(d("批次号")(P.int))
  },
  result: { listId: d("批次号（bridge 增加的字段）")(Num) }
})

// Changes how the enterprise's IVR dials for every caller: administrators only.
export const setIvrDialing = method({
  name: "setIvrDialing",
  section: "2.2.5",
  title: "设置代拨号码缓存",
  admin: true,
  params: {
    sourcePhone: d("主叫号码")(P.phone),
    descPhone: d("被叫号码")(P.phone),
    dialPhone: d("代拨号码")(P.phone),
    saveTimes: opt(d("有效时间（秒）")(P.intIn(1, 31_536_000)))
  },
  result: {}
})

/**
 * `callbackUrl`: base64 of an http(s) URL, e.g. base64(http://127.0.0.1:8080/callbackurl?cbkId={cbkId}).
 * Senders that forget to urlencode it have their `+` read as a space, and some use the URL-safe
 * alphabet: both are taken back.
 */
const callbackUrl = Schema.transformOrFail(P.text, Str, {
  strict: true,
  decode: (b64, _, ast) => {
    const clean = b64.trim().replace(/ /g, "+")
    const text = /^[A-Za-z0-9+/_-]+={0,2}$/.test(clean) ? Buffer.from(clean, "base64").toString("utf8") : ""
    try {
      const url = new URL(text)
      if (url.protocol === "http:" || url.protocol === "https:") return ParseResult.succeed(text)
    } catch {
      // falls through to the coded failure below
    }
    return ParseResult.fail(new ParseResult.Type(ast, b64, "expected the base64 of an http(s) URL"))
  },
  encode: (url) => ParseResult.succeed(Buffer.from(url, "utf8").toString("base64"))
})

export const callbackPhone = method({
  name: "callbackPhone",
  section: "2.3.1",
  title: "发起回拨呼叫",
  params: {
    sourcePhone: d("源号码")(P.phone),
    descPhone: d("目标号码")(P.phone),
    callbackUrl: opt(d("回调 URL（base64 编码），状态变化时以 cbk* 字段回调")(callbackUrl))
  },
  result: { id: d("通话记录 ID，当前通话的回调 ID")(Num) }
})

export const CallbackRow = Schema.Struct({
  cbkId: d("通话 ID")(Num),
  cbk_exteId: d("所属坐席 ID")(Num),
  cbkSourcePhone: d("企业回拨号")(Str),
  cbkDescPhone: d("客户号码")(Str),
  cbkStatus: d("状态 0.未呼叫 1.呼叫中 2.暂停 3.未接听 4.已接听 5.已转接")(Num),
  cbkCreateTime: d("调用时间")(Str),
  cbkBeginTime: d("呼叫开始时间")(NullableStr),
  cbkSuccessTime: d("呼叫接听时间")(NullableStr),
  cbkEndTime: d("呼叫结束时间")(NullableStr),
  cbkTimes: d("接听时长（秒）")(Num),
  cbkTransferSuccessTime: d("转接接听时间")(NullableStr),
  cbkTransferEndTime: d("转接结束时间")(NullableStr),
  cbkTransferTimes: d("转接时长")(Num),
  cbkResultCode: d("返回代码")(Str),
  cbkErrorCode: d("错误代码")(Str),
  cbkWavFile: d("录音文件路径")(Str),
  cbkExtension: d("所属分机号")(Str),
  cbkType: d("类型 0. 回拨 1. 坐席呼叫")(Num),
  cbkUrl: d("回调 URL")(Str)
})

export const getCallbackList = method({
  name: "getCallbackList",
  section: "2.3.2",
  title: "获得回拨列表",
  params: {
    start: opt(d("分页开始，默认 0")(P.intIn(0, Number.MAX_SAFE_INTEGER))),
    limit: opt(d("分页每页显示条数，默认 25")(P.intIn(0, Number.MAX_SAFE_INTEGER))),
    extension: opt(d("坐席号")(P.extension)),
    startTime: opt(d("开始时间")(P.datetime)),
    endTime: opt(d("结束时间")(P.datetime)),
    id: opt(d("回拨记录 ID")(P.id))
  },
  result: { total: d("总条数")(Num), rows: d("回拨记录")(Schema.Array(CallbackRow)) }
})

export const sendTelCall = method({
  name: "sendTelCall",
  section: "2.5.1",
  title: "后台通知话机拨号",
  params: {
    mac: d("设备的 MAC 地址")(P.text.pipe(Schema.compose(Schema.String.pipe(Schema.pattern(/^[0-9A-Fa-f]{2}([:-]?[0-9A-Fa-f]{2}){3,7}$/, { message: () => "expected a MAC address such as 00:00:00:00:01" }))))),
    channel: d("通道 ID(1,2,3……)")(P.intIn(1, 64)),
    phone: d("呼叫号码")(P.phone)
  },
  result: {}
})

export const sendCallAgiPhoneSms = method({
  name: "sendCallAgiPhoneSms",
  section: "2.11.6",
  title: "获取验证码（回拨线路）",
  params: { phone: d("电话号码（主叫）")(P.phone) },
  result: {}
})

export const CallAgiverificationCode = method({
  name: "CallAgiverificationCode",
  section: "2.11.7",
  title: "设置验证码（回拨线路）",
  params: {
    phone: d("电话号码（主叫）")(P.phone),
    vtCode: d("手机收到的验证码")(P.text.pipe(Schema.compose(Schema.String.pipe(Schema.pattern(/^\d{4,8}$/, { message: () => "expected a 4 to 8 digit code" })))))
  },
  result: {}
})
