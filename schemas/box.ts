/**
 * §2.1.10 — the recording box (八百呼设备): `POST /voip/upload_record` (plain HTTP, POST only).
 * It answers with `status`, not `code`. One schema per `cmd`.
 */
import { ParseResult, Schema } from "effect"
import * as P from "./Param.js"

const d = P.doc
const opt = Schema.optional
const Str = Schema.String
const Num = Schema.Number
/** Devices write numbers as numbers or as strings. */
const NumLike = Schema.Union(Num, Schema.NumberFromString)
/** The same, where the device leaves a value it lacks empty or null (`"timelen":""` on an idle line): that reads as null. */
const NumOrEmpty = Schema.transformOrFail(Schema.Union(Num, Str, Schema.Null), Schema.NullOr(Num), {
  strict: true,
  decode: (v, _, ast) => {
    if (typeof v === "number" || v === null) return ParseResult.succeed(v)
    const t = v.trim()
    if (t === "") return ParseResult.succeed(null)
    const n = Number(t)
    return Number.isFinite(n) ? ParseResult.succeed(n) : ParseResult.fail(new ParseResult.Type(ast, v, `expected a number, got ${JSON.stringify(v)}`))
  },
  encode: (n) => ParseResult.succeed(n ?? "")
})

export const BOX_STATUS = {
  ok: 0,
  notRegistered: 3001,
  missingSatellite: 3002,
  noMessage: 3003
} as const
export const BOX_STATUS_TEXT: Record<number, string> = {
  0: "成功",
  3001: "设备未注册或未分配用户",
  3002: "MAC 参数不能少，参数名 satellite",
  3003: "没有可处理的消息"
}

export const CHANNEL_STATE_TEXT: Record<number, string> = {
  0: "未连接",
  1: "空闲/在线",
  2: "震铃中",
  3: "拨号中",
  4: "通话中",
  5: "超时"
}

export const Channel = Schema.Struct({
  ch: d("录音设备配置的 RJ11 口（1–64，一次上报内不重复）")(NumLike.pipe(Schema.filter((n) => (Number.isInteger(n) && n >= 1 && n <= 64) || "expected a channel from 1 to 64"))),
  state: d("0=未连接, 1=空闲/在线, 2=震铃中, 3=拨号中, 4=通话中, 5=超时")(NumLike.pipe(Schema.filter((n) => (Number.isInteger(n) && n >= 0 && n <= 5) || "expected a state from 0 to 5"))),
  phone: opt(d("拨打的电话号码")(Schema.NullOr(Schema.Union(Str, Num)))),
  timelen: opt(d("持续时间（在 state 为 2 的时候会记录到内存，坐席监控查询字段 calltime）")(NumOrEmpty)),
  peer: opt(d("通话方向 1=呼出 2=呼入")(NumOrEmpty)),
  serial: opt(d("设备序号")(Schema.NullOr(Schema.Union(Str, Num))))
})

export const DeviceStatus = Schema.Struct({
  diskUsagePercent: opt(d("磁盘空间使用率，5 表示已经用了 5%")(NumOrEmpty)),
  diskSize: opt(d("总空间")(NumOrEmpty)),
  diskSurplusSize: opt(d("剩余空间")(NumOrEmpty)),
  diskStatus: opt(d("磁盘的工作状态 0：正常 -1：没有找到磁盘 -2：挂载失败 -3:不能写 -4：未知错误")(NumOrEmpty)),
  ip: opt(d("设置的内网 IP 地址")(Schema.NullOr(Str))),
  // a channel named twice in one report has no one state: refused, not stored twice over
  channels: d("坐席状态")(
    Schema.Array(Channel).pipe(Schema.filter((cs) => new Set(cs.map((c) => c.ch)).size === cs.length || "expected each channel (ch) once"))
  )
})

