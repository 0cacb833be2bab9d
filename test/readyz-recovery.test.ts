/**
 * /readyz after another process let go of the database: ready again by itself, without a
 * write to prove it (a load balancer gating on /readyz would never send that write).
 */
import * as http from "node:http"
import * as path from "node:path"
import Database from "better-sqlite3"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { holdWriteLock } from "./support/Lock.js"
import { eventually } from "./support/Receiver.js"
import { startTestServer, type TestServer } from "./support/TestServer.js"

const push = async (server: TestServer, cbkId: string) => {
  const res = await fetch(`${server.url}/api/callback.json`, { method: "POST", body: new URLSearchParams({ cbkId, cbkStatus: "1" }) })
  return (await res.json()) as { code: number; message: string }
}

const readyz = async (server: TestServer) => {
  const res = await fetch(`${server.url}/readyz`)
  return { httpStatus: res.status, ...((await res.json()) as { status: string; writes: { status: string }; worker?: { status: string } }) }
}

const storedPushes = (dataDir: string) => {
  const db = new Database(path.join(dataDir, "bridge.db"), { readonly: true })
  try {
    return (db.prepare(`SELECT json_extract(data, '$.cbkId') AS id FROM events WHERE source = 'push:callback' ORDER BY id`).all() as Array<{ id: string }>).map((r) => String(r.id))
  } finally {
    db.close()
  }
}

describe("writes that gave up waiting for another process's lock", () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startTestServer({ db: { synchronous: "FULL", busyTimeoutMs: 300 } })
  })
  afterAll(async () => {
    await server.close()
  })

  it("leave /readyz ready once the lock is let go, with no write since", async () => {
    expect((await push(server, "1")).code).toBe(0)
    const holder = await holdWriteLock(path.join(server.dataDir, "bridge.db"), 1_000)
    const during = await push(server, "2")
    expect(during.code).toBe(-6)
    await holder.released
    const ready = await eventually(async () => {
      const r = await readyz(server)
      return r.httpStatus === 200 && r
    }, 3_000, () => readyz(server))
    expect(ready).toMatchObject({ status: "ready", writes: { status: "ok" } })
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
    // the refused push was not stored half-way
    expect(storedPushes(server.dataDir)).toEqual(["1"])
  })
})

/** A receiver that holds each request until told how to answer. */
const holdingReceiver = () =>
  new Promise<{ url: string; held: () => number; answer: (status: number) => void; close: () => Promise<void> }>((resolve) => {
    const waiting: Array<http.ServerResponse> = []
    let mode: number | null = null
    const server = http.createServer((req, res) => {
      req.resume()
      req.on("end", () => (mode === null ? waiting.push(res) : res.writeHead(mode).end()))
    })
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number }
      resolve({
        url: `http://127.0.0.1:${port}/hook`,
        held: () => waiting.length,
        answer: (status) => {
          mode = status
          for (const res of waiting.splice(0)) res.writeHead(status).end()
        },
        close: () => new Promise((done) => { server.closeAllConnections(); server.close(() => done()) })
      })
    })
  })

describe("a claim that failed while no target is left to claim for", () => {
  let server: TestServer
  let rx: Awaited<ReturnType<typeof holdingReceiver>>
  beforeAll(async () => {
    rx = await holdingReceiver()
    server = await startTestServer({
      db: { synchronous: "FULL", busyTimeoutMs: 300 },
      // one failure opens the circuit for a minute: no claim for the target in that time
      forwarding: { pollIntervalMs: 50, circuitThreshold: 1, circuitCooldownMs: 60_000, retentionDays: 30 },
      targets: [{ name: "crm", url: rx.url, events: ["callback.*"], concurrency: 2, timeoutMs: 20_000, retry: { scheduleMs: [0, 100, 100] } }]
    })
  })
  afterAll(async () => {
    await server.close()
    await rx.close()
  })

  it("does not leave the worker degraded", async () => {
    expect((await push(server, "11")).code).toBe(0)
    await eventually(() => rx.held() === 1)
    const holder = await holdWriteLock(path.join(server.dataDir, "bridge.db"), 1_500)
    // the free slot's claims meet the lock and fail
    await eventually(async () => (await readyz(server)).worker?.status === "degraded")
    // the send in flight fails: the circuit opens, nothing is claimed for the target any more
    rx.answer(503)
    await holder.released
    const ready = await eventually(async () => {
      const r = await readyz(server)
      return r.httpStatus === 200 && r
    }, 5_000, () => readyz(server))
    expect(ready).toMatchObject({ status: "ready", worker: { status: "ok" }, writes: { status: "ok" } })
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
    expect(storedPushes(server.dataDir)).toEqual(["11"])
  })
})
