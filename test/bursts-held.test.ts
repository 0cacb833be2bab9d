/**
 * Review of 4c517a7: Bursts.heldMs must be a counter's value — never going down as time goes on —
 * and count exactly the time holding(t) said true, whatever the batches' times.
 */
import { describe, expect, it } from "vitest"
import { makeBursts } from "../src/db/Bursts.js"

const rules = { busyForMs: 200, maxMs: 10_000 }

/** mulberry32: a small seeded generator, so a failure is replayed exactly */
const seeded = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}
const between = (r: () => number, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1))

/** runs of busy batches every 10–100 ms, with quiet gaps of 0–1,500 ms between runs */
const batchTimes = (seed: number, untilMs: number) => {
  const r = seeded(seed)
  const times: Array<number> = []
  let t = between(r, 0, 1_500)
  while (t < untilMs) {
    const runEnd = t + between(r, 0, 12_000)
    for (; t < runEnd && t < untilMs; t += between(r, 10, 100)) times.push(t)
    t += between(r, 0, 1_500)
  }
  return times
}

/** at each ms: its batch first, then whether it is held; heldMs checked against the sum and for going down */
const simulate = (times: ReadonlyArray<number>, untilMs: number) => {
  const b = makeBursts(rules)
  const at = new Set(times)
  let held = 0
  let last = 0
  const wrong: Array<{ t: number; heldMs: number; simulated: number }> = []
  const decreases: Array<{ t: number; from: number; to: number }> = []
  for (let t = 0; t < untilMs; t++) {
    if (at.has(t)) b.busyBatch(t)
    const now = b.heldMs(t)
    if (now < last) decreases.push({ t, from: last, to: now })
    last = now
    if (now !== held && wrong.length < 5) wrong.push({ t, heldMs: now, simulated: held })
    if (b.holding(t)) held++
  }
  return { held, heldMs: b.heldMs(untilMs), wrong, decreases }
}

describe("bursts' time held", () => {
  it("a pause shorter than the hold that runs past the burst's maxMs is not counted as held", () => {
    const b = makeBursts(rules)
    for (let t = 0; t <= 5_000; t += 50) b.busyBatch(t) // held 0 → 5,200
    expect(b.heldMs(9_000)).toBe(5_200)
    expect(b.holding(9_000)).toBe(false)
    // quiet 5,200 → 10,100 (4,900 ms, shorter than the 5,200 held): the same burst, past its 10 s
    expect(b.busyBatch(10_100)).toBe(false)
    expect(b.holding(10_100)).toBe(false)
    // nothing was held between 5,200 and 10,100, so nothing more is counted
    expect(b.heldMs(10_100)).toBe(5_200)
    expect(b.heldMs(20_000)).toBe(5_200)
  })

  it("a stretch that ends when busyForMs runs out exactly at maxMs is not cut", () => {
    const b = makeBursts(rules)
    for (let t = 0; t <= 9_800; t += 50) b.busyBatch(t) // busyUntil 10,000 == from + maxMs
    expect(b.endsAt()).toBe(10_000)
    expect(b.stretch()).toEqual({ from: 0, cut: false })
    expect(b.heldMs(10_000)).toBe(10_000)
  })

  it("random runs of batches: heldMs never goes down and equals the ms holding(t) said true", () => {
    const untilMs = 600_000
    const results = Array.from({ length: 20 }, (_, seed) => ({ seed, ...simulate(batchTimes(seed + 1, untilMs), untilMs) }))
    const bad = results.filter((r) => r.decreases.length > 0 || r.wrong.length > 0 || r.held !== r.heldMs)
    expect(bad.map(({ seed, held, heldMs, wrong, decreases }) => ({ seed, held, heldMs, firstWrong: wrong[0], decreases: decreases.length }))).toEqual([])
  })
})
