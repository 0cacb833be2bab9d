/** §2.1.1, §2.1.2, §2.1.11, §2.1.12, §2.2.4, §2.11.1–2.11.5, §2.11.8 — extensions (坐席). */
import { Schema } from "effect"
import { method } from "./Method.js"
import * as P from "./Param.js"

const d = P.doc
const opt = Schema.optional

/** Fields of §2.11.1/§2.11.2 that describe an extension (all optional on edit). */
const extensionFields = {
  exteExtension: opt(d("后 4 位尾号座席号（400—899）")(P.intIn(400, 899))),
  exteName: opt(d("座席名称")(P.textMax(64))),
  extePassword: opt(d("座席密码（明文）")(P.textMax(64))),
  exte_deptId: opt(d("部门：关联部门 ID")(P.id)),
  exteMobile: opt(d("手机号")(P.mobile)),
  exteinMobileRule: opt(d("异常转手机（0.不转手机  1.转手机）")(P.intOneOf(0, 1))),
  exteStatus: opt(d("座席属性（0. 普通座席  1.禁用  2.企业管理员  9.非座席员工）")(P.intOneOf(0, 1, 2, 9))),
  exteIsRecord: opt(d("是否录音（0.不录音  1.录音）")(P.intOneOf(0, 1))),
  exteMemo: opt(d("备注")(P.textMax(500))),
  exteMemo2: opt(d("备注 2")(P.textMax(500))),
  exteMemo3: opt(d("备注 3")(P.textMax(500))),
  exteMemo4: opt(d("备注 4")(P.textMax(500))),
  exteMemo5: opt(d("备注 5")(P.textMax(500))),
  exteLoginName: opt(d("登录名")(P.textMax(64))),
  exteLoginType: opt(d("登录类型（0.软电话  1.USB 电话盒  2.APP 登录  4.SIP 话机）")(P.intOneOf(0, 1, 2, 4))),
  exte_transfer_shpId: opt(d("内部坐席互拨时的显示号")(P.id)),
  exteIsApp: opt(d("是否允许 APP 登录")(P.intOneOf(0, 1))),
  exte_shpId: opt(d("关联外显号码")(P.id))
}

export const getExtension = method({
  name: "getExtension",
  section: "2.1.1",
  title: "登录",
  params: {},
  result: {
    exteId: d("用户 ID")(Schema.Number),
    name: d("坐席名")(Schema.String),
    extension: d("坐席号")(Schema.String),
    compNumber: d("企业号")(Schema.String),
    compName: d("企业名称")(Schema.String),
    disablePhoneNum: d("0 显示号码，1 屏蔽号码")(Schema.Number),
    exteLoginType: d("客户端类型：0 sip，1 电话设备，2 手机 APP,4 数字话机")(Schema.Number),
    exteStatus: d("座席属性（0. 普通座席  1.禁用  2.企业管理员  9.非座席员工）")(Schema.Number),
    sessionId: d("工单接口 (§2.12) 使用的会话 ID，滑动过期（bridge 增加的字段）")(Schema.String)
  }
})

/** One row of getExtensions: every field §2.1.2 and §2.11.5 name, plus the rest of the extension. */
export const ExtensionRow = Schema.Struct({
  exteId: d("座席内部 ID")(Schema.Number),
  exteExtension: d("坐席号（完整号码：企业号 + 尾号）")(Schema.String),
  exteSuffix: d("后 3 位尾号（400—899）")(Schema.Number),
  exteName: d("座席名称")(Schema.String),
  exteMobile: d("手机号")(Schema.String),
  exteinMobileRule: d("异常转手机（0.不转手机  1.转手机）")(Schema.Number),
  exteStatus: d("座席属性（0. 普通座席  1.禁用  2.企业管理员  9.非座席员工）")(Schema.Number),
  statustext: d("座席状态文本（签入 / 签出 / 禁用）")(Schema.String),
  exteCheckIn: d("0 签入，1 签出（setUserCheckInOut）")(Schema.Number),
  exteShowPhone: d("外显号码（setShowPhone）")(Schema.String),
  exteIsRecord: d("是否录音")(Schema.Number),
  exteLoginName: d("登录名")(Schema.String),
  exteLoginType: d("登录类型")(Schema.Number),
  exteIsApp: d("是否允许 APP 登录")(Schema.Number),
  exte_deptId: d("部门 ID")(Schema.NullOr(Schema.Number)),
  exte_shpId: d("关联外显号码")(Schema.NullOr(Schema.Number)),
  exte_transfer_shpId: d("内部坐席互拨时的显示号")(Schema.NullOr(Schema.Number)),
  exteMemo: Schema.String,
  exteMemo2: Schema.String,
  exteMemo3: Schema.String,
  exteMemo4: Schema.String,
  exteMemo5: Schema.String
})

export const getExtensions = method({
  name: "getExtensions",
  section: "2.1.2 / 2.11.5",
  title: "获得当前企业坐席列表 / 座席查询",
  params: {},
  result: {
    extension: d("坐席列表（§2.1.2 的 extension Map）")(Schema.Array(ExtensionRow)),
    rows: d("同 extension（§2.11.5 的行）")(Schema.Array(ExtensionRow)),
    total: d("坐席数")(Schema.Number)
  }
})

export const addExtension = method({
  name: "addExtension",
  section: "2.11.1",
  title: "增加座席",
  admin: true,
  params: {
    ...extensionFields,
    exteExtension: d("后 3 位尾号座席号（400—899）")(P.intIn(400, 899))
  },
  result: {
    exteId: d("座席内部 ID")(Schema.Number),
    extension: d("坐席号（企业号 + 尾号）")(Schema.String),
    password: opt(d("未给 extePassword 时生成的密码（bridge 增加的字段）")(Schema.String))
  }
})

export const editExtension = method({
  name: "editExtension",
  section: "2.11.2",
  title: "修改座席",
  admin: true,
  params: { exteId: d("座席内部 ID")(P.id), ...extensionFields },
  result: {}
})

export const delExtension = method({
  name: "delExtension",
  section: "2.11.3",
  title: "删除座席",
  admin: true,
  params: { exteId: d("座席内部 ID")(P.id) },
  result: {}
})

export const initExtensionPassword = method({
  name: "initExtensionPassword",
  section: "2.11.4",
  title: "重置密码",
  admin: true,
  params: { exteId: d("座席内部 ID")(P.id) },
  result: { password: d("密码")(Schema.String) }
})

export const registerExtension = method({
  name: "registerExtension",
  section: "2.1.12",
  title: "申请帐号",
  admin: true,
  params: {},
  result: {
    extension: d("坐席号")(Schema.String),
    password: d("坐席密码")(Schema.String),
    exteId: d("座席内部 ID（bridge 增加的字段）")(Schema.Number)
  }
})

export const setExteMobile = method({
  name: "setExteMobile",
  section: "2.11.8",
  title: "修改座席手机号",
  params: { exteId: d("座席 ID")(P.id), phone: d("手机号")(P.mobile) },
  result: {}
})

export const setShowPhone = method({
  name: "setShowPhone",
  section: "2.2.4",
  title: "设置座席外显号码",
  params: {
    extension: opt(d("座席号（默认当前座席）")(P.extension)),
    phone: d("外显号")(P.phone)
  },
  result: {}
})

export const setUserCheckInOut = method({
  name: "setUserCheckInOut",
  section: "2.1.11",
  title: "签入签出",
  params: {
    exten: opt(d("分机号（默认当前座席）")(P.extension)),
    status: d("0. 签入 1. 签出")(P.intOneOf(0, 1))
  },
  result: {}
})
