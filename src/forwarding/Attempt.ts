/**
 * One attempt at a delivery: the request made from the stored event (its format, template or
 * transform, its signature, its OAuth2 token), sent, and what came of it. Never fails:
 * whatever happens is an outcome. The admin API's test-send runs the same steps and shows them.
 */
import { Clock, Effect, Either } from "effect"
import { Webhook } from "standardwebhooks"
import { type Outcome, outcomeOfAnswer, outcomeOfNoAnswer } from "./Decisions.js"
import type { StoredEvent } from "../events/Outbox.js"
import { envelopeOf, render, renderFormat, rendersPlainly, type Request, TransformFailed } from "./Formats.js"
import { accessToken, readAuth } from "./OAuth.js"
import { type Answer, post, send, SendFailed } from "./Send.js"
import { settingsOf, type Target, templateOf } from "./Target.js"
import { extensionOf } from "./templates/Messages.js"
import type { Outgoing } from "./templates/Template.js"

/** how much of the receiver's answer is kept with the attempt */
const EXCERPT = 2048

export type Sent = Outcome & { readonly excerpt: string }

/** The mobile of an extension (for a template's @-mention), where it is known. */
export type MobileOf = (extension: string) => Effect.Effect<string | undefined>

/** A request as it went out (a bearer token shown redacted) and its answer (null: none, or not sent). */
export interface Step {
  readonly request: Outgoing & { readonly method: "GET" | "POST" | "PATCH" }
  readonly answer: Answer | null
}

/** What an attempt did: its requests in order (a CRM's lookup, then its write), the outcome. */
export interface Exchange {
  readonly steps: ReadonlyArray<Step>
  readonly outcome: Sent
}

/** Anything thrown while the request is made (a stored event that does not parse, a key that does not sign) can only fail again. */
const unsendableBy = (what: string, defect: unknown) =>
  new TransformFailed({ message: `${what}: ${defect instanceof Error ? defect.message : String(defect)}`, reason: "unsendable" })
const unsendable = (what: string) => (defect: unknown) => Effect.fail(unsendableBy(what, defect))

/** A Standard Webhooks signer per secret, made once: making one decodes the secret. */
const signers = new Map<string, Webhook>()
const signerOf = (secret: string) => {
  let signer = signers.get(secret)
  if (!signer) {
    // a target's secret changes rarely; a map that only grows would keep every one ever used
    if (signers.size >= 100) signers.clear()
    signers.set(secret, (signer = new Webhook(secret)))
  }
  return signer
}

/**
 * The request for an event's body, signed, without its OAuth2 token (that is added as it goes
 * out). Throws TransformFailed when it cannot be signed.
 */
const requestFor = (target: Target, request: Request, webhookId: string, now: number, ownUrl: string | null): Outgoing => {
  const template = templateOf(target)
  const own = Object.keys(target.headers).map((h) => h.toLowerCase())
  const headers: Record<string, string> = {
    ...(own.includes("content-type") ? {} : { "content-type": request.contentType }),
    ...(own.includes("user-agent") ? {} : { "user-agent": "voip-bridge" }),
    ...template?.headers,
    ...target.headers,
    "webhook-id": webhookId
  }
  // a delivery to a URL its event named (a callback's callbackUrl) goes there, under the target's policy
  const base = ownUrl ?? target.url
  const url = request.query ? `${base}${base.includes("?") ? "&" : "?"}${request.query}` : base
  const secret = target.secret
  if (template) {
    // a template's secret signs the way its destination checks (or is its credential); Standard Webhooks would mean nothing there
    const sign = template.sign
    if (!sign || !secret) return { url, headers, body: request.body }
    try {
      return sign({ url, headers, body: request.body }, secret, now)
    } catch (e) {
      throw unsendableBy("the request could not be signed", e)
    }
  }
  if (secret) {
    headers["webhook-timestamp"] = String(Math.floor(now / 1000))
    try {
      headers["webhook-signature"] = signerOf(secret).sign(webhookId, new Date(now), request.body)
    } catch (e) {
      throw unsendableBy("the request could not be signed", e)
    }
  }
  return { url, headers, body: request.body }
}

/** The request for an event, signed, without its OAuth2 token (that is added as it goes out). */
export const prepare = (target: Target, event: StoredEvent, webhookId: string, mobileOf: MobileOf, ownUrl: string | null = null) =>
  Effect.gen(function* () {
    const template = templateOf(target)
    const extension = template && settingsOf(target).mention === true ? extensionOf(envelopeOf(event)) : undefined
    const mobile = extension === undefined ? undefined : yield* mobileOf(extension)
    const request = yield* render(target, event, mobile)
    const now = yield* Clock.currentTimeMillis
    return yield* Effect.try({ try: () => requestFor(target, request, webhookId, now, ownUrl), catch: (e) => (e instanceof TransformFailed ? e : unsendableBy("the request could not be made", e)) })
  }).pipe(Effect.catchAllDefect(unsendable("the request could not be made")))

const judge = (target: Target, answer: Answer): Outcome => {
  const rule = templateOf(target)?.answer
  return rule ? rule(answer.status, answer.retryAfter, answer.excerpt, Date.now()) : outcomeOfAnswer(answer.status, answer.retryAfter, Date.now())
}

const REDACTED = "Bearer (OAuth2 access token, not shown)"

