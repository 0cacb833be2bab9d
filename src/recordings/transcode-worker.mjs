// The entry of a transcoding worker thread. Plain JS on purpose: a worker cannot count on
// tsx's loader — vitest's processes have none, and on Node 20 a worker given
// `execArgv: ["--import", "tsx"]` still fails to load a .ts entry (ERR_UNKNOWN_FILE_EXTENSION).
// So this file registers tsx in its own thread, then runs the typed worker body. Under
// `npm start` the worker also inherits `--import tsx`; registering again is harmless.
import { register } from "tsx/esm/api"

register()
await import("./TranscodeWorker.ts")
