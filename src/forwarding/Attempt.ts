/**
 * One attempt at a delivery: the request made from the stored event (its format, template or
 * transform, its signature, its OAuth2 token), sent, and what came of it. Never fails:
 * whatever happens is an outcome. The admin API's test-send runs the same steps and shows them.
 */
import { Clock, Effect, Either } from "effect"
import { Webhook } from "standardwebhooks"
import { type Outcome, outcomeOfAnswer, outcomeOfNoAnswer } from "./Decisions.js"
import type { StoredEvent } from "../events/Outbox.js"
import { envelopeOf, render, TransformFailed } from "./Formats.js"
import { accessToken, readAuth } from "./OAuth.js"
import { type Answer, post } from "./Send.js"
import { settingsOf, type Target, templateOf } from "./Target.js"
import { extensionOf } from "./templates/Messages.js"
import type { Outgoing } from "./templates/Template.js"

/** how much of the receiver's answer is kept with the attempt */
const EXCERPT = 2048

export type Sent = Outcome & { readonly excerpt: string }

/** The mobile of an extension (for a template's @-mention), where it is known. */
export type MobileOf = (extension: string) => Effect.Effect<string | undefined>

/** What an attempt did: the request as it went out (a bearer token shown redacted), the answer, the outcome. */
export interface Exchange {
  readonly request: Outgoing | null
  readonly answer: Answer | null
  readonly outcome: Sent
}

/** Anything thrown while the request is made (a stored event that does not parse, a key that does not sign) can only fail again. */
const unsendable = (what: string) => (defect: unknown) =>
  Effect.fail(new TransformFailed({ message: `${what}: ${defect instanceof Error ? defect.message : String(defect)}`, reason: "unsendable" }))

/** The request for an event, signed, without its OAuth2 token (that is added as it goes out). */
export const prepare = (target: Target, event: StoredEvent, webhookId: string, mobileOf: MobileOf) =>
  Effect.gen(function* () {
    const template = templateOf(target)
    const extension = template && settingsOf(target).mention !== false ? extensionOf(envelopeOf(event)) : undefined
    const mobile = extension === undefined ? undefined : yield* mobileOf(extension)
    const request = yield* render(target, event, mobile)
    const now = yield* Clock.currentTimeMillis
    const own = Object.keys(target.headers).map((h) => h.toLowerCase())
    const headers: Record<string, string> = {
      ...(own.includes("content-type") ? {} : { "content-type": request.contentType }),
      ...(own.includes("user-agent") ? {} : { "user-agent": "voip-bridge" }),
      ...template?.headers,
      ...target.headers,
      "webhook-id": webhookId
    }
    const url = request.query ? `${target.url}${target.url.includes("?") ? "&" : "?"}${request.query}` : target.url
    const secret = target.secret
    if (template) {
      // a template's secret signs the way its destination checks (or is its credential); Standard Webhooks would mean nothing there
      const sign = template.sign
      return sign && secret ? yield* Effect.try({ try: () => sign({ url, headers, body: request.body }, secret, now), catch: (e) => e }).pipe(Effect.catchAll(unsendable("the request could not be signed"))) : { url, headers, body: request.body }
    }
    if (secret) {
      headers["webhook-timestamp"] = String(Math.floor(now / 1000))
      headers["webhook-signature"] = yield* Effect.try({ try: () => new Webhook(secret).sign(webhookId, new Date(now), request.body), catch: (e) => e }).pipe(
        Effect.catchAll(unsendable("the request could not be signed"))
      )
    }
    return { url, headers, body: request.body }
  }).pipe(Effect.catchAllDefect(unsendable("the request could not be made")))

const judge = (target: Target, answer: Answer): Outcome => {
  const rule = templateOf(target)?.answer
  return rule ? rule(answer.status, answer.retryAfter, answer.excerpt, Date.now()) : outcomeOfAnswer(answer.status, answer.retryAfter, Date.now())
}

const REDACTED = "Bearer (OAuth2 access token, not shown)"

/**
 * The request made and, when `send`, sent: with OAuth2, a 401 fetches a new token and sends
 * once more (the cached one may have been revoked before its time).
 */
export const exchange = (target: Target, event: StoredEvent, webhookId: string, options: { readonly mobileOf: MobileOf; readonly send: boolean }): Effect.Effect<Exchange> => {
  let shown: Outgoing | null = null
  let answered: Answer | null = null
  return Effect.gen(function* () {
    const request = yield* prepare(target, event, webhookId, options.mobileOf)
    const auth = target.auth === undefined ? undefined : readAuth(target.auth)
    if (auth && Either.isLeft(auth)) return yield* Effect.fail(new TransformFailed({ message: "auth: the stored OAuth2 settings cannot be read", reason: "unsendable" }))
    const oauth = auth?._tag === "Right" ? auth.right : undefined
    shown = oauth ? { ...request, headers: { ...request.headers, authorization: REDACTED } } : request
    if (!options.send) return { kind: "delivered", status: 0, excerpt: "" } as Sent
    const send = (token: string | undefined) =>
      post(request.url, token === undefined ? request.headers : { ...request.headers, authorization: `Bearer ${token}` }, request.body, { timeoutMs: target.timeoutMs, excerptBytes: EXCERPT })
    const token = oauth ? yield* accessToken(oauth) : undefined
    let answer = yield* send(token)
    if (answer.status === 401 && oauth) answer = yield* send(yield* accessToken(oauth, token))
    answered = answer
    return { ...judge(target, answer), excerpt: answer.excerpt }
  }).pipe(
    Effect.catchTags({
      SendFailed: (e) => Effect.succeed<Sent>({ ...outcomeOfNoAnswer(e), excerpt: "" }),
      TransformFailed: (e) => Effect.succeed<Sent>({ kind: "unsendable", reason: e.reason, error: e.message, excerpt: "" }),
      Skipped: (e) => Effect.succeed<Sent>({ kind: "skipped", error: e.message, excerpt: "" }),
      // the token endpoint refusing the credentials (a revoked refresh token) can only refuse again: a dead letter with its reason
      TokenFailed: (e) =>
        Effect.succeed<Sent>(e.permanent ? { kind: "unsendable", reason: "auth", error: e.message, excerpt: "" } : { kind: "retry", status: null, error: e.message, retryAfterMs: null, excerpt: "" })
    }),
    Effect.map((outcome) => ({ request: shown, answer: answered, outcome }))
  )
}

export const attempt = (target: Target, event: StoredEvent, webhookId: string, mobileOf: MobileOf): Effect.Effect<Sent> =>
  Effect.map(exchange(target, event, webhookId, { mobileOf, send: true }), (x) => x.outcome)
