/**
 * Ingest past a burst: the ingest bench's load (32 connections, distinct cdrIds, one target
 * delivering to a local receiver in another process) kept up for 30 s, against bare express
 * under the same load, in alternating rounds. A target's deliveries wait while pushes arrive in
 * a burst, for at most `BURST_RULES.maxMs` (10 s, src/db/Bursts.ts): the rate of seconds 12–30 is what ingest keeps while
 * the worker delivers at the target's full concurrency meanwhile (steady load), beside the rate
 * of the first 10 s (the burst, deliveries held).
 */
import { load, median, startBridge } from "./ingest.bench.js"
import { startChild } from "./support/child.js"

const RUN_S = Number(process.env.BENCH_STEADY_S ?? 30)
const HELD_S = 10
const FROM_S = 12
const ROUNDS = 3

/** One run of `RUN_S`: answers per second during the first `HELD_S` and from `FROM_S` to the end, and the receiver's count at those marks. */
const windowed = async (port: number, firstId: number, delivered: () => Promise<number>) => {
  let answers = 0
  const marks: Array<Promise<{ answers: number; delivered: number }>> = []
  const mark = (s: number) =>
    new Promise<{ answers: number; delivered: number }>((resolve) => setTimeout(() => {
      const at = answers
      void delivered().then((d) => resolve({ answers: at, delivered: d }))
    }, s * 1000))
  const startDelivered = await delivered()
  marks.push(mark(HELD_S), mark(FROM_S))
  const result = await load(port, firstId, RUN_S, () => answers++)
  const [held, from] = await Promise.all(marks)
  const end = { answers, delivered: await delivered() }
  return {
    result,
    heldRate: held!.answers / HELD_S,
    steadyRate: (end.answers - from!.answers) / (RUN_S - FROM_S),
    deliveredHeld: held!.delivered - startDelivered,
    deliveredSteady: (end.delivered - from!.delivered) / (RUN_S - FROM_S)
  }
}

export const run = async () => {
  const baseline = await startChild("bench/support/noop-server.mjs", [], {}, /listening (\d+)/)
  const sink = await startChild("bench/support/sink-server.ts", [], {}, /listening (\d+)/)
  const delivered = async () => Number(await (await fetch(`http://127.0.0.1:${sink.port}/count`)).text())
  const forwarding = await startBridge([{ name: "sink", url: `http://127.0.0.1:${sink.port}/hook`, events: ["call.*"], concurrency: 16 }])
  /** until the receiver's count stops moving: the last run's backlog delivered */
  const settled = async () => {
    for (let last = -1, now = await delivered(); now !== last; last = now, now = await delivered()) await new Promise((r) => setTimeout(r, 1000))
  }
  await load(baseline.port, 1, 5)
  await load(forwarding.child.port, 100_000_000, 5)
  await settled()
  const rounds: Array<{ base: Awaited<ReturnType<typeof windowed>>; fwd: Awaited<ReturnType<typeof windowed>> }> = []
  for (let i = 0; i < ROUNDS; i++) {
    const base = await windowed(baseline.port, 1, delivered)
    const fwd = await windowed(forwarding.child.port, 200_000_000 + 10_000_000 * i, delivered)
    await settled()
    rounds.push({ base, fwd })
  }
  await forwarding.stop()
  await sink.stop()
  await baseline.stop()
  const held = rounds.map((r) => r.fwd.heldRate / r.base.heldRate)
  const steady = rounds.map((r) => r.fwd.steadyRate / r.base.steadyRate)
  return [
    `ingest kept up ${RUN_S} s with one target delivering (32 connections, ${ROUNDS} alternating rounds against bare express)`,
    ...rounds.map((r, i) =>
      `  round ${i + 1}: express ${r.base.heldRate.toFixed(0)}/s then ${r.base.steadyRate.toFixed(0)}/s; bridge ${r.fwd.heldRate.toFixed(0)}/s for the first ${HELD_S} s (${r.fwd.deliveredHeld} delivered meanwhile), ${r.fwd.steadyRate.toFixed(0)}/s from ${FROM_S} s on (${r.fwd.deliveredSteady.toFixed(0)} delivered/s meanwhile); p99 ${r.fwd.result.latency.p99} ms against ${r.base.result.latency.p99} ms`
    ),
    `  ratio during the burst (deliveries held): ${held.map((x) => x.toFixed(2)).join(", ")} -> median ${median(held).toFixed(2)}`,
    `  ratio past it (steady load, delivering at full concurrency): ${steady.map((x) => x.toFixed(2)).join(", ")} -> median ${median(steady).toFixed(2)}`
  ]
}
