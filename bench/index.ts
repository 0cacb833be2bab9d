/**
 * The benchmarks `npm run bench` runs, in order. Each prints ratios against a baseline
 * measured in the same run, since these machines are noisy. `npm run bench -- <name>` runs one.
 */
export interface Bench {
  readonly name: string
  readonly run: () => Promise<ReadonlyArray<string>>
  /** run only when named */
  readonly only?: boolean
}

export const benches: ReadonlyArray<Bench> = [
  { name: "findDialrecord", run: () => import("./findDialrecord.bench.js").then((m) => m.run()) },
  { name: "ingest", run: () => import("./ingest.bench.js").then((m) => m.run()) },
  { name: "box", run: () => import("./box.bench.js").then((m) => m.run()) },
  // not in the default run: the tester's tool, not the bridge's own speed
  { name: "replay", run: () => import("./replay.bench.js").then((m) => m.run()), only: true },
  // not in the default run: filling 1M customers takes a while (BENCH_CUSTOMERS_SIZES to choose)
  { name: "customers", run: () => import("./customers.bench.js").then((m) => m.run()), only: true },
  // not in the default run: fills 100k work orders (BENCH_WORKORDERS_SIZE to choose)
  { name: "workorders", run: () => import("./workorders.bench.js").then((m) => m.run()), only: true },
  // not in the default run: a 10,000-number outbound task dialled to completion (about a minute)
  { name: "tasks", run: () => import("./tasks.bench.js").then((m) => m.run()), only: true },
  // not in the default run: what the call counts (migration 0028) cost a write of cdrs
  { name: "cdr-counts", run: () => import("./cdrCounts.bench.js").then((m) => m.run()), only: true },
  // not in the default run: a 50k backlog drained (BENCH_FORWARD_N to choose), against the receiver hammered directly
  { name: "forward", run: () => import("./forward.bench.js").then((m) => m.runForward()), only: true },
  // not in the default run: a 1M backlog (a few minutes; BENCH_OUTAGE_N to choose)
  { name: "outage", run: () => import("./forward.bench.js").then((m) => m.runOutage()), only: true },
  // not in the default run: express with only a push's writes, against express and the bridge (what 0.8 would take)
  { name: "floor", run: () => import("./floor.bench.js").then((m) => m.run()), only: true },
  // not in the default run: the short guard of the two above
  { name: "quick", run: () => import("./quick.bench.js").then((m) => m.run()), only: true },
  // not in the default run: ingest kept up past a burst (30 s runs), where deliveries share the thread again
  { name: "ingest-steady", run: () => import("./ingestSteady.bench.js").then((m) => m.run()), only: true }
]
