/**
 * §2.12.1–2.12.8 — the work-order endpoints, `/voip/workordermanager/<Name>.json` (also
 * `/voip/workordermanagernew/…`, as the contract's own link has it) and the attachment upload
 * `/voip/manage/workorderattachment/upload.json`. Authenticated by `sessionId` (from
 * getExtension) or sa_user/sa_password, which the HTTP layer reads: not declared here.
 */
import { Schema } from "effect"
import { method } from "./Method.js"
import * as P from "./Param.js"

const d = P.doc
const opt = Schema.optional
const Str = Schema.String
const Num = Schema.Number

const wotId = d("工单类型 ID")(P.idText)

export const GetDeptPersonTree = method({
  name: "GetDeptPersonTree",
  section: "2.12.1",
  title: "获取工单步骤人员",
  params: { wotId, wosIndex: opt(d("步骤索引")(P.int)) },
  result: {
    rows: d("在列表中取有人员 ID 的，没有的是部门列表")(
      Schema.Array(
        Schema.Struct({
          exteId: d("人员 ID（部门行为 null）")(Schema.NullOr(Num)),
          exteExtension: d("人员登录 ID")(Schema.NullOr(Str)),
          exteName: d("人员名称（部门行为部门名）")(Str),
          deptId: d("部门 ID（bridge 增加的字段）")(Schema.NullOr(Num))
        })
      )
    )
  }
})

export const GetWorkOrderType = method({
  name: "GetWorkOrderType",
  section: "2.12.2",
  title: "获取工单类型",
  params: {},
  result: { rows: d("工单类型列表")(Schema.Array(Schema.Struct({ wotId: d("工单类型 ID")(Str), wotName: d("工单类型名称")(Str) }))) }
})

export const loadWorkCode = method({
  name: "loadWorkCode",
  section: "2.12.3",
  title: "服务器类型数据",
  params: {
    wotId: opt(wotId),
    fieldname: d("需要取服务器列表的字段 + “_” + 工单 ID，如 woLevel_282983707131016")(P.textMax(200)),
    codeId: opt(d("父 ID")(P.int)),
    oper: opt(d("操作")(P.int))
  },
  result: {
    parentdata: d("服务器列表数据")(Schema.Array(
      Schema.Struct({ codeCode: d("CODE 码")(Str), codeName: d("名称")(Str), codeId: d("ID")(Num), codeParentId: d("父 ID，与 ID 组成树")(Schema.NullOr(Num)) })
    ))
  }
})

/** A work order as GetWorkList answers it: the fields the contract names, and whatever else its type defines. */
export const WorkOrderRow = Schema.Struct(
  {
    woId: d("工单 ID")(Str),
    wo_wotId: d("工单类型 ID")(Str),
    woCode: d("工单号")(Str),
    woStepId: d("步骤索引")(Num),
    woQuestion: d("咨询内容")(Str),
    woCreate_exteId: d("创建人 ID")(Schema.NullOr(Num)),
    woCreate_exteName: d("创建人")(Str),
    woCreateTime: d("工单创建时间")(Str),
    ...P.numbered("woOther", 50, "", (n) => opt(d(`自定义字段 ${n}`)(Str))),
    ...P.numbered("woStep", 20, "Time", (n) => opt(d(`第 ${n} 步 处理时间`)(Schema.NullOr(Str)))),
    ...P.numbered("woStep", 20, "Status", (n) => opt(d(`第 ${n} 步 答复满意情况`)(Str))),
    ...P.numbered("woStep", 20, "Answer", (n) => opt(d(`第 ${n} 步 答复情况`)(Str))),
    ...P.numbered("woStep", 20, "_exteId", (n) => opt(d(`第 ${n} 步 处理人 ID`)(Schema.NullOr(Num)))),
    ...P.numbered("woStep", 20, "_exteName", (n) => opt(d(`第 ${n} 步 处理人名称`)(Str)))
  },
  Schema.Record({ key: Str, value: Schema.Unknown })
)

export const GetWorkList = method({
  name: "GetWorkList",
  section: "2.12.4",
  title: "获取现有工单",
  params: {
    wotId,
    workOrderType: opt(d("工单状态类型（-1 全部）")(P.int)),
    startTime: d("开始时间")(P.datetime),
    endTime: d("结束时间")(P.datetime),
    stepindex: opt(d("查询步骤")(P.int)),
    woOther10: opt(d("手机号")(P.textMax(64))),
    smemo: opt(d("工单号等要查询的内容")(P.textMax(200))),
    page: opt(d("页数")(P.intIn(1, Number.MAX_SAFE_INTEGER))),
    rows: opt(d("行数")(P.intIn(1, Number.MAX_SAFE_INTEGER)))
  },
  result: { total: d("总条数")(Num), rows: d("工单（其它字段意义参见工单定义）")(Schema.Array(WorkOrderRow)) }
})

