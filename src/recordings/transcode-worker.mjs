// The entry of a transcoding worker thread. Plain JS on purpose: a worker does not reliably
// inherit tsx's loader (vitest starts none; Node 20 races `--import tsx` in a worker's
// execArgv against the entry's own load), so this file registers tsx itself, then runs the
// typed worker body.
import { register } from "tsx/esm/api"

register()
await import("./TranscodeWorker.ts")
