/**
 * The shape of one contract method: what it takes, what it answers, and how the platform
 * treats it. `schemas/` holds one of these for every method of the contract; handlers
 * under `src/` implement them, and `/openapi.json` is generated from them.
 */
import { Option, Schema, SchemaAST } from "effect"
import { SentAsId } from "./Param.js"

export interface MethodSpec<
  P extends Schema.Struct.Fields = Schema.Struct.Fields,
  R extends Schema.Struct.Fields = Schema.Struct.Fields
> {
  /** `method=` value */
  readonly name: string
  /** other accepted `method=` values (the contract's `.html` spellings) */
  readonly aliases: ReadonlyArray<string>
  /** section of the contract, e.g. "2.11.1" */
  readonly section: string
  /** the contract's own title (Chinese) */
  readonly title: string
  /** only an enterprise administrator (exteStatus 2) may call it; others get -5 */
  readonly admin: boolean
  /** the answer also carries `success: true|false` */
  readonly success: boolean
  readonly params: Schema.Struct<P>
  /** answer fields besides `code`, `message` (and `success`) */
  readonly result: Schema.Struct<R>
}

export const method = <P extends Schema.Struct.Fields, R extends Schema.Struct.Fields>(spec: {
  readonly name: string
  readonly aliases?: ReadonlyArray<string>
  readonly section: string
  readonly title: string
  readonly admin?: boolean
  readonly success?: boolean
  readonly params: P
  readonly result: R
}): MethodSpec<P, R> => ({
  name: spec.name,
  aliases: spec.aliases ?? [],
  section: spec.section,
  title: spec.title,
  admin: spec.admin ?? false,
  success: spec.success ?? false,
  params: Schema.Struct(spec.params),
  result: Schema.Struct(spec.result)
})

/** Any method spec, whatever its fields (Struct's own type parameters are invariant, hence the structural form). */
export interface AnyMethodSpec {
  readonly name: string
  readonly aliases: ReadonlyArray<string>
  readonly section: string
  readonly title: string
  readonly admin: boolean
  readonly success: boolean
  readonly params: Schema.Schema.Any & { readonly fields: Schema.Struct.Fields }
  readonly result: Schema.Schema.Any & { readonly fields: Schema.Struct.Fields }
}
export type ParamsOf<M extends AnyMethodSpec> = Schema.Schema.Type<M["params"]>
export type ResultOf<M extends AnyMethodSpec> = Schema.Schema.Type<M["result"]>

/**
 * The contract's description of a field, wherever its annotation sits: `Schema.optional(x)`
 * wraps x in a union with undefined, and a transformation's own node is lost by typeSchema.
 */
export const descriptionOf = (field: Schema.Struct.Field): string | undefined =>
  Option.getOrUndefined(SchemaAST.getDescriptionAnnotation(annotatedOf(field)))

/** How the field is sent, when its declaration says (`sentAs`): merged into its documented schema. */
export const sentAsOf = (field: Schema.Struct.Field): Readonly<Record<string, unknown>> | undefined =>
  annotatedOf(field).annotations[SentAsId] as Readonly<Record<string, unknown>> | undefined

const annotatedOf = (field: Schema.Struct.Field): SchemaAST.AST => {
  const ast = field.ast
  let annotated: SchemaAST.AST =
    ast._tag === "PropertySignatureDeclaration" ? ast.type : ast._tag === "PropertySignatureTransformation" ? ast.to.type : ast
  if (annotated._tag === "Union") {
    const defined = annotated.types.filter((t) => t._tag !== "UndefinedKeyword")
    if (defined.length === 1 && defined[0]) annotated = defined[0]
  }
  return annotated
}
