/** §2.1.8, §2.7.2, §2.10.1–2.10.3 — outbound call tasks (外呼任务) and call flows (流程). */
import { ParseResult, Schema } from "effect"
import { method } from "./Method.js"
import * as P from "./Param.js"

const d = P.doc
const opt = Schema.optional
const Str = Schema.String
const Num = Schema.Number

export const getTaskDetailPhone = method({
  name: "getTaskDetailPhone",
  section: "2.1.8 / 2.7.2",
  title: "获取任务明细号码（呼叫下一个）",
  success: true,
  params: {},
  result: {
    phone: d("电话号码")(Str),
    cflId: d("流程 ID")(Schema.NullOr(Num)),
    ctdId: d("任务明细 ID")(Num)
  }
})

export const findCallFlow = method({
  name: "findCallFlow",
  section: "2.10.1",
  title: "查找任务流程信息",
  params: { ctdId: opt(d("任务 ID，不填表示所有流程")(P.id)) },
  result: {
    callflow: d("流程列表")(
      Schema.Array(
        Schema.Struct({
          cflId: d("流程 ID")(Num),
          cflName: d("流程名称")(Str),
          ctkName: d("任务名称")(Str),
          compGroupCallTimes: d("播号时长")(Num),
          cflsend_wfPath: d("语音文件路径，完整路径 http://ip:port/voip/sound/{wfPath}")(Str),
          cflTransferMode: d("转接方式 1–5")(Num),
          cflTransferTimes: d("播放时长（秒）")(Num),
          cflIsRecord: d("录音状态 0 不录音 1 转接座席录音 2 接通后录音")(Num),
          cflSendInterval: d("发送间隔（秒）")(Num),
          cflSmsStatus: d("短信发送状态 0–4")(Num),
          cflSmsTims: d("接通后多长时间发送（秒）")(Num),
          cflSmsContent: d("发送短信内容")(Str)
        })
      )
    )
  }
})

/** Relaxed JSON lets a sender write `phone:13123456789` or `key:123`: numbers are taken as their text. */
const TextOrNumber = Schema.transform(Schema.Union(Str, Num), Str, { strict: true, decode: String, encode: (s) => s })

const woOthers = P.numbered("woOther", 50, "", (n) => opt(d(`对应工单字段 woOther${n}`)(TextOrNumber)))

/** One number of a task (the `data` array of §2.10.2). */
export const TaskItem = Schema.Struct({
  phone: d("任务电话号码")(TextOrNumber.pipe(Schema.compose(P.item.phone))),
  key: opt(d("自定义键值（弹屏将参数加在 url 上），回调时返回到 paramvalue")(TextOrNumber)),
  memo: opt(d("文字转语音（注意不要具有#号）")(Str.pipe(Schema.filter((m) => !m.includes("#") || "must not contain #")))),
  ...woOthers
})

/** `data`: a JSON array (strict or relaxed) of task items, at least one. */
const taskData = Schema.transformOrFail(P.json, Schema.Array(TaskItem).pipe(Schema.minItems(1)), {
  strict: true,
  decode: (j, _, ast) =>
    j.parsed && Array.isArray(j.value)
      ? ParseResult.succeed(j.value)
      : ParseResult.fail(new ParseResult.Type(ast, j.raw, "expected a JSON array of task items such as [{\"phone\":\"13123456789\"}]")),
  encode: (items) => ParseResult.succeed(P.parseEmbeddedJson(JSON.stringify(items)))
})

