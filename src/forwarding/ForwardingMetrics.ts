/**
 * What an operator graphs and alerts on, read when Prometheus scrapes (`GET /metrics`):
 * deliveries pending, held and dead per target, the oldest pending one's age, each target's
 * circuit and the database's size (events by type are counted as they are raised: Outbox). Counted by indexed statements
 * (deliveries_status), so a scrape costs the same whatever the backlog's age.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect, Layer } from "effect"
import * as prom from "prom-client"
import { AppConfig } from "../config/AppConfig.js"
import { Sqlite } from "../db/Sqlite.js"
import { HELD } from "../events/Outbox.js"
import { Metrics } from "../http/Metrics.js"
import { Lanes } from "./Lanes.js"
import { Targets } from "./Targets.js"

const CIRCUIT = { closed: 0, "half-open": 1, open: 2 } as const

export const forwardingMetricsLayer = Layer.effectDiscard(
  Effect.gen(function* () {
    const { registry } = yield* Metrics
    const { prepared } = yield* Sqlite
    const lanes = yield* Lanes
    const targets = yield* Targets
    const { dataDir } = yield* AppConfig
    // each count from an index alone (deliveries_status, deliveries_due): a scrape reads no delivery row
    const byStatus = () => prepared(`SELECT target, status, count(*) AS n FROM deliveries WHERE status IN ('pending', 'dead') GROUP BY target, status`).all() as Array<{ target: string; status: string; n: number }>
    const heldBy = () => prepared(`SELECT target, count(*) AS n FROM deliveries WHERE status = 'pending' AND next_attempt_at = ? GROUP BY target`).all(HELD) as Array<{ target: string; n: number }>
    /** a scrape must answer: a figure that cannot be read now is left out, not a failed /metrics */
    const safely = (work: () => void) => {
      try {
        work()
      } catch {
        // the next scrape tries again
      }
    }
    new prom.Gauge({
      name: "bridge_deliveries",
      help: "Deliveries waiting (pending), held behind a dead letter of their call (held), or dead letters (dead), per target",
      labelNames: ["target", "state"] as const,
      registers: [registry],
      collect() {
        this.reset()
        safely(() => {
          for (const t of targets.snapshot()) for (const state of ["pending", "held", "dead"]) this.set({ target: t.name, state }, 0)
          const held = new Map(heldBy().map((r) => [r.target, r.n]))
          for (const r of byStatus()) {
            if (r.status === "dead") this.set({ target: r.target, state: "dead" }, r.n)
            else {
              this.set({ target: r.target, state: "held" }, held.get(r.target) ?? 0)
              this.set({ target: r.target, state: "pending" }, r.n - (held.get(r.target) ?? 0))
            }
          }
        })
      }
    })
    new prom.Gauge({
      name: "bridge_delivery_oldest_pending_seconds",
      help: "Age of the oldest delivery waiting to be sent (held ones included), 0 when none",
      registers: [registry],
      collect() {
        // the oldest is the lowest id (ids grow with time): found in the index, then one row read
        safely(() => {
          const row = prepared(`SELECT created_at AS at FROM deliveries WHERE id = (SELECT min(id) FROM deliveries WHERE status = 'pending')`).get() as { at: number } | undefined
          this.set(row === undefined ? 0 : Math.max(0, (Date.now() - row.at) / 1000))
        })
      }
    })
    new prom.Gauge({
      name: "bridge_target_circuit",
      help: "Each target's circuit: 0 closed, 1 half-open (probing), 2 open",
      labelNames: ["target"] as const,
      registers: [registry],
      collect() {
        this.reset()
        const now = Date.now()
        for (const t of targets.snapshot()) this.set({ target: t.name }, CIRCUIT[lanes.view(t.name, now).state])
      }
    })
    new prom.Gauge({
      name: "bridge_sqlite_bytes",
      help: "Size of the SQLite database with its write-ahead log",
      registers: [registry],
      collect() {
        const file = path.join(dataDir, "bridge.db")
        const size = (f: string) => (fs.existsSync(f) ? fs.statSync(f).size : 0)
        safely(() => this.set(size(file) + size(`${file}-wal`)))
      }
    })
  })
)
