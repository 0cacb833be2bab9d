/** The `crm` section of the configuration, and the checks the admin API shares with it. */
import { Schema } from "effect"
import { CODE_TYPE, FIELD_NAMES, LIMITS } from "./Defaults.js"

const printable = (what: string, max: number) =>
  Schema.String.pipe(
    Schema.filter((s) => {
      if (s.trim() === "") return `expected a ${what}, got an empty text`
      if (s.length > max) return `expected a ${what} of at most ${max} characters, got ${s.length}`
      // control characters would end up in clients' menus and CSV exports
      return !/[\u0000-\u001f\u007f]/.test(s) || `expected a ${what} without control characters`
    })
  )

export const Label = printable("label", LIMITS.labelMax)
export const CodeText = printable("code", LIMITS.codeMax)
export const CodeName = printable("name", LIMITS.nameMax)

export const FieldName = Schema.String.pipe(
  Schema.filter((s) => FIELD_NAMES.has(s) || `expected one of the customer fields (${[...FIELD_NAMES].join(", ")}), got ${JSON.stringify(s.slice(0, 64))}`)
)
export const CodeType = Schema.String.pipe(Schema.filter((s) => CODE_TYPE.test(s) || `expected a code type such as custStatus (letters, digits, _; at most 50), got ${JSON.stringify(s.slice(0, 64))}`))

export const CodeItem = Schema.Struct({
  code: CodeText,
  name: CodeName,
  /** another code of the same list */
  parent: Schema.optional(CodeText)
})

/** A whole list: codes unique, parents named in the list, no code its own ancestor. */
export const CodeList = Schema.Array(CodeItem).pipe(
  Schema.filter((items) => {
    if (items.length > LIMITS.listMax) return `expected at most ${LIMITS.listMax} codes, got ${items.length}`
    const byCode = new Map(items.map((i) => [i.code, i]))
    if (byCode.size !== items.length) return `expected each code once, got ${JSON.stringify(items.find((i, n) => items.findIndex((j) => j.code === i.code) !== n)!.code)} twice`
    for (const item of items) {
      const seen = new Set<string>()
      for (let at: typeof item | undefined = item; at?.parent !== undefined; at = byCode.get(at.parent)) {
        if (!byCode.has(at.parent)) return `code ${JSON.stringify(at.code)}: its parent ${JSON.stringify(at.parent)} is not in the list`
        if (seen.has(at.code)) return `code ${JSON.stringify(item.code)}: its parents form a loop`
        seen.add(at.code)
      }
    }
    return true
  })
)

export const FieldLabels = Schema.Record({ key: FieldName, value: Label })
export const CodeLists = Schema.Record({ key: CodeType, value: CodeList })

export const CrmConfig = Schema.Struct({
  /** labels of customer fields (getTableFields chinesename=0), e.g. {"custOther1": "微信号"} */
  fields: FieldLabels,
  /** code lists replacing the built-in ones, or new ones, by code type */
  codes: CodeLists,
  /** the same per enterprise, over the above */
  enterprises: Schema.Record({
    key: Schema.String.pipe(Schema.pattern(/^\d{6}$/, { message: () => "expected a 6-digit enterprise number" })),
    value: Schema.Struct({ fields: Schema.optional(FieldLabels), codes: Schema.optional(CodeLists) })
  })
})
export type CrmConfigShape = typeof CrmConfig.Type
