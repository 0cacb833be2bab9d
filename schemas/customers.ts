/** §2.1.9, §2.6.*, §2.7.3, §2.8.*, §2.9.* — customers (客户), sales (签单) and follow-up memos (跟踪记录). */
import { Schema } from "effect"
import { method } from "./Method.js"
import * as P from "./Param.js"

const d = P.doc
const opt = Schema.optional
const Str = Schema.String
const Num = Schema.Number
const Loose = Schema.Record({ key: Str, value: Schema.Unknown })

const customerFields = {
  custId: opt(d("客户 id（为空时为新增）")(P.id)),
  cpPhone: opt(d("电话号码（单个；多个用 cpPhone[0..n]）")(P.list(Schema.String))),
  custName: opt(d("联系人")(P.textMax(100))),
  custCorpName: opt(d("公司名")(P.textMax(200))),
  custStatus: opt(d("客户状态")(P.textMax(50))),
  custQQ: opt(d("客户 QQ")(P.textMax(50))),
  custAddr: opt(d("客户地址")(P.textMax(500))),
  custBirthdayType: opt(d("0.无 1.阳历 2.阴历")(P.intOneOf(0, 1, 2))),
  custBirthday: opt(d("格式 yyyy-mm-dd")(P.date)),
  custSource: opt(d("客户来源")(P.textMax(100))),
  custAge: opt(d("年龄")(P.intIn(0, 200))),
  custArea: opt(d("区域")(P.textMax(100))),
  custSex: opt(d("性别")(P.textMax(10))),
  custMemo: opt(d("客户备注")(P.textMax(4000))),
  custType: opt(d("客户类型")(P.textMax(50))),
  custOther1: opt(d("其它 1")(P.textMax(500))),
  custOther2: opt(d("其它 2")(P.textMax(500))),
  custOther3: opt(d("其它 3")(P.textMax(500))),
  recordCount_voip_customer_phone: opt(d("电话号码数量")(P.intIn(0, 100))),
  cpType: opt(d("“常用电话” 第一个电话默认类型为常用电话（cpType[0..n]）")(P.list(Schema.String))),
  cpLinkMan: opt(d("联系人（cpLinkMan[0..n]）")(P.list(Schema.String)))
}

export const saveCustomer = method({
  name: "saveCustomer",
  aliases: ["savecustomer"],
  section: "2.1.9 / 2.6.4",
  title: "客户资料保存",
  success: true,
  params: customerFields,
  result: { custId: d("客户 ID")(Num) }
})

export const Customer = Schema.Struct({
  custId: d("客户 ID")(Num),
  custName: d("联系人")(Str),
  custCorpName: d("公司名")(Str),
  custStatus: d("客户状态")(Str),
  custQQ: d("客户 QQ")(Str),
  custAddr: d("客户地址")(Str),
  custBirthdayType: d("0.无 1.阳历 2.阴历")(Num),
  custBirthday: d("格式 yyyy-mm-dd")(Str),
  custSource: d("客户来源")(Str),
  custAge: d("年龄")(Schema.NullOr(Num)),
  custArea: d("区域")(Str),
  custSex: d("性别")(Str),
  custMemo: d("客户备注")(Str),
  custType: d("客户类型")(Str),
  custOther1: d("其它 1")(Str),
  custOther2: d("其它 2")(Str),
  custOther3: d("其它 3")(Str),
  custIsLock: d("是否锁定（0.未锁定 1.已锁定）")(Num),
  custCreateTime: d("创建时间")(Str),
  custLastCallTime: d("最近通话时间")(Schema.NullOr(Str))
})
export const CustomerPhone = Schema.Struct({
  cp_custId: d("客户 ID")(Num),
  cpPhone: d("电话号码")(Str),
  cpType: d("类型（常用电话…）")(Str),
  cpLinkMan: d("联系人")(Str)
})

export const getCustomersPage = method({
  name: "getCustomersPage",
  section: "2.6.1",
  title: "获取客户列表",
  success: true,
  params: {
    custStatus: opt(d("客户状态（可选）")(P.textMax(50))),
    custType: opt(d("客户类型（可选）")(P.textMax(50))),
    findType: opt(d("查找类型（cpPhone、custCorpName、custName）")(P.text.pipe(Schema.compose(Schema.Literal("cpPhone", "custCorpName", "custName"))))),
    sortfield: opt(d("排序字段")(P.textMax(50))),
    custIsLock: opt(d("是否锁定（0.未锁定 1.已锁定）")(P.intOneOf(0, 1))),
    dateOpt: opt(d("1. 最近通话时间 2. 生日时间 3. 创建时间")(P.intOneOf(1, 2, 3))),
    startTime: opt(d("开始时间")(P.datetime)),
    endTime: opt(d("结束时间")(P.datetime)),
    sqlwhere: opt(d("查询值（与 findType 一起使用；不是 SQL）")(P.textMax(200))),
    start: opt(d("开始值")(P.intIn(0, Number.MAX_SAFE_INTEGER))),
    limit: opt(d("行数")(P.intIn(0, Number.MAX_SAFE_INTEGER)))
  },
  result: {
    recordTotal: d("总行数")(Num),
    rows_customer: d("客户基础资料")(Schema.Array(Customer)),
    rows_customerphone: d("客户电话号码列表")(Schema.Array(CustomerPhone))
  }
})

