// Compiles the bridge once into dist/ (esbuild: ~0.2 s), so a start loads plain JavaScript
// instead of transpiling every module at run time (tsx: seconds and ~70 MB more at start).
// Run by `npm install` (prepare), by `npm start` before it starts, and by `npm run build`.
// The type check is `npm run typecheck` (tsc); esbuild only strips types.
import { build } from "esbuild"

await build({
  entryPoints: { main: "src/main.ts", "transcode-worker": "src/recordings/TranscodeWorker.ts" },
  outdir: "dist",
  outExtension: { ".js": ".mjs" },
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  // dependencies stay in node_modules, loaded as they are
  packages: "external",
  sourcemap: true,
  logLevel: "warning"
})