const woOtherFields = P.numbered("woOther", 50, "", (n) => opt(d(`自定义字段 ${n}（意义参见工单定义）`)(P.textMax(4000))))

/** Step N's fields as UpdateWorkOrder takes them (the contract shows step 2; any step 1–20 may be given). */
const stepFields = {
  ...P.numbered("woStep", 20, "Time", (n) => opt(d(`第 ${n} 步 处理时间`)(P.datetime))),
  ...P.numbered("woStep", 20, "Status", (n) => opt(d(`第 ${n} 步 答复满意情况（状态）`)(P.textMax(200)))),
  ...P.numbered("woStep", 20, "Answer", (n) => opt(d(`第 ${n} 步 答复情况`)(P.textMax(4000)))),
  ...P.numbered("woStep", 20, "_exteId", (n) => opt(d(`第 ${n} 步 处理人 ID`)(P.id))),
  ...P.numbered("woStep", 20, "_exteName", (n) => opt(d(`第 ${n} 步 处理人名称`)(P.textMax(64))))
}

export const UpdateWorkOrder = method({
  name: "UpdateWorkOrder",
  section: "2.12.5",
  title: "数据更新（woId 不为 0 表示更新，0 或空表示新增）",
  params: {
    woId: opt(d("工单 ID（0 或空为新增）")(P.idText)),
    // the contract's table names wo_wotId, its own link sends wotId: either is taken, one is needed
    wo_wotId: opt(d("工单类型 ID（与 wotId 二选一）")(P.idText)),
    wotId: opt(d("工单类型 ID（合同链接中的写法，与 wo_wotId 二选一）")(P.idText)),
    custName: opt(d("客户名称")(P.textMax(200))),
    cpPhone: opt(d("客户电话")(P.textMax(64))),
    woQuestion: opt(d("咨询内容")(P.textMax(4000))),
    woStepId: opt(d("步骤索引")(P.int)),
    woCode: opt(d("工单号")(P.textMax(100))),
    woCreate_exteId: opt(d("创建人 ID")(P.id)),
    woCreate_exteName: opt(d("创建人")(P.textMax(64))),
    next_exteId: opt(d("下一步处理人")(P.id)),
    ispost: opt(d("是否要提醒（1：本次操作推送到工单类型的推送地址，即使该步骤未设置推送）")(P.intOneOf(0, 1))),
    woMoney: opt(d("自定义金额")(P.decimal)),
    woMoney2: opt(d("自定义金额 2")(P.decimal)),
    ...woOtherFields,
    ...stepFields
  },
  result: { woId: d("返回的工单 ID")(Str) }
})

export const GetWorkOrderStep = method({
  name: "GetWorkOrderStep",
  section: "2.12.6",
  title: "查询工单步骤",
  params: { wotId },
  result: {
    rows: d("工单步骤")(Schema.Array(Schema.Struct({ wosId: d("步骤 ID")(Num), wosName: d("步骤名称")(Str), wosIndex: d("步骤索引")(Num), wosIsEnd: d("0 未结束，1 结束")(Num) })))
  }
})

export const upload = method({
  name: "upload",
  section: "2.12.7",
  title: "工单文件上传（file 为 multipart 文件）",
  params: { woId: d("工单 ID")(P.idText) },
  result: {
    waName: opt(d("原文件名（bridge 增加的字段）")(Str)),
    waPath: opt(d("下载路径，凭同样的认证下载（bridge 增加的字段）")(Str))
  }
})

export const GetWorkInfoFile = method({
  name: "GetWorkInfoFile",
  section: "2.12.8",
  title: "工单文件列表",
  params: { woId: d("工单 ID")(P.idText) },
  result: { rows: d("工单附件")(Schema.Array(Schema.Struct({ waName: d("名称")(Str), waPath: d("路径")(Str) }))) }
})

export const workOrderEndpoints = [GetDeptPersonTree, GetWorkOrderType, loadWorkCode, GetWorkList, UpdateWorkOrder, GetWorkOrderStep, upload, GetWorkInfoFile] as const
