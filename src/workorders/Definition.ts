/**
 * A work-order type as an operator writes it — in the config file (`workorders.types`) and in the
 * admin API alike: its steps in order (the first is where a work order is created, one marked
 * `end` closes it), the people of each step by extension number (none: everyone of the
 * enterprise), when a step pushes to the type's `pushUrl` (§2.12.9), field labels and code trees.
 */
import { Schema } from "effect"

const Name = Schema.String.pipe(Schema.minLength(1), Schema.maxLength(100))
/** a field of the work order a definition may label or give codes: woOtherN, woMoney, woMoney2, or a field of the client's own (woLevel) */
const FieldName = Schema.String.pipe(Schema.pattern(/^wo[A-Za-z0-9]{1,40}$/, { message: () => "expected a work-order field name such as woOther3 or woLevel" }))
const HttpUrl = Schema.String.pipe(
  Schema.filter((u) => {
    try {
      const url = new URL(u)
      return url.protocol === "http:" || url.protocol === "https:" || `expected an http(s) URL, got ${JSON.stringify(u)}`
    } catch {
      return `expected an http(s) URL, got ${JSON.stringify(u)}`
    }
  })
)

export const StepDefinition = Schema.Struct({
  name: Name,
  end: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  /** extension numbers (e.g. 100008401); empty: every extension of the enterprise */
  people: Schema.optionalWith(Schema.Array(Schema.String.pipe(Schema.pattern(/^\d{4,20}$/, { message: () => "expected an extension number" }))), { default: () => [] }),
  /** §2.12.9: push the work order to the type's pushUrl when it is saved, submitted or returned at this step */
  push: Schema.optionalWith(
    Schema.Struct({
      save: Schema.optionalWith(Schema.Boolean, { default: () => false }),
      submit: Schema.optionalWith(Schema.Boolean, { default: () => false }),
      return: Schema.optionalWith(Schema.Boolean, { default: () => false })
    }),
    { default: () => ({ save: false, submit: false, return: false }) }
  )
})

export const CodeDefinition = Schema.Struct({
  code: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(50)),
  name: Name,
  /** the `code` of its parent in the same field's tree */
  parent: Schema.optional(Schema.String)
})

export const TypeDefinition = Schema.Struct({
  /** the enterprise (compNumber) the type belongs to */
  enterprise: Schema.String.pipe(Schema.pattern(/^\d{1,12}$/, { message: () => "expected an enterprise number (compNumber)" })),
  name: Name,
  pushUrl: Schema.optional(HttpUrl),
  steps: Schema.Array(StepDefinition).pipe(
    Schema.minItems(2, { message: () => "expected at least two steps (created, ended)" }),
    Schema.maxItems(20, { message: () => "expected at most 20 steps (woStep1..20)" }),
    Schema.filter((steps) => steps.filter((s) => s.end).length === 1 || "expected exactly one step marked end")
  ),
  fields: Schema.optionalWith(Schema.Record({ key: FieldName, value: Name }), { default: () => ({}) }),
  codes: Schema.optionalWith(Schema.Record({ key: FieldName, value: Schema.Array(CodeDefinition) }), { default: () => ({}) })
})
export type TypeDefinition = typeof TypeDefinition.Type

/** A definition as the admin API takes it: the enterprise is the path's. */
export const TypeBody = TypeDefinition.omit("enterprise")

/** A stored type, read back whole (the admin API's answer). */
export const TypeItem = Schema.Struct({
  wotId: Schema.String,
  name: Schema.String,
  pushUrl: Schema.NullOr(Schema.String),
  pushTarget: Schema.NullOr(Schema.String).annotations({ description: "the target its pushes are delivered through (deliveries, dead letters, redrive)" }),
  steps: Schema.Array(
    Schema.Struct({
      wosId: Schema.Number,
      wosIndex: Schema.Number,
      name: Schema.String,
      end: Schema.Boolean,
      people: Schema.Array(Schema.String),
      push: Schema.Struct({ save: Schema.Boolean, submit: Schema.Boolean, return: Schema.Boolean })
    })
  ),
  fields: Schema.Record({ key: Schema.String, value: Schema.String }),
  codes: Schema.Record({ key: Schema.String, value: Schema.Array(Schema.Struct({ codeId: Schema.Number, code: Schema.String, name: Schema.String, parent: Schema.NullOr(Schema.String) })) })
})
export type TypeItem = typeof TypeItem.Type

export const WorkOrdersConfig = Schema.Struct({
  /** the example type 售后工单 in the bootstrap enterprise, when it has no work-order type yet */
  seedExample: Schema.Boolean,
  /** largest attachment (above: -13) */
  attachmentMaxBytes: Schema.Int.pipe(Schema.positive({ message: () => "expected a positive integer" })),
  /** types written over the stored ones of the same enterprise and name at every start */
  types: Schema.Array(TypeDefinition)
})

/** The example a newcomer finds: 创建 → 处理 → 结案, everyone of the enterprise at every step. */
export const exampleType = (enterprise: string): typeof TypeDefinition.Encoded => ({
  enterprise,
  name: "售后工单",
  steps: [{ name: "创建" }, { name: "处理" }, { name: "结案", end: true }],
  fields: { woOther8: "咨询人姓名", woOther1: "咨询人居住地", woOther10: "咨询电话", woOther3: "咨询类型", woOther7: "咨询来源", woLevel: "紧急程度" },
  codes: {
    woLevel: [
      { code: "1", name: "普通" },
      { code: "2", name: "紧急" },
      { code: "3", name: "非常紧急" }
    ],
    woOther3: [
      { code: "A", name: "产品咨询" },
      { code: "B", name: "故障报修" },
      { code: "B1", name: "无法开机", parent: "B" },
      { code: "B2", name: "通话断线", parent: "B" },
      { code: "C", name: "投诉建议" }
    ]
  }
})
