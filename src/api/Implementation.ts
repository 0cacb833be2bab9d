/**
 * A contract method made real: its spec (from `schemas/`) and an Effect handler. `implement`
 * wraps the handler with decoding (-14 naming the parameter) and encoding of the answer, so
 * the dispatcher deals only in raw parameters and JSON fields.
 */
import type { SqlError } from "@effect/sql/SqlError"
import { Effect, ParseResult, Schema, SchemaAST } from "effect"
import type { AnyMethodSpec, ParamsOf, ResultOf } from "../../schemas/Method.js"
import { OverMaximumId, problemsOf, type RawParams } from "../../schemas/Param.js"
import type { Caller } from "../auth/Auth.js"
import type { AppServices } from "../AppServices.js"
import { type ApiError, InvalidParam, OverLimit } from "./Errors.js"

export interface Implementation {
  readonly spec: AnyMethodSpec
  readonly run: (
    params: RawParams,
    caller: Caller
  ) => Effect.Effect<Readonly<Record<string, unknown>>, ApiError | SqlError, AppServices>
}

/** Whether the issue failed a check marked as a maximum (OverMaximumId), at any depth. */
const overMaximum = (issue: ParseResult.ParseIssue): boolean => {
  switch (issue._tag) {
    case "Refinement":
      return (issue.kind === "Predicate" && issue.ast.annotations[SchemaAST.SchemaIdAnnotationId] === OverMaximumId) || overMaximum(issue.issue)
    case "Pointer":
    case "Transformation":
      return overMaximum(issue.issue)
    case "Composite":
      return (Array.isArray(issue.issues) ? issue.issues : [issue.issues]).some(overMaximum)
    default:
      return false
  }
}

/** The first problem of a failed decode, as the contract's -14 — or -12 when it asked for more than a maximum. */
export const toInvalidParam = (error: ParseResult.ParseError): InvalidParam | OverLimit => {
  const [issue] = problemsOf(error)
  const param = issue && issue.path !== "" ? issue.path : "(parameters)"
  const problem = issue?.message ?? "invalid value"
  return overMaximum(error.issue) ? new OverLimit({ message: `parameter ${param}: ${problem}` }) : new InvalidParam({ param, problem })
}

export const implement = <M extends AnyMethodSpec, R extends AppServices>(
  spec: M,
  handler: (params: ParamsOf<M>, caller: Caller) => Effect.Effect<ResultOf<M>, ApiError | SqlError, R>
): Implementation => {
  // Contract schemas never need services; the generic Fields type cannot show that, so say it once here.
  const params = spec.params as unknown as Schema.Schema<ParamsOf<M>, unknown>
  const result = spec.result as unknown as Schema.Schema<ResultOf<M>, Readonly<Record<string, unknown>>>
  const decode = Schema.decodeUnknown(params, { errors: "first", onExcessProperty: "ignore" })
  const encode = Schema.encode(result)
  return {
    spec,
    run: (params, caller) =>
      decode(params).pipe(
        Effect.mapError(toInvalidParam),
        Effect.flatMap((decoded) => handler(decoded, caller)),
        Effect.flatMap((answer) => Effect.orDie(encode(answer)))
      )
  }
}
