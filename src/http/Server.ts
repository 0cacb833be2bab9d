/**
 * The HTTP host. express routes each request to an Effect run on the one ManagedRuntime
 * built from the app's layers — built before `listen`, so a request never meets an
 * unmigrated database — and interrupted when the client goes away.
 */
import type * as http from "node:http"
import type { AddressInfo } from "node:net"
import express from "express"
import { adminHandler } from "../admin/Http.js"
import { type ApiError, codeOf, storageFailed } from "../api/Errors.js"
import { Metrics } from "./Metrics.js"
import { createServer, wasRepaired } from "./RawUtf8.js"
import { Cause, Effect, Exit, FiberId, ManagedRuntime } from "effect"
import { appLayer } from "../App.js"
import type { AppServices } from "../AppServices.js"
import { AppConfig, type AppConfigShape } from "../config/AppConfig.js"
import type { HttpRequestError } from "./Params.js"
import { type HttpAnswer, json, type Route } from "./Route.js"
import { routesFor } from "./routes.js"
import { usePrivateUmask } from "../db/DataDir.js"
import { Draining } from "../shared/Draining.js"
import { Capture } from "../capture/Capture.js"

export type AppRuntime = ManagedRuntime.ManagedRuntime<AppServices, unknown>

/** what express's sendFile reports: http-errors from `send` (with a status) or fs errors */
type FileError = Error & { readonly status?: number; readonly statusCode?: number; readonly code?: string; readonly expose?: boolean }

/**
 * Writes the answer. A JSON answer (nearly all) is written with Node's own response; files and
 * bytes use express's (`expressed`), which a request routed past express's router gets only then.
 */
const send = (res: http.ServerResponse, answer: HttpAnswer, expressed: () => express.Response, onFileError: (e: Error) => void) => {
  switch (answer._tag) {
    case "Json": {
      // written directly: express's send (type lookup, freshness check, Buffer copy) costs more than the answer
      const text = JSON.stringify(answer.body)
      res.statusCode = answer.status
      if (answer.headers) for (const [name, value] of Object.entries(answer.headers)) res.setHeader(name, value)
      res.setHeader("Content-Type", "application/json; charset=utf-8")
      res.setHeader("Content-Length", Buffer.byteLength(text))
      res.end(res.req.method === "HEAD" ? undefined : text)
      return
    }
    case "Bytes":
      expressed().status(answer.status).set(answer.headers).send(answer.body)
      return
    case "File":
      expressed().set(answer.headers).sendFile(answer.path, { dotfiles: "allow", acceptRanges: true }, (err?: FileError) => {
        // ECONNABORTED: the client is gone, there is no one to answer
        if (!err || res.headersSent || err.code === "ECONNABORTED") return
        // the error answer is JSON, not the file's type or name
        for (const name of Object.keys(answer.headers)) res.removeHeader(name)
        const status = err.status ?? err.statusCode ?? (err.code === "ENOENT" || err.code === "ENOTDIR" || err.code === "EISDIR" ? 404 : 500)
        // send sets `Content-Range: bytes */<size>` before it fails a range
        if (status === 416) expressed().status(416).json({ code: -12, message: "range not satisfiable" })
        else if (status === 404) expressed().status(404).json({ code: -11, message: "file does not exist" })
        else if (status >= 400 && status < 500) expressed().status(status).json({ code: -14, message: err.expose ? err.message : "request not satisfiable" })
        else {
          onFileError(err)
          // the error's message names the path: it stays in the log
          expressed().status(500).json({ code: -3, message: "internal error" })
        }
      })
      return
  }
}

/** A route's handler: Node's request and response, which express's layers pass as they are (with more on them). */
type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void

/** The path of the request target (what express calls `req.path`, but for an absolute-form target): for the log and the plain-path shortcut. */
const pathOf = (req: http.IncomingMessage) => {
  const url = req.url ?? ""
  const query = url.indexOf("?")
  return query < 0 ? url : url.slice(0, query)
}

const requestFailed = (e: HttpRequestError) => json({ code: e.code, message: e.message }, e.status)
/** a contract failure: its code, HTTP 200 */
const coded = (e: ApiError) => json({ code: codeOf(e), message: e.message })

