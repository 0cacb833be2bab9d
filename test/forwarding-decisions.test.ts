/** The delivery worker's decisions, as plain functions: no server, no HTTP, no polling. */
import { SqlError } from "@effect/sql/SqlError"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Exit, Fiber, TestClock } from "effect"
import {
  capacity,
  type Circuit,
  circuitAfter,
  circuitState,
  CLOSED,
  nextDelay,
  nextState,
  type Outcome,
  outcomeOfAnswer,
  outcomeOfNoAnswer,
  rateSlot,
  RECORD_WINDOW_MS,
  reclaimable,
  recordRetry,
  retryAfterMs
} from "../src/forwarding/Decisions.js"

const NOW = Date.UTC(2026, 0, 1, 12, 0, 0)

describe("what a receiver's answer means", () => {
  it("2xx is delivered", () => {
    for (const status of [200, 201, 204, 299]) expect(outcomeOfAnswer(status, null, NOW)).toEqual({ kind: "delivered", status })
  })

  it("408, 429, 5xx and 3xx (redirects are not followed) are tried again", () => {
    for (const status of [408, 429, 500, 502, 503, 599, 301, 302, 307, 308])
      expect(outcomeOfAnswer(status, null, NOW)).toEqual({ kind: "retry", status, error: `HTTP ${status}`, retryAfterMs: null })
  })

  it("any other answer is a refusal, for good", () => {
    for (const status of [400, 401, 403, 404, 409, 410, 422, 100, 199])
      expect(outcomeOfAnswer(status, null, NOW)).toEqual({ kind: "refused", status, error: `HTTP ${status}: refused by the receiver` })
  })

  it("a Retry-After in seconds or as a date is kept with the retry", () => {
    expect(outcomeOfAnswer(429, "60", NOW)).toMatchObject({ kind: "retry", retryAfterMs: 60_000 })
    expect(outcomeOfAnswer(503, new Date(NOW + 90_000).toUTCString(), NOW)).toMatchObject({ kind: "retry", retryAfterMs: 90_000 })
    // ignored on an answer that is not tried again
    expect(outcomeOfAnswer(404, "60", NOW)).not.toHaveProperty("retryAfterMs")
  })

  it("reads Retry-After leniently: a date past is now, anything else is none", () => {
    expect(retryAfterMs(" 5 ", NOW)).toBe(5_000)
    expect(retryAfterMs("0", NOW)).toBe(0)
    expect(retryAfterMs(new Date(NOW - 60_000).toUTCString(), NOW)).toBe(0)
    for (const header of [null, "", "soon", "1.5e3"]) expect(retryAfterMs(header, NOW)).toBeNull()
  })

  it("no answer (DNS, connection, time-out) is tried again; a request Node refuses is unsendable", () => {
    expect(outcomeOfNoAnswer({ message: "timed out after 100 ms", permanent: false })).toEqual({ kind: "retry", status: null, error: "timed out after 100 ms", retryAfterMs: null })
    expect(outcomeOfNoAnswer({ message: "ECONNREFUSED: connect", permanent: false })).toMatchObject({ kind: "retry" })
    expect(outcomeOfNoAnswer({ message: "the request could not be sent: bad header", permanent: true })).toEqual({
      kind: "unsendable",
      reason: "unsendable",
      error: "the request could not be sent: bad header"
    })
  })
})

describe("when a delivery is tried again", () => {
  const retry = (retryAfter: number | null = null): Outcome => ({ kind: "retry", status: 503, error: "HTTP 503", retryAfterMs: retryAfter })

  it("after the schedule's delay, ±20 %", () => {
    expect(nextDelay(1_000, null, 0)).toBe(800)
    expect(nextDelay(1_000, null, 0.5)).toBe(1_000)
    expect(nextDelay(1_000, null, 0.999999)).toBe(1_200)
  })

  it("after the receiver's Retry-After, kept between the scheduled delay and twice it (no jitter)", () => {
    expect(nextDelay(10_000, 60_000, 0)).toBe(20_000)
    expect(nextDelay(10_000, 15_000, 0)).toBe(15_000)
    expect(nextDelay(10_000, 1_000, 0)).toBe(10_000)
    expect(nextDelay(10_000, 0, 0.9)).toBe(10_000)
  })

  it("the nth attempt's retry waits the schedule's nth delay; past the schedule's end the delivery is exhausted", () => {
    const schedule = [0, 1_000, 5_000]
    expect(nextState(retry(), 1, schedule, NOW, 0.5)).toEqual({ status: "pending", at: NOW + 1_000 })
    expect(nextState(retry(), 2, schedule, NOW, 0.5)).toEqual({ status: "pending", at: NOW + 5_000 })
    expect(nextState(retry(60_000), 2, schedule, NOW, 0.5)).toEqual({ status: "pending", at: NOW + 10_000 })
    expect(nextState(retry(), 3, schedule, NOW, 0.5)).toEqual({ status: "dead", reason: "exhausted" })
  })

  it("delivered, refused and unsendable are final whatever the schedule", () => {
    const schedule = [0, 1_000, 5_000]
    expect(nextState({ kind: "delivered", status: 200 }, 1, schedule, NOW)).toEqual({ status: "delivered" })
    expect(nextState({ kind: "refused", status: 404, error: "HTTP 404" }, 1, schedule, NOW)).toEqual({ status: "dead", reason: "refused" })
    expect(nextState({ kind: "unsendable", reason: "transform", error: "transform failed" }, 1, schedule, NOW)).toEqual({ status: "dead", reason: "transform" })
    expect(nextState({ kind: "unsendable", reason: "unsendable", error: "x" }, 1, schedule, NOW)).toEqual({ status: "dead", reason: "unsendable" })
  })
})

