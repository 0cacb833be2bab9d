/**
 * Prometheus figures (`GET /metrics`). One registry per app instance (tests run several in
 * one process), with Node's default process metrics. Domains add their own instruments
 * through `registry`.
 */
import { Effect } from "effect"
import * as prom from "prom-client"

export class Metrics extends Effect.Service<Metrics>()("Metrics", {
  sync: () => {
    const registry = new prom.Registry()
    prom.collectDefaultMetrics({ register: registry, prefix: "bridge_" })
    const httpRequests = new prom.Histogram({
      name: "bridge_http_request_duration_seconds",
      help: "HTTP requests by route and status",
      labelNames: ["route", "method", "status"] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers: [registry]
    })
    const httpAborted = new prom.Counter({
      name: "bridge_http_requests_aborted_total",
      help: "Requests whose client went away before the answer; their work was interrupted",
      labelNames: ["route"] as const,
      registers: [registry]
    })
    const apiCalls = new prom.Counter({
      name: "bridge_api_calls_total",
      help: "jsondata.html calls by method and answer code",
      labelNames: ["method", "code"] as const,
      registers: [registry]
    })
    const deliveries = new prom.Counter({
      name: "bridge_delivery_attempts_total",
      help: "Delivery attempts by target and outcome (delivered, retry, dead: a retry that exhausted the schedule, refused, unsendable)",
      labelNames: ["target", "outcome"] as const,
      registers: [registry]
    })
    return { registry, httpRequests, httpAborted, apiCalls, deliveries } as const
  }
}) {}
