/** The admin API's bearer token. */
import { HttpServerRequest } from "@effect/platform"
import { Effect, Layer, Redacted } from "effect"
import { ensureAdminToken } from "../../Bootstrap.js"
import type { AppConfig } from "../../config/AppConfig.js"
import { sameSecret } from "../../shared/Secret.js"
import { AdminAuth, Unauthorized } from "../Api.js"

/** The token is read per request, as it always was: the file may be replaced while the bridge runs. */
export const AuthLive = Layer.effect(
  AdminAuth,
  Effect.map(Effect.context<AppConfig>(), (context) =>
    AdminAuth.of({
      // the platform cuts the header's first 7 characters whatever they say: the scheme is checked
      // here, case-insensitively (RFC 9110 §11.1), so a token under another scheme is refused
      bearer: (token) =>
        Effect.gen(function* () {
          const request = yield* HttpServerRequest.HttpServerRequest
          const expected = yield* Effect.provide(ensureAdminToken, context)
          const scheme = /^bearer\s+/i.test(request.headers.authorization ?? "")
          if (!scheme || !sameSecret(Redacted.value(token).trim(), expected)) return yield* Effect.fail(Unauthorized.answer)
        })
    })
  )
)
