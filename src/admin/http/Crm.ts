/** The admin API's CRM settings of an enterprise: field labels and code lists. */
import { HttpApiBuilder } from "@effect/platform"
import { Effect } from "effect"
import { addCode, allCodesOf, codesOf, type Edit, fieldsOf, removeCode, replaceList, resetList, setLabels } from "../../crm/Codes.js"
import { CODE_TYPE } from "../../crm/Defaults.js"
import { AdminApi, BadRequest, CodeBody, CodeListBody, Conflict, FieldsBody, NotFound } from "../Api.js"
import { decoder, enterprise, jsonBody, storage } from "./Shared.js"

const codeTypeOf = (text: string) =>
  CODE_TYPE.test(text) ? Effect.succeed(text) : Effect.fail(BadRequest.of(`codeType: expected a code type such as custStatus (letters, digits, _; at most 50), got ${JSON.stringify(text.slice(0, 64))}`))
/** An edit's outcome as the admin API's answers. */
const edited = <A>(edit: Edit<A>): Effect.Effect<A, NotFound | Conflict | BadRequest> =>
  "ok" in edit
    ? Effect.succeed(edit.ok)
    : "missing" in edit
      ? Effect.fail(NotFound.of(edit.missing))
      : "exists" in edit
        ? Effect.fail(new Conflict({ code: -10, message: edit.exists }))
        : Effect.fail(BadRequest.of(edit.refused))
const decodeFields = decoder(FieldsBody)
const decodeCodeList = decoder(CodeListBody)
const decodeCode = decoder(CodeBody)

export const CrmLive = HttpApiBuilder.group(AdminApi, "crm", (handlers) =>
  handlers
    .handle("fields", ({ path }) =>
      Effect.gen(function* () {
        const items = yield* storage(fieldsOf(yield* enterprise(path.comp)))
        return { code: 0, message: "OK", items } as const
      })
    )
    .handleRaw("setFields", ({ path, request }) =>
      Effect.gen(function* () {
        const comp = yield* enterprise(path.comp)
        const { labels } = yield* decodeFields(yield* jsonBody(request))
        const items = yield* storage(setLabels(comp, labels))
        return { code: 0, message: "OK", items } as const
      })
    )
    .handle("lists", ({ path }) =>
      Effect.gen(function* () {
        const items = yield* storage(allCodesOf(yield* enterprise(path.comp)))
        return { code: 0, message: "OK", items } as const
      })
    )
    .handle("codes", ({ path }) =>
      Effect.gen(function* () {
        const comp = yield* enterprise(path.comp)
        const type = yield* codeTypeOf(path.codeType)
        return { code: 0, message: "OK", codeType: type, items: yield* storage(codesOf(comp, type)) } as const
      })
    )
    .handleRaw("replaceCodes", ({ path, request }) =>
      Effect.gen(function* () {
        const comp = yield* enterprise(path.comp)
        const type = yield* codeTypeOf(path.codeType)
        const { items } = yield* decodeCodeList(yield* jsonBody(request))
        return { code: 0, message: "OK", codeType: type, items: yield* storage(replaceList(comp, type, items)) } as const
      })
    )
    .handleRaw("addCode", ({ path, request }) =>
      Effect.gen(function* () {
        const comp = yield* enterprise(path.comp)
        const type = yield* codeTypeOf(path.codeType)
        const body = yield* decodeCode(yield* jsonBody(request))
        const item = yield* Effect.flatMap(storage(addCode(comp, type, body)), edited)
        return { code: 0, message: "OK", item } as const
      })
    )
    .handle("removeCode", ({ path }) =>
      Effect.gen(function* () {
        const comp = yield* enterprise(path.comp)
        const type = yield* codeTypeOf(path.codeType)
        const id = /^\d{1,16}$/.test(path.codeId) ? Number(path.codeId) : undefined
        if (id === undefined) return yield* Effect.fail(BadRequest.of(`codeId: expected a codeId of the list, got ${JSON.stringify(path.codeId.slice(0, 64))}`))
        const removed = yield* storage(removeCode(comp, type, id))
        if ("missing" in removed) return yield* Effect.fail(NotFound.of(removed.missing))
        if ("refused" in removed) return yield* Effect.fail(BadRequest.of(removed.refused))
        return { code: 0, message: "OK" } as const
      })
    )
    .handle("resetCodes", ({ path }) =>
      Effect.gen(function* () {
        const comp = yield* enterprise(path.comp)
        const type = yield* codeTypeOf(path.codeType)
        return { code: 0, message: "OK", codeType: type, items: yield* storage(resetList(comp, type)) } as const
      })
    )
)