export const makeApp = (runtime: AppRuntime, table: ReadonlyArray<Route>) => {
  const app = express()
  app.disable("x-powered-by")
  app.set("etag", false)
  // Query strings are parsed by the routes themselves (repeats, indexed keys, raw UTF-8).
  app.set("query parser", false)

  const metrics = runtime.runSync(Metrics)
  const debug = runtime.runSync(Effect.map(AppConfig, (c) => c.logLevel === "debug" || c.logLevel === "trace" || c.logLevel === "all"))

  // The admin API is an HttpApi (src/admin/Api.ts) served on this same runtime; it reads its own
  // bodies, so nothing may parse them before it.
  const admin = runtime.runSync(adminHandler)
  app.all(["/admin/api", "/admin/api/{*rest}"], (req, res) => {
    const started = performance.now()
    if (wasRepaired(req.socket)) res.setHeader("Connection", "close")
    res.once("finish", () => metrics.httpRequests.labels({ route: "/admin/api", method: req.method, status: res.statusCode }).observe((performance.now() - started) / 1000))
    // closed before an answer was finished: the client went away (its fiber is interrupted by the handler)
    res.once("close", () => {
      if (!res.writableFinished) metrics.httpAborted.inc({ route: "/admin/api" })
    })
    admin(req, res)
  })

  /**
   * `METHOD /path` of each route whose path is plain text: a request for exactly that path skips
   * express's router, which walks and matches its layers for each request (found by profiling
   * ingest). Which handler serves it is express's own choice, learnt from the first such request
   * routed through express (express routes on the method and path alone): a path from config may
   * lie under the admin API, registered first, or be another route's in another case, which
   * express matches alike (found in review). A path express gives no route of ours (null) keeps
   * going through express.
   */
  const plain = new Set<string>()
  const learnt = new Map<string, Handler | null>()
  /** the handler express chose for the request being routed through it to learn its path's */
  let chosen: Handler | undefined
  /** The request and response as express's own dispatch makes them (their prototypes, `req.res`, `res.locals`); once. */
  const expressed = (req: http.IncomingMessage, res: http.ServerResponse): express.Response => {
    if (Object.getPrototypeOf(res) !== app.response) {
      const request = Object.setPrototypeOf(req, app.request) as express.Request
      const response = Object.setPrototypeOf(res, app.response) as express.Response
      request.res = response
      response.req = request
      response.locals ??= Object.create(null)
    }
    return res as express.Response
  }
  for (const route of table) {
    const routeLabel = typeof route.path === "string" ? route.path : route.path.join("|")
    // each route keeps its few children, so no label object is built per request (prom-client still checks and hashes the labels at every observe)
    const timers = new Map<string, { observe: (seconds: number) => void }>()
    const timerFor = (method: string, status: number) => {
      const key = `${method} ${status}`
      let timer = timers.get(key)
      if (!timer) timers.set(key, (timer = metrics.httpRequests.labels({ route: routeLabel, method, status })))
      return timer
    }
    const handler: Handler = (req, res) => {
      chosen = handler
      const started = performance.now()
      // a request line we repaired: its connection is not reused (see RawUtf8)
      if (wasRepaired(req.socket)) res.setHeader("Connection", "close")
      const program: Effect.Effect<HttpAnswer, never, AppServices> = Effect.catchAll(route.handle(req), (e) =>
        e._tag === "SqlError"
          ? Effect.catchAll(storageFailed(e), (failed) => Effect.succeed(coded(failed)))
          : Effect.succeed(e._tag === "HttpRequestError" ? requestFailed(e) : coded(e))
      )
      const fiber = runtime.runFork(program)
      let done = false
      // the client went away, or the connection timed out and was answered 408, before our answer: stop working on it
      const onClose = () => {
        if (!done) fiber.unsafeInterruptAsFork(FiberId.none)
      }
      // "on", not "once": the response is gone after its close anyway, and once wraps and unhooks per request
      res.on("close", onClose)
      fiber.addObserver((exit) => {
        done = true
        if (Exit.isSuccess(exit)) {
          // already answered: the request timed out (see RawUtf8) while the work went on
          if (res.headersSent) return
          const answer = exit.value
          const status = "status" in answer ? answer.status : 200
          const seconds = (performance.now() - started) / 1000
          timerFor(req.method ?? "", status).observe(seconds)
          if (debug)
            runtime.runFork(
              Effect.logDebug("request").pipe(Effect.annotateLogs({ http: { method: req.method, path: pathOf(req), status, code: codeIn(answer), ms: Math.round(seconds * 1000) } }))
            )
          return send(
            res,
            answer,
            () => expressed(req, res),
            (e) => runtime.runFork(Effect.logError("a file could not be sent", e))
          )
        }
        if (Cause.isInterruptedOnly(exit.cause)) return void metrics.httpAborted.inc({ route: routeLabel })
        runtime.runFork(Effect.logError("request failed unexpectedly", exit.cause))
        if (!res.headersSent) send(res, json({ code: -3, message: "internal error" }, 500), () => expressed(req, res), () => undefined)
      })
    }
    // one layer per path, whatever its methods: express tries fewer layers per request
    for (const p of typeof route.path === "string" ? [route.path] : route.path) {
      const layer = app.route(p)
      for (const m of route.methods) layer[m.toLowerCase() as "get" | "post" | "put" | "patch" | "delete"](handler)
      if (/[:{}*()]/.test(p)) continue
      for (const m of [...route.methods, ...(route.methods.includes("GET") ? ["HEAD"] : [])]) plain.add(`${m} ${p}`)
    }
  }

  app.use((req, res) => {
    if (wasRepaired(req.socket)) res.setHeader("Connection", "close")
    res.status(404).json({ code: -11, message: `no such endpoint: ${req.method} ${req.path}` })
  })
  // express's own failures (a path that does not percent-decode, above all) would otherwise get
  // its HTML page with the stack and our file paths in it
  const failed = (err: unknown, req: express.Request, res: express.Response, _next?: express.NextFunction) => {
    if (res.headersSent) return void req.socket.destroy()
    if (wasRepaired(req.socket)) res.setHeader("Connection", "close")
    if (err instanceof URIError) return void res.status(400).json({ code: -14, message: "malformed path" })
    runtime.runFork(Effect.logError("request failed in express", Cause.die(err)))
    res.status(500).json({ code: -3, message: "internal error" })
  }
  app.use(failed)

  // Any other request (another spelling of a path, OPTIONS, a method the path does not take, a
  // path with parameters) goes through express, which routes it as it always did.
  return (req: http.IncomingMessage, res: http.ServerResponse) => {
    const key = `${req.method} ${pathOf(req)}`
    const handler = learnt.get(key)
    if (handler === undefined || handler === null) {
      if (handler === null || !plain.has(key)) return app(req, res)
      // express routes this one (synchronously, to the handler it picks): its choice is kept
      chosen = undefined
      app(req, res)
      learnt.set(key, chosen ?? null)
      chosen = undefined
      return
    }
    try {
      handler(req, res)
    } catch (err) {
      failed(err, req as express.Request, expressed(req, res))
    }
  }
}

