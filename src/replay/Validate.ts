/**
 * `--validate`: every answer checked against the contract's own schemas — the ones the bridge
 * serves from (schemas/*.ts): the jsondata method table, the box's answers, the upload's and
 * the receivers'. Unknown fields, missing ones, wrong types and codes outside the table are
 * reported with the method and the field. It reads only the answer, so it works against any
 * server, the real platform included.
 */
import { Either, Schema } from "effect"
import * as BoxSchema from "../../schemas/box.js"
import { methodsByName } from "../../schemas/index.js"
import { problemsOf } from "../../schemas/Param.js"
import { uploadRecordFile } from "../../schemas/upload.js"
import { parseJson } from "./Diff.js"
import type { Answer } from "./Input.js"

export interface Problem {
  /** what the answer is of: `getCustomersPage`, `box cmd=upload`, … */
  readonly what: string
  /** the field, `(body)` for the whole answer */
  readonly field: string
  readonly message: string
}

/** §3 and §2.1.10: every code an answer may carry */
export const CODES: ReadonlySet<number> = new Set([0, -1, -2, -3, -5, -6, -10, -11, -12, -13, -14])
export const BOX_STATUSES: ReadonlySet<number> = new Set([0, 3001, 3002, 3003, -3, -6, -14])

const Coded = Schema.Struct({ code: Schema.Number, message: Schema.String })
const CodedWithSuccess = Schema.Struct({ code: Schema.Number, message: Schema.String, success: Schema.Boolean })

const check = (what: string, schema: Schema.Schema.Any, value: unknown): Array<Problem> => {
  const result = Schema.decodeUnknownEither(schema as Schema.Schema<unknown, unknown>, { errors: "all", onExcessProperty: "error" })(value)
  return Either.isRight(result) ? [] : problemsOf(result.left).map((p) => ({ what, field: p.path || "(body)", message: p.message }))
}

const codeProblem = (what: string, code: unknown, table: ReadonlySet<number>, field: string): Array<Problem> =>
  typeof code === "number" && !table.has(code) ? [{ what, field, message: `${code} is not a code of the contract's table (${[...table].join(", ")})` }] : []

export interface Surface {
  readonly path: string
  readonly params: ReadonlyMap<string, string>
  /** the receivers' paths of the server under test */
  readonly receivers: ReadonlyArray<string>
}

/** What the answer is of, for the report; undefined when the contract has no schema for it (admin API, health, files). */
export const surfaceName = (s: Surface): string | undefined => {
  if (s.path.endsWith("/jsondata.html")) return s.params.get("method") ?? "jsondata (no method)"
  if (s.path === "/voip/upload_record" || s.path === "/upload_record") return `box cmd=${s.params.get("cmd") ?? ""}`
  if (s.path.endsWith("/upload_record_file.html")) return "upload_record_file.html"
  if (s.receivers.includes(s.path)) return `push ${s.path}`
  return undefined
}

export const validateAnswer = (s: Surface, answer: Answer): Array<Problem> => {
  const what = surfaceName(s)
  if (what === undefined) return []
  const parsed = parseJson(answer.body)
  if (!parsed.ok) return [{ what, field: "(body)", message: `expected a JSON answer (HTTP ${answer.status})` }]
  const body = parsed.value
  if (typeof body !== "object" || body === null || Array.isArray(body)) return [{ what, field: "(body)", message: "expected a JSON object" }]
  const record = body as Record<string, unknown>

  if (what.startsWith("box ")) {
    const cmd = s.params.get("cmd") ?? ""
    const problems = codeProblem(what, record.status, BOX_STATUSES, "status")
    const shape =
      record.status === 0 && cmd === "upload"
        ? BoxSchema.RecordingAnswer
        : record.status === 0 && /^(getCallList|getMessageList)/.test(cmd)
          ? Schema.Struct({ ...BoxSchema.StatusAnswer.fields, data: BoxSchema.MessageListAnswer.fields.data })
          : BoxSchema.StatusAnswer
    return [...problems, ...check(what, shape, record)]
  }

  const problems = codeProblem(what, record.code, CODES, "code")
  if (what.startsWith("push ")) return [...problems, ...check(what, Coded, record)]
  if (what === "upload_record_file.html")
    return [...problems, ...check(what, record.code === 0 ? Schema.Struct({ ...Coded.fields, ...uploadRecordFile.result.fields }) : Coded, record)]

  const spec = methodsByName.get(what)
  if (spec === undefined) return [...problems, ...(record.code === 0 ? [{ what, field: "method", message: "not a method of the contract, yet answered code 0" }] : [])]
  const envelope = spec.success ? CodedWithSuccess : Coded
  // an error answer is the envelope alone; a success carries the method's fields
  const schema = record.code === 0 ? Schema.Struct({ ...envelope.fields, ...spec.result.fields }) : spec.success ? Schema.Struct({ ...Coded.fields, success: Schema.optional(Schema.Boolean) }) : Coded
  return [...problems, ...check(spec.name, schema, record)]
}
