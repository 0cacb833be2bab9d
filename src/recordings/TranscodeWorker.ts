/**
 * One transcode in a worker thread (started by Transcoder.ts through transcode-worker.mjs):
 * reads the WAV, encodes it, and writes the MP3 to its cache path atomically. lamejs is
 * synchronous and takes seconds for a long call; here it blocks only this thread.
 */
import * as fs from "node:fs"
import { parentPort, workerData } from "node:worker_threads"
import { errnoCode } from "../shared/Errno.js"
import { writeDurably } from "./Files.js"
import { wavToMp3 } from "./Transcode.js"
import { UnsupportedAudio } from "./UnsupportedAudio.js"

export interface TranscodeJob {
  readonly original: string
  readonly target: string
}

/**
 * A failure names what an answer may say: our own words for audio we cannot read, else the
 * system error's code only (the error's message names server paths). `detail` is the whole
 * error, for the log.
 */
export type TranscodeReply =
  | { readonly ok: true }
  | { readonly ok: false; readonly unsupported: true; readonly message: string }
  | { readonly ok: false; readonly unsupported: false; readonly code: string; readonly detail: string }

const reply = (job: TranscodeJob): TranscodeReply => {
  try {
    // a temporary file renamed into place: a reader never sees a half-written MP3
    writeDurably(job.target, wavToMp3(fs.readFileSync(job.original)))
    return { ok: true }
  } catch (e) {
    if (e instanceof UnsupportedAudio) return { ok: false, unsupported: true, message: e.message }
    return { ok: false, unsupported: false, code: errnoCode(e), detail: e instanceof Error ? (e.stack ?? e.message) : String(e) }
  }
}

parentPort?.postMessage(reply(workerData as TranscodeJob))
