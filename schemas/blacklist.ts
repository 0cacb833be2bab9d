/** §2.2.6–2.2.8 — blacklist (黑名单). */
import { Schema } from "effect"
import { method } from "./Method.js"
import * as P from "./Param.js"

const d = P.doc
/** Most numbers one call may add or remove; above it the call answers -12. */
export const BLACKLIST_BATCH_MAX = 1000

const phones = d("电话号码，用逗号分隔（如 13002300000, 13002300001）")(P.commaList(P.item.phone))

export const addBlacklists = method({
  name: "addBlacklists",
  section: "2.2.6",
  title: "增加黑名单",
  admin: true,
  params: { phones },
  result: {
    added: d("新加入的号码数（已存在的不重复计）")(Schema.Number)
  }
})

export const delBlacklists = method({
  name: "delBlacklists",
  section: "2.2.7",
  title: "删除黑名单",
  admin: true,
  params: { phones },
  result: {
    removed: d("删除的号码数")(Schema.Number)
  }
})

export const getBlacklists = method({
  name: "getBlacklists",
  section: "2.2.8",
  title: "返回黑名单列表",
  params: {},
  result: {
    blaPhone: d("号码列表")(Schema.Array(Schema.String)),
    rows: d("号码与加入时间")(Schema.Array(Schema.Struct({ blaPhone: Schema.String, blaCreateTime: Schema.String }))),
    total: Schema.Number
  }
})
