/** The admin API's call flows of an enterprise, and their sound files. */
import { HttpApiBuilder } from "@effect/platform"
import { Effect, Schema } from "effect"
import { FlowBody, FlowPatch, SoundBody, SoundName } from "../../flows/FlowSchema.js"
import { FlowsStore, type Refused as FlowRefused } from "../../flows/FlowsStore.js"
import { AdminApi, BadRequest, Conflict, Internal, NotFound } from "../Api.js"
import { decoder, enterprise, jsonBody, storage } from "./Shared.js"

const decodeFlow = decoder(FlowBody)
const decodeFlowPatch = decoder(FlowPatch)
const decodeSound = decoder(SoundBody)
const isSoundName = (text: string): boolean => Schema.is(SoundName)(text)
const soundNameOf = (text: string) =>
  isSoundName(text) ? Effect.succeed(text) : Effect.fail(BadRequest.of(`name: expected a sound file name such as welcome.wav (.wav, .mp3 or .gsm), got ${JSON.stringify(text.slice(0, 64))}`))
const flowOutcome = <A>(outcome: A | "exists" | FlowRefused | undefined, what: string): Effect.Effect<A, NotFound | Conflict | BadRequest> =>
  outcome === undefined
    ? Effect.fail(NotFound.of(what))
    : outcome === "exists"
      ? Effect.fail(new Conflict({ code: -10, message: `${what} exists already` }))
      : typeof outcome === "object" && outcome !== null && "refused" in outcome
        ? Effect.fail(BadRequest.of((outcome as FlowRefused).refused))
        : Effect.succeed(outcome as A)

export const FlowsLive = HttpApiBuilder.group(AdminApi, "flows", (handlers) =>
  handlers
    .handle("list", ({ path }) =>
      Effect.gen(function* () {
        const comp = yield* enterprise(path.comp)
        return { items: yield* storage((yield* FlowsStore).list(comp)) }
      })
    )
    .handleRaw("create", ({ path, request }) =>
      Effect.gen(function* () {
        const comp = yield* enterprise(path.comp)
        const body = yield* decodeFlow(yield* jsonBody(request))
        const flow = yield* flowOutcome(yield* storage((yield* FlowsStore).create(comp, body)), `flow ${body.name}`)
        return { code: 0, message: "OK", flow } as const
      })
    )
    .handleRaw("update", ({ path, request }) =>
      Effect.gen(function* () {
        const comp = yield* enterprise(path.comp)
        const patch = yield* decodeFlowPatch(yield* jsonBody(request))
        const flow = yield* flowOutcome(yield* storage((yield* FlowsStore).update(comp, path.id, patch)), `flow ${path.id}`)
        return { code: 0, message: "OK", flow } as const
      })
    )
    .handle("remove", ({ path }) =>
      Effect.gen(function* () {
        const comp = yield* enterprise(path.comp)
        const removed = yield* storage((yield* FlowsStore).remove(comp, path.id))
        if (removed === false) return yield* Effect.fail(NotFound.of(`flow ${path.id}`))
        if (typeof removed === "object") return yield* Effect.fail(BadRequest.of(removed.refused))
        return { code: 0, message: "OK" } as const
      })
    )
    .handleRaw("sound", ({ path, request }) =>
      Effect.gen(function* () {
        const comp = yield* enterprise(path.comp)
        const name = yield* soundNameOf(path.name)
        const { base64 } = yield* decodeSound(yield* jsonBody(request))
        const clean = base64.replace(/\s+/g, "")
        if (clean === "" || !/^[A-Za-z0-9+/]+={0,2}$/.test(clean)) return yield* Effect.fail(BadRequest.of("base64: expected the sound's bytes in Base64"))
        yield* (yield* FlowsStore).saveSound(comp, name, Buffer.from(clean, "base64")).pipe(
          Effect.catchAll((e) => Effect.zipRight(Effect.logError("a sound could not be stored", e), Effect.fail(Internal.answer)))
        )
        return { code: 0, message: "OK", wfPath: `${comp}/${name}` } as const
      })
    )
)
