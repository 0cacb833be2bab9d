/**
 * The upstream driver: each action is relayed to a real 800ing platform (its jsondata URL, with
 * the configured sa_user / sa_password), and what it answered is kept with the request's record.
 * No answer (connection refused, timeout, not JSON) is the contract's -1; a coded refusal of the
 * platform is -3 with the platform's code and message. The platform reports the call itself from
 * then on: its call pushes arrive at /api/voip.json, its callback statuses at the callbackUrl given.
 */
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

export const makeUpstreamDriver = (upstream: Upstream): TelephonyDriver => ({
  name: "upstream",
  place: (request) =>
    // the platform dials a task itself once it has it whole (addTask): it has no method for one of its numbers
    request.kind === "task"
      ? Effect.fail(new MethodFailed({ message: "the upstream driver does not dial a task's numbers one by one" }))
      : Effect.map(relay(upstream, request.kind === "callback" ? "callbackPhone" : "phoneAudit", request.params), (answer) => ({
      answer,
      // what happens next is the platform's to say, through its own pushes
      run: () => Effect.void
    })),
  dialOnDevice: ({ mac, channel, phone }) => Effect.asVoid(relay(upstream, "sendTelCall", { mac, channel: String(channel), phone })),
  relay: (method, params) => relay(upstream, method, params)
})
