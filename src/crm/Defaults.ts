/**
 * What every enterprise starts with: the customer fields (§2.6.3) with their system names, and
 * the code lists (§2.6.6) of the fields whose values are codes. The configuration's `crm`
 * section replaces labels and whole lists, per enterprise or for all; the admin API edits them.
 */

export interface FieldDef {
  readonly fieldName: string
  /** the system's name for the field (getTableFields chinesename=1) */
  readonly systemName: string
  /** text, number, date, or code (its values are the codes of getCodes codeType=fieldName) */
  readonly fieldType: "text" | "number" | "date" | "code"
}

export const FIELDS: ReadonlyArray<FieldDef> = [
  { fieldName: "custName", systemName: "联系人", fieldType: "text" },
  { fieldName: "custCorpName", systemName: "公司名", fieldType: "text" },
  { fieldName: "custStatus", systemName: "客户状态", fieldType: "code" },
  { fieldName: "custQQ", systemName: "客户QQ", fieldType: "text" },
  { fieldName: "custAddr", systemName: "客户地址", fieldType: "text" },
  { fieldName: "custBirthdayType", systemName: "生日类型", fieldType: "number" },
  { fieldName: "custBirthday", systemName: "生日", fieldType: "date" },
  { fieldName: "custSource", systemName: "客户来源", fieldType: "code" },
  { fieldName: "custAge", systemName: "年龄", fieldType: "number" },
  { fieldName: "custArea", systemName: "区域", fieldType: "text" },
  { fieldName: "custSex", systemName: "性别", fieldType: "code" },
  { fieldName: "custMemo", systemName: "客户备注", fieldType: "text" },
  { fieldName: "custType", systemName: "客户类型", fieldType: "code" },
  { fieldName: "custOther1", systemName: "其它1", fieldType: "text" },
  { fieldName: "custOther2", systemName: "其它2", fieldType: "text" },
  { fieldName: "custOther3", systemName: "其它3", fieldType: "text" },
  { fieldName: "cpPhone", systemName: "电话号码", fieldType: "text" },
  { fieldName: "cpType", systemName: "电话类型", fieldType: "code" },
  { fieldName: "cpLinkMan", systemName: "联系人", fieldType: "text" }
]

export const FIELD_NAMES: ReadonlySet<string> = new Set(FIELDS.map((f) => f.fieldName))

/** A code of a list: `parent` is another code of the same list (the list is a tree). */
export interface CodeDef {
  readonly code: string
  readonly name: string
  readonly parent?: string | undefined
}

const list = (...names: ReadonlyArray<string>): ReadonlyArray<CodeDef> => names.map((name, i) => ({ code: String(i + 1), name }))

export const CODE_LISTS: Readonly<Record<string, ReadonlyArray<CodeDef>>> = {
  custStatus: list("潜在客户", "意向客户", "成交客户", "流失客户"),
  custType: list("个人客户", "企业客户", "VIP客户"),
  custSource: list("电话营销", "客户介绍", "网络推广", "展会", "其它"),
  custSex: list("男", "女", "未知"),
  // saveCustomer gives a customer's first phone the type 常用电话 by default (§2.6.4)
  cpType: list("常用电话", "手机", "办公电话", "家庭电话", "传真", "其它")
}

/** Limits of what the configuration and the admin API may set. */
export const LIMITS = { labelMax: 50, codeMax: 50, nameMax: 100, listMax: 200 } as const
export const CODE_TYPE = /^[A-Za-z][A-Za-z0-9_]{0,49}$/