export const addTask = method({
  name: "addTask",
  section: "2.10.2",
  title: "新建外呼任务",
  params: {
    // sent as JSON text (a form field), or as the array itself in a JSON body
    data: d("任务 json：[{phone, key?, memo?, woOther1..50?}]")(
      taskData.pipe(P.sentAs({ anyOf: [{ type: "string", contentMediaType: "application/json" }, { type: "array", items: { type: "object" } }] }))
    ),
    addType: d("1 自动拨号, 2 手工拨号, 3 工单自动拨号, 4 工单手工拨号")(P.intIn(1, 4)),
    name: d("任务名称")(P.textMax(100)),
    cflName: opt(d("流程名（自动拨号必填）")(P.textMax(100))),
    sendTime: opt(d("发送时间，默认为当前时间")(P.datetime)),
    repeatSend: opt(d("重复呼叫，默认否(1 是,0 否)")(P.intOneOf(0, 1))),
    sendInterval: opt(d("等待时长，默认 0")(P.intIn(0, 86_400))),
    allotExte: opt(d("分配坐席号，默认为当前账号（多个用逗号分隔）")(P.commaList(P.item.extension))),
    attriExte: opt(d("任务所属坐席，默认为当前账号")(P.extension)),
    wotName: opt(d("关联工单名称（工单任务必填）")(P.textMax(100)))
  },
  result: { id: d("建立任务的 ID 值")(Num) }
})

/** One number of a task as findTaskMx answers it (the contract's JSON example, with its notes). */
export const TaskDetail = Schema.Struct({
  ctdId: d("任务明细 ID")(Str),
  ctd_ctkId: d("任务 ID")(Str),
  ctkName: d("任务名称")(Str),
  ctdPhone: d("电话号码")(Str),
  ctdPhoneName: d("号码名称")(Str),
  ctdStatus: d("状态（0.未呼叫 1.呼叫中 2.暂停 3.未接听 4.已接听 5.已转接）")(Num),
  ctdKey: d("自定义键值")(Str),
  ctdText: d("文字转语音内容")(Str),
  ctdType: d("返回类型")(Str),
  ctdExtension: d("转接人")(Str),
  exteName: d("转接坐席名")(Str),
  ctdCallTime: d("呼叫时间")(Str),
  ctdBeginTime: d("拔号时长（开始呼叫时间）")(Str),
  ctdSuccessTime: d("接通时间")(Str),
  ctdEndTime: d("结束时间")(Str),
  ctdTimes: d("通话时长")(Str),
  ctdCallTalktimes: d("时长")(Str),
  ctdTransferPhone: d("转接号码")(Str),
  ctdTransferSuccessTime: d("转接接通时间")(Str),
  ctdTransferEndTime: d("转接结束时间")(Str),
  ctdTransferTimes: d("转接时长")(Str),
  ctdSmsSendStatus: d("短信发送状态")(Num),
  ctdResultCode: d("结果代码")(Num),
  ctdResultValue: d("结果值")(Num),
  ctdResultJson: d("对话文件")(Str),
  ctd_ResultText: d("对话内容")(Str),
  ctd_word: d("关键词")(Str),
  ctd_all_word: d("关键字")(Str),
  ctd_wordSum: d("关键词数")(Num),
  ctd_timeArea: d("时间段")(Str),
  ctdWavFile: d("语音文件路径")(Str),
  ctdWavPaths: d("语音文件路径列表")(Str),
  ctdSipRound: d("经过外线（呼叫过程）")(Str),
  ctdReNum: d("重呼次数")(Num),
  ctdWheelSum: d("轮次")(Num),
  cnrReasonType: d("原因类型")(Str)
})

export const findTaskMx = method({
  name: "findTaskMx",
  section: "2.10.3",
  title: "查询任务明细",
  params: {
    cflId: opt(d("流程 ID")(P.id)),
    type: opt(d("0 全部，1 未开始，2 已完成")(P.intOneOf(0, 1, 2))),
    ctkId: opt(d("任务 ID（新建时返回）")(P.id)),
    ctkName: opt(d("任务名称模糊查询")(P.textMax(100))),
    startTime: opt(d("startTime<=创建时间<=endTime")(P.datetime)),
    endTime: opt(d("结束时间")(P.datetime)),
    start: opt(d("分页开始，默认 0")(P.intIn(0, Number.MAX_SAFE_INTEGER))),
    limit: opt(d("分页每页显示条数，默认 25")(P.intIn(0, Number.MAX_SAFE_INTEGER)))
  },
  result: {
    data: d("任务明细")(Schema.Array(TaskDetail)),
    count: d("总条数")(Num),
    groupData: d("任务相关统计")(Schema.Array(Schema.Struct({ ctkId: d("任务 ID")(Num), ctdStatus: d("状态")(Num), num: d("数量")(Num) })))
  }
})
