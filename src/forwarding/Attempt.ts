/**
 * One attempt at a delivery: the request made from the stored event (its format or transform,
 * its signature), sent, and what came of it. Never fails: whatever happens is an outcome.
 */
import { Clock, Effect } from "effect"
import { Webhook } from "standardwebhooks"
import { type Outcome, outcomeOfAnswer, outcomeOfNoAnswer } from "./Decisions.js"
import type { StoredEvent } from "../events/Outbox.js"
import { render, TransformFailed } from "./Formats.js"
import { post } from "./Send.js"
import type { Target } from "./Target.js"

/** how much of the receiver's answer is kept with the attempt */
const EXCERPT = 2048

export type Sent = Outcome & { readonly excerpt: string }

/** Anything thrown while the request is made (a stored event that does not parse, a key that does not sign) can only fail again. */
const unsendable = (what: string) => (defect: unknown) =>
  Effect.fail(new TransformFailed({ message: `${what}: ${defect instanceof Error ? defect.message : String(defect)}`, reason: "unsendable" }))

export const attempt = (target: Target, event: StoredEvent, webhookId: string, ownUrl: string | null = null): Effect.Effect<Sent> =>
  Effect.gen(function* () {
    const request = yield* Effect.suspend(() => render(target, event)).pipe(Effect.catchAllDefect(unsendable("the request could not be made")))
    const now = yield* Clock.currentTimeMillis
    const own = Object.keys(target.headers).map((h) => h.toLowerCase())
    const headers: Record<string, string> = {
      ...(own.includes("content-type") ? {} : { "content-type": request.contentType }),
      ...(own.includes("user-agent") ? {} : { "user-agent": "voip-bridge" }),
      ...target.headers,
      "webhook-id": webhookId
    }
    if (target.secret) {
      const secret = target.secret
      headers["webhook-timestamp"] = String(Math.floor(now / 1000))
      headers["webhook-signature"] = yield* Effect.try({ try: () => new Webhook(secret).sign(webhookId, new Date(now), request.body), catch: (e) => e }).pipe(
        Effect.catchAll(unsendable("the request could not be signed"))
      )
    }
    const base = ownUrl ?? target.url
    const url = request.query ? `${base}${base.includes("?") ? "&" : "?"}${request.query}` : base
    const { status, retryAfter, excerpt } = yield* post(url, headers, request.body, { timeoutMs: target.timeoutMs, excerptBytes: EXCERPT })
    return { ...outcomeOfAnswer(status, retryAfter, Date.now()), excerpt }
  }).pipe(
    Effect.catchTags({
      SendFailed: (e) => Effect.succeed<Sent>({ ...outcomeOfNoAnswer(e), excerpt: "" }),
      TransformFailed: (e) => Effect.succeed<Sent>({ kind: "unsendable", reason: e.reason, error: e.message, excerpt: "" })
    })
  )
