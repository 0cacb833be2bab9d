/**
 * Effect schemas as OpenAPI 3.1 JSON Schemas, and the pieces every operation shares (the
 * coded answer, the malformed-request responses, the security requirements). One converter
 * per document: named schemas land in its `components.schemas`.
 */
import { JSONSchema, Schema } from "effect"
import { descriptionOf, sentAsOf } from "../../schemas/Method.js"

export type Json = Record<string, unknown>
export type Struct = Schema.Schema.Any & { readonly fields: Schema.Struct.Fields }

export const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` })
export const responseRef = (name: string) => ({ $ref: `#/components/responses/${name}` })

/** `{code, message}`: every coded answer, success or failure */
export const CODED = ref("CodedAnswer")
/** what the bridge answers a request it cannot read (malformed body, over a limit) */
export const MALFORMED = { "4XX": responseRef("Malformed"), "5XX": responseRef("Malformed") }
/** sa_user + sa_password, or sessionId (jsondata's credentials) */
export const CREDENTIALS: ReadonlyArray<Json> = [{ saUser: [], saPassword: [] }, { sessionId: [] }]
/** a receiver's shared token, as a parameter or a header */
export const RECEIVER_TOKEN: ReadonlyArray<Json> = [{ receiverToken: [] }, { receiverTokenHeader: [] }]

/** Effect marks some schemas (unknown, {}) with an `$id`; repeated inline they would clash, and nothing refers to them. */
export const withoutIds = (value: unknown): unknown =>
  Array.isArray(value)
    ? value.map(withoutIds)
    : typeof value === "object" && value !== null
      ? Object.fromEntries(Object.entries(value).filter(([k]) => k !== "$id").map(([k, v]) => [k, withoutIds(v)]))
      : value

export const JSON_TEXT = { type: "string", contentMediaType: "application/json" }

export interface Converter {
  readonly definitions: Record<string, JSONSchema.JsonSchema7>
  readonly schemaOf: (schema: Schema.Schema.Any) => Json
  readonly structOf: (schema: Struct) => Json
  /** parameters as what they decode to (see below) */
  readonly typeOf: (struct: Struct) => Json
}

/** JSON Schemas of Effect schemas; named ones land in `definitions`, to be `components.schemas`. */
export const converter = (): Converter => {
  const definitions: Record<string, JSONSchema.JsonSchema7> = {}
  const schemaOf = (schema: Schema.Schema.Any) =>
    withoutIds(JSONSchema.fromAST(schema.ast, { definitions, definitionPath: "#/components/schemas/", target: "openApi3.1", additionalPropertiesStrategy: "allow" })) as Json
  const structOf = (schema: Struct): Json => {
    // an empty Struct means "any object" to Effect; for an answer with no extra fields say exactly that
    if (Object.keys(schema.fields).length === 0) return { type: "object", properties: {} }
    const clean = schemaOf(schema)
    const properties = (clean.properties ?? {}) as Record<string, Json>
    for (const [name, field] of Object.entries(schema.fields)) {
      const description = descriptionOf(field)
      const wire = sentAsOf(field)
      // a wire form that is a choice (`anyOf`) replaces the decoded shape: merged, both would have to hold
      const shape = wire && "anyOf" in wire ? wire : { ...properties[name], ...wire }
      if (properties[name] && (description || wire)) properties[name] = { ...shape, ...(description ? { description } : {}) }
    }
    return clean
  }
  /**
   * Parameters are documented as what they decode to (`1` for an integer, not "a string"),
   * except a JSON-valued one: it decodes to an object but is sent as JSON text (in a JSON
   * body it may also be the object itself).
   */
  const typeOf = (struct: Struct) => {
    const out = structOf(Object.assign(Schema.typeSchema(struct), { fields: struct.fields }))
    const properties = (out.properties ?? {}) as Record<string, Json>
    for (const [name, schema] of Object.entries(properties))
      if (schema.type === "object")
        properties[name] = { anyOf: [JSON_TEXT, { type: "object" }], ...(typeof schema.description === "string" ? { description: schema.description } : {}) }
    return out
  }
  return { definitions, schemaOf, structOf, typeOf }
}

/** A query string carries JSON only as text. */
export const queryParameters = (object: Json, description?: (name: string, schema: Json) => string | undefined) => {
  const required = new Set((object.required ?? []) as ReadonlyArray<string>)
  return Object.entries((object.properties ?? {}) as Record<string, Json>).map(([name, schema]) => {
    const text = description?.(name, schema) ?? (typeof schema.description === "string" ? schema.description : undefined)
    const inQuery = Array.isArray(schema.anyOf) && schema.anyOf.includes(JSON_TEXT) ? { ...JSON_TEXT, ...(text ? { description: text } : {}) } : schema
    return { name, in: "query", required: required.has(name), ...(text ? { description: text } : {}), schema: inQuery }
  })
}