/** `status`: the device's JSON (strict or relaxed) → DeviceStatus. */
const statusJson = Schema.transformOrFail(P.json, Schema.encodedSchema(DeviceStatus), {
  strict: true,
  decode: (j, _, ast) =>
    j.parsed && typeof j.value === "object" && j.value !== null
      ? ParseResult.succeed(j.value as typeof DeviceStatus.Encoded)
      : ParseResult.fail(new ParseResult.Type(ast, j.raw, "expected the device status JSON")),
  encode: (v) => ParseResult.succeed(P.parseEmbeddedJson(JSON.stringify(v)))
}).pipe(Schema.compose(DeviceStatus))

const satellite = d("设备编号（MAC 地址），必填")(P.textMax(64))

const cmd = <C extends string>(name: C, description: string) => d(`命令：${name} ${description}`)(P.text.pipe(Schema.compose(Schema.Literal(name))))
const channelId = d("通道 ID")(P.int)
const time = d("时间（Unix 毫秒）")(P.unixMs)

export const channelstatus = Schema.Struct({
  cmd: cmd("channelstatus", "通道状态上传"),
  id: opt(channelId),
  satellite,
  time: opt(time),
  status: d("设备与通道状态 JSON")(statusJson)
})

export const upload = Schema.Struct({
  cmd: cmd("upload", "通话录音文件上传（录音文件为 multipart 的 file 部分）"),
  satellite,
  channel: d("RJ11 口，单口设备默认从 1 开始")(P.intIn(1, 64)),
  start_time_secs: d("开始时间（UNIX 时间，秒）")(P.int),
  start_time_hangup: opt(d("挂断时间（UNIX 时间，秒）")(P.int)),
  direction: d("呼叫方向，in 呼入；out 呼出；unkown，未接")(P.text.pipe(Schema.compose(Schema.Literal("in", "out", "unkown", "unknown")))),
  callid_dialed: opt(d("电话号码")(P.textMax(64))),
  duration_secs: opt(d("接通时长（秒）")(P.intIn(0, 86_400 * 7))),
  id: opt(d("记录编号，在设备记录中存放编号")(P.idText)),
  recorded: opt(d("是否录音，1 有录音文件；0 无")(P.intOneOf(0, 1))),
  callid: d("通话记录 ID，各设备间不会重复（可超过 2^53，按文本保存）")(P.idText)
})

const pollFor = <C extends string>(name: C, description: string) =>
  Schema.Struct({ cmd: cmd(name, description), satellite, id: opt(channelId), time: opt(time) })

export const getMessageList = pollFor("getMessageList", "长链接消息列表（老版本盒子）")
export const getMessageList_1125 = pollFor("getMessageList_1125", "同 getMessageList")
export const getCallList = pollFor("getCallList", "获取服务器呼叫列表（摘机后每秒请求一次）")

/** Every command the box sends; any other `cmd` is answered with a plain status. */
export const boxCommands = {
  channelstatus,
  upload,
  getMessageList,
  getMessageList_1125,
  getCallList
} as const

export const StatusAnswer = Schema.Struct({
  time: d("UNIX 时间（毫秒）")(Str),
  status: d("0 为成功，3001 设备未注册或未分配用户，3002 缺少 satellite，3003 没有可处理的消息")(Num),
  message: opt(d("错误原因")(Str))
})
export const RecordingAnswer = Schema.Struct({ ...StatusAnswer.fields, callid: d("当前通话 ID")(Str) })
export const BoxMessage = Schema.Struct({
  status: d("0 拨号 1 接听 2 挂机 51 网页")(Str),
  mdcWan: d("RJ11 口")(Str),
  mdcCode: d("序列号")(Str),
  phone: d("电话号码")(Str),
  memo: opt(d("其它保留（网页消息的函数名与参数）")(Schema.Struct({ functionname: d("函数名")(Str), paramvalue: d("参数")(Str) })))
})
export const MessageListAnswer = Schema.Struct({
  data: d("消息列表")(Schema.Array(BoxMessage)),
  status: d("0 为成功 其他失败")(Num),
  time: opt(d("UNIX 时间（毫秒）")(Str))
})
