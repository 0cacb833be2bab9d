/**
 * The admin page: GET /admin answers the page, GET /admin/assets/<file> its script and
 * stylesheet, built by scripts/build.mjs into dist/admin from src/admin/web. The page talks only
 * to /admin/api with the token the operator types in; these two endpoints need no token, as
 * they hold nothing but the page's code.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { Effect, Schema } from "effect"
import { type Endpoint, endpoint, NO_PARAMS, rest } from "../http/Endpoint.js"
import { type HttpAnswer, json } from "../http/Route.js"

/**
 * Only the page's own origin: no inline script or style, no other host, no framing. Preact
 * sets element styles through the DOM (allowed), never through inline `style` attributes.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'"
].join("; ")

const SECURITY_HEADERS = {
  "content-security-policy": CONTENT_SECURITY_POLICY,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  // file names carry no hash: the browser asks again rather than keep an old build
  "cache-control": "no-cache"
}

// dist/main.mjs finds dist/admin beside itself; the sources (tests import them) find the build at the root
const candidates = [new URL("./admin/", import.meta.url), new URL("../../dist/admin/", import.meta.url)].map((u) => fileURLToPath(u))
let found: string | undefined
const builtDir = () => (found ??= candidates.find((dir) => fs.existsSync(path.join(dir, "app.js"))))

const notBuilt = json({ code: -3, message: "the admin page is not built: run npm run build (npm install and npm start build it)" }, 503)

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>voip-bridge admin</title>
<link rel="stylesheet" href="/admin/assets/app.css">
<script type="module" src="/admin/assets/app.js"></script>
</head>
<body><div id="app"></div></body>
</html>
`

const TYPES: Readonly<Record<string, string>> = {
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".map": "application/json; charset=utf-8"
}
// the build's own output names: nothing else under dist/ is served
const ASSET = /^app\.(js|css)(\.map)?$/

const page = endpoint({
  id: "adminPage",
  summary: "The admin web page (log in with the admin token)",
  tags: ["admin page"],
  paths: "/admin",
  methods: ["GET"],
  auth: { kind: "none" },
  body: { kind: "none" },
  params: NO_PARAMS,
  answer: rest({
    "200": { description: "the page", content: { "text/html": Schema.String } },
    "503": { description: "the page is not built", content: { "application/json": "coded" } }
  }),
  handler: () =>
    Effect.sync((): HttpAnswer => (builtDir() ? { _tag: "Bytes", status: 200, body: PAGE, headers: { ...SECURITY_HEADERS, "content-type": "text/html; charset=utf-8" } } : notBuilt))
})

const assets = endpoint({
  id: "adminAssets",
  summary: "The admin page's script and stylesheet",
  tags: ["admin page"],
  paths: "/admin/assets/{*file}",
  documentedPath: "/admin/assets/{file}",
  methods: ["GET"],
  auth: { kind: "none" },
  body: { kind: "none" },
  params: NO_PARAMS,
  answer: rest({
    "200": { description: "the file", content: { "text/javascript": Schema.String, "text/css": Schema.String } },
    "404": { description: "no such file", content: { "application/json": "coded" } },
    "500": { description: "the file could not be read (logged)", content: { "application/json": "coded" } },
    "503": { description: "the page is not built", content: { "application/json": "coded" } }
  }),
  handler: ({ req }) =>
    Effect.gen(function* () {
      const segments = req.params?.file
      const name = Array.isArray(segments) ? segments.join("/") : (segments ?? "")
      if (!ASSET.test(name)) return json({ code: -11, message: `no such file: ${name}` }, 404)
      const dir = builtDir()
      if (!dir) return notBuilt
      return yield* Effect.tryPromise({ try: () => fs.promises.readFile(path.join(dir, name)), catch: (e) => e as NodeJS.ErrnoException }).pipe(
        Effect.map((body): HttpAnswer => ({ _tag: "Bytes", status: 200, body, headers: { ...SECURITY_HEADERS, "content-type": TYPES[path.extname(name)]! } })),
        Effect.catchAll((e) =>
          // a build without source maps is not an error; anything else is worth a line in the log
          e.code === "ENOENT"
            ? Effect.succeed(json({ code: -11, message: `no such file: ${name}` }, 404))
            : Effect.as(Effect.logError("an admin page file could not be read", e), json({ code: -3, message: "internal error" }, 500))
        )
      )
    })
})

export const endpoints: ReadonlyArray<Endpoint> = [page, assets]
