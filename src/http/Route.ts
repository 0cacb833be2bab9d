/**
 * One HTTP route: a path and an Effect that answers it. Domains export their routes; the
 * server mounts the one list in `routes.ts` and knows nothing else about them.
 */
import type { IncomingMessage } from "node:http"
import type { Effect } from "effect"
import type { AppServices } from "../AppServices.js"
import type { SqlError } from "@effect/sql/SqlError"
import type { ApiError } from "../api/Errors.js"
import type { HttpRequestError } from "./Params.js"

export type HttpAnswer =
  | { readonly _tag: "Json"; readonly status: number; readonly body: unknown; readonly headers?: Readonly<Record<string, string>> }
  | { readonly _tag: "Bytes"; readonly status: number; readonly body: Buffer | string; readonly headers: Readonly<Record<string, string>> }
  /** a file under the data directory, sent with Range support */
  | { readonly _tag: "File"; readonly path: string; readonly headers: Readonly<Record<string, string>> }

export const json = (body: unknown, status = 200, headers?: Readonly<Record<string, string>>): HttpAnswer => ({
  _tag: "Json",
  status,
  body,
  ...(headers ? { headers } : {})
})

export interface Route {
  readonly methods: ReadonlyArray<"GET" | "POST" | "PUT" | "PATCH" | "DELETE">
  /** express path pattern */
  readonly path: string | ReadonlyArray<string>
  /** contract errors become coded answers (HTTP 200), storage errors -6, unreadable requests their 4xx — in the server, once */
  readonly handle: (
    req: IncomingMessage & { readonly params?: Readonly<Record<string, string | string[]>> }
  ) => Effect.Effect<HttpAnswer, ApiError | SqlError | HttpRequestError, AppServices>
}
