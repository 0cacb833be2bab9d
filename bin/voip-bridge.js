#!/usr/bin/env node
// `npx voip-bridge …` from a clone: the same program `npm start` runs, TypeScript loaded by tsx.
import { register } from "tsx/esm/api"

register()
await import("../src/main.ts")
