/** The Node.js options the bridge runs under are written in three places: they must agree. */
import * as fs from "node:fs"
import { describe, expect, it } from "vitest"
// @ts-expect-error -- a plain ES module of the scripts, without type declarations
import { BRIDGE_NODE_ARGS } from "../scripts/node-args.mjs"

describe("the bridge's Node.js options", () => {
  it("are the same in scripts/node-args.mjs (the benches), npm start and bin/voip-bridge.js", () => {
    const args = (BRIDGE_NODE_ARGS as ReadonlyArray<string>).join(" ")
    expect(args).toContain("--max-semi-space-size=")
    const start = (JSON.parse(fs.readFileSync("package.json", "utf8")) as { scripts: { start: string } }).scripts.start
    expect(start).toContain(`exec node ${args} dist/main.mjs`)
    expect(fs.readFileSync("bin/voip-bridge.js", "utf8").split("\n")[0]).toBe(`#!/usr/bin/env -S node ${args}`)
  })
})
