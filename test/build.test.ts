/**
 * dist/ is rebuilt by every `npm start`, while bridges and commands started from it may be
 * loading it (the suite runs both at once): a rebuild of unchanged sources must write nothing.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
// @ts-expect-error -- a plain ES module of the build, without type declarations
import { buildDist } from "../scripts/build.mjs"

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
