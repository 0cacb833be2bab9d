/**
 * WAV → MP3 off the event loop: each transcode runs in a worker thread of its own (started
 * for it, gone after it: a recording is transcoded once, so no idle threads are kept, and a
 * failed encoder cannot affect the next job), at most MAX_CONCURRENT at a time (the rest
 * wait their turn), and requests for one recording share one transcode. A started transcode runs to its end even
 * when every client that asked has gone: its MP3 is cached for the retry, and the cache
 * file only ever appears whole (written to a temporary file, then renamed).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Worker } from "node:worker_threads"
import { Deferred, Effect, FiberId } from "effect"
import { FileSaveFailed } from "../api/Errors.js"
import { errnoCode } from "../shared/Errno.js"
import { UnsupportedAudio } from "./UnsupportedAudio.js"
import type { TranscodeJob, TranscodeReply } from "./TranscodeWorker.js"

/**
 * Two: each transcode holds a core (and ~3× the WAV's size in memory) for seconds; on the
 * small boxes the bridge runs on, more at once only slow each other and the requests.
 */
const MAX_CONCURRENT = 2

type TranscodeError = UnsupportedAudio | FileSaveFailed

const failed = (reason: string) => new FileSaveFailed({ message: `transcoding failed (${reason})` })

/** The answer names the error's code; the log has the whole error, paths included. */
const failedWith = (code: string, detail: unknown) => Effect.zipRight(Effect.logError("a transcode failed", detail), Effect.fail(failed(code)))

/** What a worker stopped half-way leaves: `writeDurably`'s temporary files beside the target. */
const removeParts = (target: string) => {
  const dir = path.dirname(target)
  const prefix = `${path.basename(target)}.`
  try {
    for (const name of fs.readdirSync(dir)) if (name.startsWith(prefix) && name.endsWith(".part")) fs.rmSync(path.join(dir, name), { force: true })
  } catch {
    // the directory is gone: nothing left behind in it
  }
}

export class Transcoder extends Effect.Service<Transcoder>()("Transcoder", {
  scoped: Effect.gen(function* () {
    const slots = yield* Effect.makeSemaphore(MAX_CONCURRENT)
    /** cache path → the transcode writing it */
    const running = new Map<string, Deferred.Deferred<void, TranscodeError>>()
    const workers = new Map<Worker, string>()
    const scope = yield* Effect.scope

    // at shutdown a transcode is stopped, not left writing under a data directory being closed
    yield* Effect.addFinalizer(() =>
      Effect.promise(async () => {
        const stopping = [...workers].map(async ([worker, target]) => {
          await worker.terminate()
          removeParts(target)
        })
        workers.clear()
        await Promise.all(stopping)
      })
    )

    const inWorker = (job: TranscodeJob) =>
      Effect.async<void, TranscodeError>((resume) => {
        const worker = new Worker(new URL("./transcode-worker.mjs", import.meta.url), { workerData: job })
        workers.set(worker, job.target)
        worker.once("message", (reply: TranscodeReply) => {
          if (reply.ok) resume(Effect.void)
          else if (reply.unsupported) resume(Effect.fail(new UnsupportedAudio({ message: reply.message })))
          else resume(failedWith(reply.code, reply.detail))
        })
        worker.once("error", (e) => resume(failedWith(errnoCode(e), e)))
        // after the message the exit is ignored (only the first resume counts)
        worker.once("exit", (code) => {
          workers.delete(worker)
          resume(Effect.fail(failed(`the worker stopped with exit code ${code}`)))
        })
        return Effect.promise(() => worker.terminate())
      })

    /** Makes `target` the MP3 of the WAV at `original`, unless it exists already. */
    const transcodeOnce = (original: string, target: string): Effect.Effect<void, TranscodeError> =>
      Effect.suspend(() => {
        const joined = running.get(target)
        if (joined) return Deferred.await(joined)
        const done = Deferred.unsafeMake<void, TranscodeError>(FiberId.none)
        running.set(target, done)
        const work = slots.withPermits(1)(
          // looked at again once a slot is ours: a transcode that just finished has made it
          Effect.suspend(() => (fs.existsSync(target) ? Effect.void : inWorker({ original, target })))
        )
        return work.pipe(
          Effect.exit,
          Effect.flatMap((exit) => Deferred.done(done, exit)),
          Effect.ensuring(Effect.sync(() => running.delete(target))),
          // not the asking request's fiber: its client leaving must not stop the others' transcode;
          // the service's scope: the bridge shutting down does
          Effect.forkIn(scope),
          Effect.zipRight(Deferred.await(done))
        )
      })

    return { transcodeOnce } as const
  })
}) {}
