/**
 * `/voip/api/jsondata.html`: authenticate, find the method, check permission, run it, and
 * wrap the answer in the contract's envelope. Every outcome is a coded answer; nothing here
 * knows any particular method.
 */
import { Cause, Effect } from "effect"
import { methodsByName } from "../../schemas/index.js"
import type { AnyMethodSpec } from "../../schemas/Method.js"
import { type RawParams, single } from "../../schemas/Param.js"
import { Auth } from "../auth/Auth.js"
import { Metrics } from "../http/Metrics.js"
import { type ApiError, codeOf, InvalidParam, MethodFailed, NoPermission, storageFailed } from "./Errors.js"
import { implementationOf } from "./methods.js"

export type Envelope = Readonly<Record<string, unknown>> & { readonly code: number; readonly message: string }

const failure = (e: ApiError, spec?: AnyMethodSpec): Envelope => ({
  code: codeOf(e),
  message: e.message,
  ...(spec?.success ? { success: false } : {})
})

/** `address` is the client's, for throttling password guesses. */
export const dispatch = (params: RawParams, address?: string) => {
  const name = single(params, "method")?.trim()
  const spec = name === undefined ? undefined : methodsByName.get(name)
  return Effect.gen(function* () {
    const auth = yield* Auth
    // credentials first: an unauthenticated caller learns nothing, not even which methods exist
    const caller = yield* auth.authenticate(params, address)
    if (name === undefined) return yield* new InvalidParam({ param: "method", problem: "is missing" })
    if (spec === undefined) {
      // method names are case-sensitive in the contract (saveCustomer, getcustomer): one that differs only in case is named
      const near = [...methodsByName.keys()].find((m) => m.toLowerCase() === name.toLowerCase())
      return yield* new MethodFailed({ message: `unknown method ${JSON.stringify(name)}${near ? `; did you mean ${near}?` : ""}` })
    }
    const impl = implementationOf(spec)
    if (spec.admin && !caller.isAdmin)
      return yield* new NoPermission({ message: `method ${spec.name} is for enterprise administrators only` })
    const result = yield* impl.run(params, caller)
    return { code: 0, message: "OK", ...(spec.success ? { success: true } : {}), ...result } as Envelope
  }).pipe(
    Effect.catchTag("SqlError", storageFailed),
    Effect.catchAll((e) => Effect.succeed(failure(e, spec))),
    Effect.catchAllDefect((defect) =>
      Effect.logError("method failed unexpectedly", Cause.die(defect)).pipe(
        Effect.as(failure(new MethodFailed({ message: "internal error in the method" }), spec))
      )
    ),
    Effect.tap((answer) =>
      Effect.map(Metrics, (m) => m.apiCalls.inc({ method: spec?.name ?? "(unknown)", code: String(answer.code) }))
    ),
    Effect.annotateLogs({ method: name ?? "" })
  )
}