const jsonOf = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/**
 * The request made and, when `send`, sent (a template's `deliver` makes its own requests under
 * the target's url). With OAuth2, a 401 fetches a new token and sends once more: the cached one
 * may have been revoked before its time.
 */
export const exchange = (
  target: Target,
  event: StoredEvent,
  webhookId: string,
  options: { readonly mobileOf: MobileOf; readonly send: boolean; readonly ownUrl?: string | null; readonly keepSteps?: boolean }
): Effect.Effect<Exchange> => {
  const steps: Array<Step> = []
  return Effect.gen(function* () {
    const prepared = yield* prepare(target, event, webhookId, options.mobileOf, options.ownUrl ?? null)
    const auth = target.auth === undefined ? undefined : readAuth(target.auth)
    if (auth && Either.isLeft(auth)) return yield* Effect.fail(new TransformFailed({ message: "auth: the stored OAuth2 settings cannot be read", reason: "unsendable" }))
    const oauth = auth?._tag === "Right" ? auth.right : undefined
    // credentials are not shown: an OAuth2 token, a template's bearer token (a CRM's API key)
    // and the target's secret wherever an API takes it as it is (Odoo's API key in the body)
    const hide = (text: string) => (target.secret ? text.split(target.secret).join("(secret, not shown)") : text)
    const shown = (request: Outgoing): Outgoing => {
      const headers = Object.fromEntries(
        Object.entries(request.headers).map(([k, v]) => (k.toLowerCase() === "authorization" ? [k, `${v.split(" ")[0]} (not shown)`] : [k, hide(v)]))
      )
      return { url: hide(request.url), body: hide(request.body), headers: oauth ? { ...headers, authorization: REDACTED } : headers }
    }
    const deliver = templateOf(target)?.deliver
    if (!options.send) {
      steps.push({ request: { method: "POST", ...shown(prepared) }, answer: null })
      return { kind: "delivered", status: 0, excerpt: "" } as Sent
    }
    let token = oauth ? yield* accessToken(oauth) : undefined
    const send = (method: "GET" | "POST" | "PATCH", request: Outgoing) =>
      Effect.gen(function* () {
        const go = () =>
          post(request.url, token === undefined ? request.headers : { ...request.headers, authorization: `Bearer ${token}` }, request.body, { timeoutMs: target.timeoutMs, excerptBytes: EXCERPT, method })
        let answer = yield* go()
        if (answer.status === 401 && oauth) {
          token = yield* accessToken(oauth, token)
          answer = yield* go()
        }
        // the redacted copies are for the operator's test-send; the worker keeps only the outcome
        if (options.keepSteps !== false) steps.push({ request: { method, ...shown(request) }, answer })
        return answer
      })
    const answer = deliver
      ? yield* deliver({
          body: jsonOf(prepared.body),
          settings: settingsOf(target),
          secret: target.secret,
          call: (method, path, body) =>
            Effect.map(
              send(method, { url: `${target.url.replace(/\/+$/, "")}${path}`, headers: prepared.headers, body: body === undefined ? "" : JSON.stringify(body) }),
              (a) => ({ ...a, json: jsonOf(a.excerpt) })
            )
        })
      : yield* send("POST", prepared)
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
    Effect.map((outcome) => ({ steps, outcome }))
  )
}

/**
 * Whether a target's attempts can be made in plain code (`attemptPlainly`): nothing of them waits
 * for anything but the receiver — no transform (JSONata is asynchronous), OAuth2 token, mobile
 * looked up for a mention, rate-limit slot, or a template's own requests. The common webhook.
 */
export const isPlain = (target: Target) => {
  const template = templateOf(target)
  return target.rateLimit === undefined && target.auth === undefined && rendersPlainly(target) && template?.deliver === undefined && !(template && settingsOf(target).mention === true)
}

/**
 * `attempt` for a plain target (`isPlain`), in plain code: the worker sends most deliveries this
 * way, and a fiber per delivery cost more of the one thread than the request did. The same
 * request, outcome and failures as `attempt`. `done` is called once with the outcome, unless
 * the cancel answered is called first.
 */
export const attemptPlainly = (target: Target, event: StoredEvent, webhookId: string, done: (outcome: Sent) => void): (() => void) => {
  let request: Outgoing
  try {
    let body: Request
    try {
      body = renderFormat(target, event)
    } catch (e) {
      // as `prepare` says it: a stored event that cannot be read is a request that could not be made
      throw unsendableBy("the request could not be made", e)
    }
    request = requestFor(target, body, webhookId, Date.now(), null)
  } catch (e) {
    const failed = e instanceof TransformFailed ? e : unsendableBy("the request could not be made", e)
    done({ kind: "unsendable", reason: failed.reason, error: failed.message, excerpt: "" })
    return () => {}
  }
  return send(request.url, request.headers, request.body, { timeoutMs: target.timeoutMs, excerptBytes: EXCERPT }, (result) =>
    done(result instanceof SendFailed ? { ...outcomeOfNoAnswer(result), excerpt: "" } : { ...judge(target, result), excerpt: result.excerpt })
  )
}

export const attempt = (target: Target, event: StoredEvent, webhookId: string, mobileOf: MobileOf, ownUrl: string | null = null): Effect.Effect<Sent> =>
  Effect.map(exchange(target, event, webhookId, { mobileOf, send: true, ownUrl, keepSteps: false }), (x) => x.outcome)
