/**
 * One transcode in a worker thread (started by Transcoder.ts through transcode-worker.mjs):
 * reads the WAV, encodes it, and writes the MP3 to its cache path atomically. lamejs is
 * synchronous and takes seconds for a long call; here it blocks only this thread.
 */
import * as fs from "node:fs"
import { parentPort, workerData } from "node:worker_threads"
import { writeDurably } from "./Files.js"
import { UnsupportedAudio, wavToMp3 } from "./Transcode.js"

export interface TranscodeJob {
  readonly original: string
  readonly target: string
}

export type TranscodeReply = { readonly ok: true } | { readonly ok: false; readonly unsupported: boolean; readonly message: string }

const reply = (job: TranscodeJob): TranscodeReply => {
  try {
    // a temporary file renamed into place: a reader never sees a half-written MP3
    writeDurably(job.target, wavToMp3(fs.readFileSync(job.original)))
    return { ok: true }
  } catch (e) {
    return { ok: false, unsupported: e instanceof UnsupportedAudio, message: e instanceof Error ? e.message : String(e) }
  }
}

parentPort?.postMessage(reply(workerData as TranscodeJob))
