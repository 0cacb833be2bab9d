/**
 * The rules that tell a burst of pushes from the group commit's batches (src/db/Bursts.ts), with
 * the times given: how long a burst is held, at most, and when a burst after a pause is held
 * afresh rather than going on with the last one's time.
 */
import { describe, expect, it } from "vitest"
import { makeBursts } from "../src/db/Bursts.js"

const rules = { busyForMs: 200, maxMs: 10_000 }

/** busy batches every `everyMs` from `from` up to (not including) `to` */
const batches = (b: ReturnType<typeof makeBursts>, from: number, to: number, everyMs = 50) => {
  const began: Array<number> = []
  for (let t = from; t < to; t += everyMs) if (b.busyBatch(t)) began.push(t)
  return began
}

describe("bursts", () => {
  it("are held from their first busy batch until busyForMs after their last", () => {
    const b = makeBursts(rules)
    expect(b.holding(1_000)).toBe(false)
    expect(batches(b, 1_000, 3_000)).toEqual([1_000])
    expect(b.holding(2_999)).toBe(true)
    // the last batch at 2,950: held until 3,150
    expect(b.endsAt()).toBe(3_150)
    expect(b.holding(3_149)).toBe(true)
    expect(b.holding(3_150)).toBe(false)
  })

  it("are held maxMs at most: load that keeps up past it is steady, and not held again while it lasts", () => {
    const b = makeBursts(rules)
    expect(batches(b, 0, 30_000)).toEqual([0])
    expect(b.holding(9_999)).toBe(true)
    expect(b.holding(10_000)).toBe(false)
    expect(b.holding(29_999)).toBe(false)
  })

  it("after a pause at least as long as the last hold, a burst is held afresh", () => {
    const b = makeBursts(rules)
    batches(b, 0, 2_000) // held until 2,150: 2,150 ms
    expect(batches(b, 4_300, 6_000)).toEqual([4_300])
    expect(b.holding(5_999)).toBe(true)
    // a burst that was held its longest needs as long a pause to be held again
    const c = makeBursts(rules)
    batches(c, 0, 12_000)
    expect(batches(c, 12_150 + 9_000, 22_000)).toEqual([])
    expect(c.holding(21_500)).toBe(false)
    expect(batches(c, 40_000, 41_000)).toEqual([40_000])
    expect(c.holding(40_500)).toBe(true)
  })

  it("a load that pauses for a moment every few seconds is held maxMs in all, not nearly all the time", () => {
    const b = makeBursts(rules)
    let held = 0
    // for a minute: 3 s of pushes (a busy batch every 50 ms), then 300 ms without (more than busyForMs)
    for (let t = 0; t < 60_000; t += 10) {
      if (t % 3_300 < 3_000 && t % 50 === 0) b.busyBatch(t)
      if (b.holding(t)) held += 10
    }
    // the bursts after the first go on with its time, so the holding stops 10 s after it began
    expect(held).toBeLessThanOrEqual(10_000)
    expect(held).toBeGreaterThan(9_000)
    // ... and once the load stops for as long as it was held, the next burst is held afresh
    // (the last busy batch at 59,950: believed busy until 60,150)
    expect(b.busyBatch(60_150 + 10_000)).toBe(true)
    expect(b.holding(70_200)).toBe(true)
  })

  it("count the time held exactly: each stretch from its first busy batch to its end, pauses and steady load past maxMs not counted", () => {
    const b = makeBursts(rules)
    expect(b.heldMs(5_000)).toBe(0)
    batches(b, 1_000, 2_000) // held 1,000 → 2,150
    expect(b.heldMs(1_500)).toBe(500)
    expect(b.heldMs(9_000)).toBe(1_150)
    expect(b.stretch()).toEqual({ from: 1_000, cut: false })
    // a pause shorter than that: the same burst goes on, the pause not counted
    batches(b, 2_500, 3_000) // held 2,500 → 3,150
    expect(b.heldMs(9_000)).toBe(1_150 + 650)
    // steady load: held until 10 s after the burst began (1,000 → 11,000), then not
    batches(b, 3_100, 30_000)
    expect(b.heldMs(40_000)).toBe(1_150 + (11_000 - 2_500))
    expect(b.stretch()).toEqual({ from: 2_500, cut: true })
    // a fresh burst after a long enough pause adds its own
    batches(b, 50_000, 50_100) // held 50,000 → 50,250
    expect(b.heldMs(60_000)).toBe(1_150 + 8_500 + 250)
  })
})