/** The contract's `code` (or the box's `status`) of a JSON answer, for the request log: an HTTP 200 may be a -2. */
const codeIn = (answer: HttpAnswer): number | undefined => {
  if (answer._tag !== "Json" || typeof answer.body !== "object" || answer.body === null) return undefined
  const body = answer.body as { code?: unknown; status?: unknown }
  return typeof body.code === "number" ? body.code : typeof body.status === "number" ? body.status : undefined
}

export interface RunningServer {
  readonly url: string
  readonly port: number
  readonly runtime: AppRuntime
  readonly close: () => Promise<void>
}

/** Builds the runtime (migrations, bootstrap), then listens. */
export const startServer = async (config: AppConfigShape): Promise<RunningServer> => {
  usePrivateUmask()
  const runtime: AppRuntime = ManagedRuntime.make(appLayer(config))
  try {
    await runtime.runtime()
  } catch (e) {
    await runtime.dispose()
    throw e
  }
  const app = makeApp(runtime, routesFor(config))
  const capture = runtime.runSync(Capture)
  // every request passes here once; while nothing is captured this costs one test
  const listener: http.RequestListener = (req, res) => {
    if (capture.active()) capture.observe(req, res)
    app(req, res)
  }
  const { front, close: closeConnections } = createServer(listener, {
    headersMs: config.http.headersTimeoutMs,
    requestMs: config.http.requestTimeoutMs,
    keepAliveMs: config.http.keepAliveTimeoutMs
  })
  await new Promise<void>((resolve, reject) => {
    front.once("error", reject)
    front.listen(config.port, config.host, () => resolve())
  })
  const { port } = front.address() as AddressInfo
  const shownHost = config.host === "0.0.0.0" || config.host === "::" ? "127.0.0.1" : config.host
  let closing: Promise<void> | undefined
  const close = () =>
    (closing ??= (async () => {
      // long polls answer now rather than at the end of their wait; then stop accepting, let
      // in-flight requests finish, and release the runtime (database last)
      await runtime.runPromise(Effect.flatMap(Draining, (d) => d.begin))
      await closeConnections()
      await runtime.dispose()
    })())
  return { url: `http://${shownHost}:${port}`, port, runtime, close }
}
