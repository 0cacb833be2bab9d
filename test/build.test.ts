/**
 * dist/ is rebuilt by every `npm start`, while bridges and commands started from it may be
 * loading it (the suite runs both at once): a rebuild of unchanged sources must write nothing.
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
// @ts-expect-error -- a plain ES module of the build, without type declarations
import { buildDist } from "../scripts/build.mjs"
import { tempDir } from "./support/TestServer.js"

const filesOf = (dir: string): Array<string> =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesOf(path.join(dir, e.name)) : [path.join(dir, e.name)]))

describe("the build", () => {
  it("leaves dist/ untouched when nothing changed: no file is rewritten under a process loading it", { timeout: 60_000 }, async () => {
    await buildDist()
    const before = new Map(filesOf("dist").map((f) => [f, fs.statSync(f).mtimeMs]))
    expect([...before.keys()].some((f) => f.endsWith("main.mjs"))).toBe(true)
    await buildDist()
    const after = new Map(filesOf("dist").map((f) => [f, fs.statSync(f).mtimeMs]))
    expect([...after].filter(([f, t]) => before.get(f) !== t).map(([f]) => f)).toEqual([])
    // no temporary file left beside them
    expect([...after.keys()].filter((f) => f.endsWith(".tmp"))).toEqual([])
  })
})

/**
 * Records, at each rename the build makes into dist/, the relative static imports of the file
 * being put in place that do not exist yet: a process loading that file then fails
 * (ERR_MODULE_NOT_FOUND), which is what the rename was to prevent.
 */
const RENAME_HOOK = `
import fs from "node:fs"
import path from "node:path"
import { syncBuiltinESMExports } from "node:module"
const rename = fs.renameSync
const missing = []
fs.renameSync = (from, to) => {
  if (String(to).endsWith(".mjs"))
    for (const m of fs.readFileSync(from, "utf8").matchAll(/from\\s*"(\\.\\.?\\/[^"]+)"/g))
      if (!fs.existsSync(path.resolve(path.dirname(String(to)), m[1]))) missing.push(path.basename(String(to)) + " -> " + m[1])
  return rename(from, to)
}
syncBuiltinESMExports()
process.on("exit", () => fs.writeFileSync(process.env.REVIEW_MISSING, JSON.stringify(missing)))
`

describe("the build, after a source change", () => {
  it("a rebuild after a source change puts no entry in place before the chunks it imports", { timeout: 120_000 }, () => {
    // a fresh clone (no dist/): the sources, the build script, node_modules
    const root = process.cwd()
    const clone = tempDir("vb-build-")
    for (const d of ["src", "scripts", "schemas"]) fs.cpSync(path.join(root, d), path.join(clone, d), { recursive: true })
    for (const f of ["package.json", "tsconfig.json"]) fs.copyFileSync(path.join(root, f), path.join(clone, f))
    fs.symlinkSync(path.join(root, "node_modules"), path.join(clone, "node_modules"))
    const hook = path.join(clone, "rename-hook.mjs")
    fs.writeFileSync(hook, RENAME_HOOK)
    const missingFile = path.join(clone, "missing.json")
    const build = () => {
      const r = spawnSync(process.execPath, ["--import", hook, "scripts/build.mjs"], { cwd: clone, env: { ...process.env, REVIEW_MISSING: missingFile }, encoding: "utf8" })
      expect(r.status, `${r.stdout}${r.stderr}`).toBe(0)
      return JSON.parse(fs.readFileSync(missingFile, "utf8")) as Array<string>
    }
    build()
    expect(fs.existsSync(path.join(clone, "dist", "main.mjs"))).toBe(true)
    // an edit of a module of main's shared chunk: that chunk's name (its hash) changes, and main.mjs with it
    fs.appendFileSync(path.join(clone, "src", "db", "Sqlite.ts"), "\n;(globalThis as Record<string, unknown>).reviewEdit = 1\n")
    // esbuild lists the entries before the chunks: written in that order, the new main.mjs was in
    // place while the chunk it imports was not there yet
    expect(build()).toEqual([])
  })
})
