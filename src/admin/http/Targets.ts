/** The admin API's targets: list, create, read, change, remove, recover, test-send; the templates. */
import { HttpApiBuilder } from "@effect/platform"
import { Clock, Effect, JSONSchema, Schema } from "effect"
import { EventsStore } from "../../events/EventsStore.js"
import { exchange } from "../../forwarding/Attempt.js"
import { DeadLetters } from "../../forwarding/DeadLetters.js"
import { Lanes } from "../../forwarding/Lanes.js"
import { mobileLookup } from "../../forwarding/Mentions.js"
import { StoredTargetSchema, type Target, TargetSchema } from "../../forwarding/Target.js"
import { Targets } from "../../forwarding/Targets.js"
import { TEMPLATES } from "../../forwarding/templates/registry.js"
import { sampleFor, sampleOf } from "../../forwarding/templates/Samples.js"
import { PUSH_TARGET_PREFIX, pushTargetType } from "../../workorders/PushTarget.js"
import { AdminApi, BadRequest, Conflict, NotFound, RecoverBody, TestSendBody } from "../Api.js"
import { decoder, existing, filterFrom, jsonBody, redriven, storage } from "./Shared.js"

const decodeTarget = decoder(TargetSchema)
// a stored target is shown as it is, even one that fails a check added since it was saved
const encodeTarget = Schema.encodeSync(StoredTargetSchema)

/** A work-order type's push target is its type's: events `*` would push every event there, a deletion strand its pushes. */
const unmanaged = (name: string): Effect.Effect<void, BadRequest> => {
  const wotId = pushTargetType(name)
  return wotId === undefined
    ? Effect.void
    : Effect.fail(BadRequest.of(`target ${name}: names starting with ${PUSH_TARGET_PREFIX} are managed by work-order type ${wotId}: change the type's pushUrl (POST /admin/api/enterprises/:comp/workorder-types) instead`))
}

/** A target of the config file is the file's: changed through the API, the next start would undo it without a word. */
const notFromConfig = (name: string): Effect.Effect<void, Conflict, Targets> =>
  Effect.flatMap(Targets, (t) =>
    t.fromConfig(name)
      ? Effect.fail(new Conflict({ code: -10, message: `target ${name} comes from the config file (config/bridge.json or BRIDGE_CONFIG), which wins at every start: change it there` }))
      : Effect.void
  )

const decodeTestSend = decoder(TestSendBody)

const templateItems = TEMPLATES.map((t) => ({
  name: t.name,
  title: t.title,
  description: t.description,
  url: { description: t.url.description, example: t.url.example },
  secret: t.secret ? { description: t.secret.description, required: t.secret.required ?? false } : null,
  settings: JSONSchema.make(t.settings) as unknown as Record<string, unknown>,
  transform: t.transform,
  events: t.events
}))

/**
 * A test-send: the event given (or a sample of the target's events) made into the request a
 * delivery would make, sent unless told not to. Nothing is stored and the target's circuit
 * does not move: it is the operator's look, not a delivery.
 */
const testSend = (target: Target, body: typeof TestSendBody.Type) =>
  Effect.gen(function* () {
    const sample = body.type === undefined ? sampleFor(target.events) : { type: body.type, data: sampleOf(body.type) ?? {} }
    const data = body.data ?? sample.data
    const enterprise = body.enterprise === undefined ? "100008" : body.enterprise
    const now = Date.now()
    const event = { id: 0, type: sample.type, occurred_at: now, enterprise, source: "admin:test", data: JSON.stringify(data), raw: null }
    const mobileOf = yield* mobileLookup
    const x = yield* exchange(target, event, `msg_test_${now}`, { mobileOf, send: body.send })
    const o = x.outcome
    const step = (s: (typeof x.steps)[number]) => ({ request: s.request, answer: s.answer === null ? null : { status: s.answer.status, body: s.answer.excerpt } })
    const last = x.steps.length === 0 ? undefined : step(x.steps[x.steps.length - 1]!)
    return {
      code: 0,
      message: "OK",
      event: { type: sample.type, enterprise, data },
      request: last?.request ?? null,
      answer: last?.answer ?? null,
      ...(x.steps.length > 1 ? { steps: x.steps.map(step) } : {}),
      outcome: !body.send && x.steps.length > 0 ? null : { kind: o.kind, ...(o.kind === "delivered" ? {} : { error: o.error }) }
    } as const
  })