describe("a target's circuit", () => {
  const policy = { threshold: 3, cooldownMs: 30_000 }
  const run = (kinds: ReadonlyArray<Outcome["kind"]>, from: Circuit = CLOSED, now = NOW) => {
    let c = from
    const events: Array<string> = []
    for (const kind of kinds) {
      const after = circuitAfter(c, kind, now, policy)
      if (after.opened) events.push("opened")
      if (after.recovered) events.push("recovered")
      c = after.circuit
    }
    return { circuit: c, events }
  }

  it("opens at the threshold of consecutive failures of the target, once", () => {
    expect(run(["retry", "retry"])).toEqual({ circuit: { failures: 2, openUntil: 0 }, events: [] })
    expect(run(["retry", "retry", "retry"])).toEqual({ circuit: { failures: 3, openUntil: NOW + 30_000 }, events: ["opened"] })
    // a failure while open (a probe) pushes the cool-down on, and is not a second opening
    expect(run(["retry", "retry", "retry", "retry"]).events).toEqual(["opened"])
  })

  it("is not moved by a refusal of one event or an event that cannot be sent", () => {
    expect(run(["retry", "retry", "refused", "unsendable"])).toEqual({ circuit: { failures: 2, openUntil: 0 }, events: [] })
  })

  it("closes on a delivery: recovered if it was open, the count of failures reset either way", () => {
    expect(run(["retry", "retry", "delivered", "retry", "retry"])).toEqual({ circuit: { failures: 2, openUntil: 0 }, events: [] })
    expect(run(["retry", "retry", "retry", "delivered"])).toEqual({ circuit: CLOSED, events: ["opened", "recovered"] })
  })

  it("is closed, open until its cool-down ends, then half-open", () => {
    const open = { failures: 3, openUntil: NOW + 30_000 }
    expect(circuitState(CLOSED, NOW)).toBe("closed")
    expect(circuitState(open, NOW)).toBe("open")
    expect(circuitState(open, NOW + 29_999)).toBe("open")
    expect(circuitState(open, NOW + 30_000)).toBe("half-open")
  })

  it("lets the target's concurrency through closed, nothing open, one probe at a time half-open", () => {
    const open = { failures: 3, openUntil: NOW + 30_000 }
    expect(capacity(CLOSED, NOW, 4, 0)).toBe(4)
    expect(capacity(CLOSED, NOW, 4, 3)).toBe(1)
    expect(capacity(CLOSED, NOW, 4, 4)).toBe(0)
    expect(capacity(open, NOW, 4, 0)).toBe(0)
    expect(capacity(open, NOW + 30_000, 4, 0)).toBe(1)
    expect(capacity(open, NOW + 30_000, 4, 1)).toBe(0)
    // sends still in flight from before it opened hold the probe back
    expect(capacity(open, NOW + 30_000, 4, 3)).toBe(0)
  })
})

describe("a target's rate limit", () => {
  it("spaces sends 1/rate apart, the first at once", () => {
    const first = rateSlot(0, NOW, 4)
    expect(first).toEqual({ waitMs: 0, nextSendAt: NOW + 250 })
    const second = rateSlot(first.nextSendAt, NOW, 4)
    expect(second).toEqual({ waitMs: 250, nextSendAt: NOW + 500 })
    // idle since: no credit saved up
    expect(rateSlot(second.nextSendAt, NOW + 10_000, 4)).toEqual({ waitMs: 0, nextSendAt: NOW + 10_250 })
  })
})

describe("a delivery left in flight", () => {
  it("is due again once its lease has ended, unless this process is still at it", () => {
    expect(reclaimable({ id: 1, lockExpiresAt: NOW - 1 }, NOW, new Set())).toBe(true)
    expect(reclaimable({ id: 1, lockExpiresAt: NOW }, NOW, new Set())).toBe(true)
    expect(reclaimable({ id: 1, lockExpiresAt: NOW + 1 }, NOW, new Set())).toBe(false)
    // its send or its outcome's write still running here, past the lease
    expect(reclaimable({ id: 1, lockExpiresAt: NOW - 60_000 }, NOW, new Set([1]))).toBe(false)
  })

  it("with no lease at all (left by an older version) is due again at once", () => {
    expect(reclaimable({ id: 2, lockExpiresAt: null }, NOW, new Set([1]))).toBe(true)
  })
})

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
