/** The delivery worker's decisions, as plain functions: no server, no HTTP, no polling. */
import { SqlError } from "@effect/sql/SqlError"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Exit, Fiber, TestClock } from "effect"
import { RECORD_WINDOW_MS, recordRetry } from "../src/forwarding/Decisions.js"

const sqliteError = (code: string) => new SqlError({ cause: Object.assign(new Error(code), { code }), message: "Failed to execute statement" })

describe("an outcome that could not be written", () => {
  /** a write failing with `code` every time, tried again as the worker does; answers when each try ran */
  const failingWrite = (code: string) =>
    Effect.gen(function* () {
      const tries: Array<number> = []
      const write = Effect.gen(function* () {
        tries.push(yield* TestClock.currentTimeMillis)
        return yield* Effect.fail(sqliteError(code))
      })
      const fiber = yield* Effect.fork(Effect.retry(write, recordRetry))
      // past the window: every sleep of the backoff on the way is run
      yield* TestClock.adjust(Duration.millis(RECORD_WINDOW_MS + 5_000))
      return { exit: yield* Fiber.await(fiber), tries }
    })

  it.effect("is written again while storage is unavailable, for the window from the first try, then given up", () =>
    Effect.gen(function* () {
      for (const code of ["SQLITE_FULL", "SQLITE_BUSY", "SQLITE_IOERR_WRITE", "SQLITE_READONLY"]) {
        const start = yield* TestClock.currentTimeMillis
        const { exit, tries } = yield* failingWrite(code)
        expect(Exit.isFailure(exit)).toBe(true)
        expect(tries.length).toBeGreaterThan(10)
        // 100 ms doubling, never more than 2 s apart
        expect(tries[1]! - tries[0]!).toBe(100)
        for (let i = 1; i < tries.length; i++) expect(tries[i]! - tries[i - 1]!).toBeLessThanOrEqual(2_000)
        expect(tries.at(-1)! - start).toBeLessThanOrEqual(RECORD_WINDOW_MS + 2_000)
        expect(tries.at(-1)! - start).toBeGreaterThanOrEqual(RECORD_WINDOW_MS - 2_000)
      }
    }))

  it.effect("is not written again when the write itself is wrong: it would fail the same way", () =>
    Effect.gen(function* () {
      for (const code of ["SQLITE_CONSTRAINT_CHECK", "SQLITE_ERROR", "SQLITE_MISMATCH"]) {
        const { exit, tries } = yield* failingWrite(code)
        expect(Exit.isFailure(exit)).toBe(true)
        expect(tries).toHaveLength(1)
      }
    }))

  it.effect("has its whole window however long the send before it took", () =>
    Effect.gen(function* () {
      // a send that ran its whole time-out and more (a rate limit's wait before it)
      yield* TestClock.adjust(Duration.minutes(5))
      const start = yield* TestClock.currentTimeMillis
      const { tries } = yield* failingWrite("SQLITE_FULL")
      expect(tries.at(-1)! - start).toBeGreaterThanOrEqual(RECORD_WINDOW_MS - 2_000)
    }))
})