export const TargetsLive = HttpApiBuilder.group(AdminApi, "targets", (handlers) =>
  handlers
    .handle("list", () =>
      Effect.gen(function* () {
        const lanes = yield* Lanes
        const now = yield* Clock.currentTimeMillis
        const targets = yield* Targets
        return { items: targets.snapshot().map((t) => ({ ...t, origin: targets.fromConfig(t.name) ? ("config" as const) : ("api" as const), circuit: lanes.view(t.name, now) })) }
      })
    )
    .handleRaw("create", ({ request }) =>
      Effect.gen(function* () {
        const target = yield* decodeTarget(yield* jsonBody(request))
        yield* unmanaged(target.name)
        const targets = yield* Targets
        if (yield* targets.get(target.name)) return yield* Effect.fail(new Conflict({ code: -10, message: `target ${target.name} exists already` }))
        yield* storage(targets.save(target, "api"))
        return { code: 0, message: "OK", target } as const
      })
    )
    .handle("get", ({ path }) =>
      Effect.gen(function* () {
        const target = yield* existing(path.name)
        return { ...target, origin: (yield* Targets).fromConfig(target.name) ? ("config" as const) : ("api" as const), circuit: (yield* Lanes).view(target.name, yield* Clock.currentTimeMillis) }
      })
    )
    .handleRaw("update", ({ path, request }) =>
      Effect.gen(function* () {
        const current = yield* existing(path.name)
        yield* unmanaged(path.name)
        const body = yield* jsonBody(request)
        // pausing and resuming is operating a target, not configuring it: allowed for the file's own
        // too (autoDisable may have paused one); the file's `enabled` applies again at the next start
        const onlyEnabled = Object.keys(body).length > 0 && Object.keys(body).every((k) => k === "enabled")
        if (!onlyEnabled) yield* notFromConfig(path.name)
        // null clears a field: an optional one is gone (transform, secret, rateLimit), one with a default is back to it
        const patched: Record<string, unknown> = { ...encodeTarget(current), ...body, name: current.name }
        for (const [k, v] of Object.entries(body)) if (v === null) delete patched[k]
        const merged = yield* decodeTarget(patched)
        // pending deliveries read their target when they are sent: the change applies to them at once
        yield* storage((yield* Targets).save(merged, "api"))
        return { code: 0, message: "OK", target: merged } as const
      })
    )
    .handle("remove", ({ path }) =>
      Effect.gen(function* () {
        yield* unmanaged(path.name)
        yield* notFromConfig(path.name)
        const removed = yield* storage((yield* Targets).remove(path.name))
        if (!removed) return yield* Effect.fail(NotFound.of(`target ${path.name}`))
        const deadLettered = yield* storage((yield* EventsStore).deadLetterWaiting(path.name))
        return { code: 0, message: "OK", deadLettered } as const
      })
    )
    .handleRaw("recover", ({ path, request }) =>
      Effect.gen(function* () {
        yield* existing(path.name)
        const body = yield* jsonBody(request)
        const other = Object.keys(body).find((k) => !(k in RecoverBody.fields))
        if (other !== undefined) return yield* Effect.fail(BadRequest.of(`${other}: not a field of recover (since, until)`))
        const filter = yield* filterFrom({ ...body, target: path.name })
        return redriven(yield* storage((yield* DeadLetters).redrive(filter)))
      })
    )
    .handleRaw("test", ({ path, request }) =>
      Effect.gen(function* () {
        const target = yield* existing(path.name)
        return yield* testSend(target, yield* decodeTestSend(yield* jsonBody(request)))
      })
    )
    .handle("templates", () => Effect.succeed({ items: templateItems }))
)
