/**
 * The upstream driver: each action is relayed to a real 800ing platform (its jsondata URL, with
 * the configured sa_user / sa_password), and what it answered is kept with the request's record.
 * No answer (connection refused, timeout, not JSON) is the contract's -1; a coded refusal of the
 * platform is -3 with the platform's code and message. The platform reports the call itself from
 * then on: its call pushes arrive at /api/voip.json, its callback statuses at the callbackUrl given.
 *
 * With `upstream.publicUrl`, the callbackUrl given to the platform is the bridge's own
 * (UPSTREAM_CALLBACK_PATH/{cbkId}?key=…, a secret per callback): the platform's statuses update our
 * row and reach the integrator's callbackUrl with our cbkId, as the other drivers' do
 * (src/callbacks/routes.ts). Without it, the integrator's callbackUrl is relayed as it came.
 */
import * as crypto from "node:crypto"
import { Effect } from "effect"
import { MethodFailed, UpstreamFailed } from "../api/Errors.js"
import type { TelephonyConfigShape } from "./ConfigSchema.js"
import type { TelephonyDriver } from "./Driver.js"

type Upstream = NonNullable<TelephonyConfigShape["upstream"]>

/** One jsondata call to the platform: its JSON answer when it said code 0. */
export const relay = (upstream: Upstream, method: string, params: Readonly<Record<string, string>>) =>
  Effect.gen(function* () {
    const body = new URLSearchParams({ ...params, method, sa_user: upstream.sa_user, sa_password: upstream.sa_password })
    const answer = yield* Effect.tryPromise({
      try: async (signal) => {
        const res = await fetch(upstream.url, { method: "POST", body, signal: AbortSignal.any([signal, AbortSignal.timeout(upstream.timeoutMs)]) })
        const text = await res.text()
        if (res.status !== 200) throw new Error(`the platform answered HTTP ${res.status}`)
        const parsed: unknown = JSON.parse(text)
        if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error("the platform's answer is not a JSON object")
        return parsed as Record<string, unknown>
      },
      catch: (e) => new UpstreamFailed({ message: `the platform could not be reached: ${e instanceof Error ? e.message : String(e)}` })
    })
    const code = Number(answer.code ?? (answer.success === true ? 0 : NaN))
    if (code !== 0) return yield* new MethodFailed({ message: `the platform refused ${method} (code ${String(answer.code)}): ${String(answer.message ?? "")}` })
    return answer
  })

/** Where the platform pushes a relayed callback's statuses: {cbkId} is the platform's id, as it fills it in. */
export const UPSTREAM_CALLBACK_PATH = "/voip/upstream/callback"

/** The platform's id of what it accepted (its answer's `id`), as text; null when it named none. */
export const idOf = (answer: Readonly<Record<string, unknown>>) =>
  typeof answer.id === "number" || (typeof answer.id === "string" && answer.id !== "") ? String(answer.id) : null

export const makeUpstreamDriver = (upstream: Upstream): TelephonyDriver => ({
  name: "upstream",
  place: (request) => {
    // the platform dials a task itself once it has it whole (addTask): it has no method for one of its numbers
    if (request.kind === "task") return Effect.fail(new MethodFailed({ message: "the upstream driver does not dial a task's numbers one by one" }))
    // what happens next is the platform's to say, through its own pushes
    const run = () => Effect.void
    if (request.kind === "audit") return Effect.map(relay(upstream, "phoneAudit", request.params), (answer) => ({ answer, run }))
    if (upstream.publicUrl === undefined) return Effect.map(relay(upstream, "callbackPhone", request.params), (answer) => ({ answer, run }))
    const key = crypto.randomBytes(18).toString("base64url")
    const ours = `${upstream.publicUrl.replace(/\/+$/, "")}${UPSTREAM_CALLBACK_PATH}/{cbkId}?key=${key}`
    const params = { ...request.params, callbackUrl: Buffer.from(ours, "utf8").toString("base64") }
    return Effect.map(relay(upstream, "callbackPhone", params), (answer) => ({ answer, upstream: { id: idOf(answer), key }, run }))
  },
  dialOnDevice: ({ mac, channel, phone }) => Effect.asVoid(relay(upstream, "sendTelCall", { mac, channel: String(channel), phone })),
  relay: (method, params) => relay(upstream, method, params)
})