export const CustomerSale = Schema.Struct({
  csId: d("签单 ID")(Num),
  cs_custId: d("客户 ID")(Num),
  csExtension: d("坐席号")(Str),
  csCustType: d("客户类型")(Str),
  csStatus: d("0. 签单失败 1. 签单成功")(Num),
  csPhone: d("电话号码")(Str),
  csTime: d("签单时间")(Str)
})

export const getcustomer = method({
  name: "getcustomer",
  section: "2.6.2",
  title: "获取单个客户",
  success: true,
  params: { phoneNum: d("电话号码")(P.textMax(64)) },
  result: {
    customer: d("客户基础资料")(Schema.NullOr(Customer)),
    customerphone: d("客户电话号码列表")(Schema.Array(CustomerPhone)),
    customersales: d("客户签单记录")(Schema.Array(CustomerSale)),
    worktype: d("工单列表")(Schema.Array(Loose))
  }
})

export const getTableFields = method({
  name: "getTableFields",
  section: "2.6.3",
  title: "获取客户管理字段列表",
  success: true,
  params: { chinesename: opt(d("0.当前企业名称 1.系统字段名称")(P.intOneOf(0, 1))) },
  result: {
    rows: d("字段基础资料")(Schema.Array(
        Schema.Struct({
          fieldName: d("系统字段名")(Str),
          chineseName: d("显示名称（chinesename=0 时为当前企业的名称）")(Str),
          fieldType: d("字段类型")(Str)
        })
      ))
  }
})

export const delcustomer = method({
  name: "delcustomer",
  aliases: ["delcustomer.html"],
  section: "2.6.5",
  title: "客户资料删除",
  success: true,
  params: { custId: d("客户 id（只允许单个删除）")(P.id) },
  result: {}
})

export const getCodes = method({
  name: "getCodes",
  aliases: ["getCodes.html"],
  section: "2.6.6",
  title: "字段代码值",
  success: true,
  params: { codeType: d("Code 字段名")(P.textMax(100)) },
  result: {
    rows: d("列表结果集")(Schema.Array(
        Schema.Struct({
          codeId: d("ID")(Num),
          codeCode: d("CODE 码")(Str),
          codeName: d("名称")(Str),
          codeParentId: d("父 ID，与 ID 组成树")(Schema.NullOr(Num))
        })
      ))
  }
})

export const setCustomerLock = method({
  name: "setCustomerLock",
  section: "2.7.3",
  title: "锁定客户",
  success: true,
  params: {
    custId: d("客户 ID")(P.id),
    custIsLock: d("是否锁定 0. 未锁定 1.锁定")(P.intOneOf(0, 1))
  },
  result: {}
})

export const getCustomerSales = method({
  name: "getCustomerSales",
  section: "2.8.1",
  title: "获取签单列表",
  success: true,
  params: { phoneNum: d("电话号码")(P.textMax(64)) },
  result: { customersales: d("客户签单记录")(Schema.Array(CustomerSale)) }
})

export const setCustomerSales = method({
  name: "setCustomerSales",
  section: "2.8.2",
  title: "修改签单信息",
  success: true,
  params: {
    csId: opt(d("签单 ID（为空时为新增）")(P.id)),
    extension: opt(d("坐席号")(P.extension)),
    custId: opt(d("客户 ID")(P.id)),
    custType: opt(d("客户类型")(P.textMax(50))),
    status: d("0. 签单失败 1. 签单成功")(P.intOneOf(0, 1)),
    phone: opt(d("电话号码")(P.textMax(64)))
  },
  result: { csId: d("签单 ID（bridge 增加的字段）")(Num) }
})

export const Memo = Schema.Struct({
  cmmId: d("跟踪记录 ID")(Num),
  cmmExtension: d("坐席号")(Str),
  exteName: d("坐席名")(Str),
  cmmPhone: d("电话号码")(Str),
  cmmPhoneName: d("号码名称")(Str),
  cmmTime: d("时间")(Str),
  cmmMemo: d("内容")(Str)
})

export const getMemos = method({
  name: "getMemos",
  section: "2.9.1",
  title: "获取跟踪记录列表",
  success: true,
  params: {
    phoneNum: opt(d("电话号码")(P.textMax(64))),
    start: opt(d("开始值")(P.intIn(0, Number.MAX_SAFE_INTEGER))),
    limit: opt(d("行数")(P.intIn(0, Number.MAX_SAFE_INTEGER)))
  },
  result: {
    total: d("记录条数")(Num),
    rows: d("跟踪记录")(Schema.Array(Memo))
  }
})

export const addMemo = method({
  name: "addMemo",
  section: "2.9.2",
  title: "添加跟踪记录",
  success: true,
  params: {
    cdrMemo: d("备注内容")(P.textMax(4000)),
    cdrPhone: d("电话号码")(P.textMax(64)),
    nhtTime: opt(d("提醒时间 yyyy-mm-dd hh:nn:ss")(P.datetime)),
    nhtIsHint: opt(d("0. 不提示 1. 提示")(P.intOneOf(0, 1))),
    nhtPhone: opt(d("提示电话号码")(P.phone))
  },
  result: { cmmId: d("跟踪记录 ID（bridge 增加的字段）")(Num) }
})
