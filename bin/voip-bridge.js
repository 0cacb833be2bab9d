#!/usr/bin/env -S node --max-semi-space-size=4 --heap-growing-percent=100
// `npx voip-bridge …`: the program `npm start` runs — compiled (dist/, built by `npm install`),
// or from the TypeScript sources through tsx in a checkout that has not been built.
import { existsSync } from "node:fs"

const dist = new URL("../dist/main.mjs", import.meta.url)
if (existsSync(dist)) await import(dist.href)
else {
  const { register } = await import("tsx/esm/api")
  register()
  await import("../src/main.ts")
}
