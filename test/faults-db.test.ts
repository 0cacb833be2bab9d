/**
 * Storage faults the running bridge must ride out: the database locked by another process
 * (the event loop keeps serving; a push that cannot be stored in time answers -6), and writes
 * failing while deliveries are in flight (they are delivered later by the same process).
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as http from "node:http"
import * as path from "node:path"
import Database from "better-sqlite3"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { holdWriteLock } from "./support/Lock.js"
import { eventually } from "./support/Receiver.js"
import { asAdmin, startTestServer, tempDir, type TestServer } from "./support/TestServer.js"

const push = async (server: TestServer, cbkId: string) => {
  const startedAt = Date.now()
  const res = await fetch(`${server.url}/api/callback.json`, { method: "POST", body: new URLSearchParams({ cbkId, cbkStatus: "1" }) })
  const body = (await res.json()) as { code: number; message: string }
  return { ...body, ms: Date.now() - startedAt }
}

const timed = async (url: string) => {
  const startedAt = Date.now()
  const res = await fetch(url)
  return { status: res.status, ms: Date.now() - startedAt }
}

describe("the database locked by another process", () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startTestServer({ db: { synchronous: "FULL", busyTimeoutMs: 1000 } })
  })
  afterAll(async () => {
    await server.close()
  })

  it("keeps serving while the lock is held, answers -6 once the bound is spent, and stores pushes after", async () => {
    expect((await asAdmin(server, "getBlacklists")).code).toBe(0)
    const ok = await push(server, "101")
    expect(ok.code).toBe(0)
    const holder = await holdWriteLock(path.join(server.dataDir, "bridge.db"), 3_000)
    const heldAt = Date.now()
    const pushing = push(server, "102").then((b) => ({ ...b, at: Date.now() }))
    const listing = asAdmin(server, "addBlacklists", { phones: "13002300000" }).then((b) => ({ ...b, at: Date.now() }))
    // the event loop is free while the push waits for the lock
    const health = await timed(`${server.url}/healthz`)
    expect(health.status).toBe(200)
    expect(health.ms).toBeLessThan(500)
    // reads go on (WAL readers are not held up by another process's write lock): answered
    // before the writes waiting beside them give up
    const read = await asAdmin(server, "getBlacklists")
    expect(read.code).toBe(0)
    const readAt = Date.now()
    const ready = await eventually(async () => {
      const res = await fetch(`${server.url}/readyz`)
      const body = (await res.json()) as { writes: { status: string } }
      return body.writes.status === "locked" && { status: res.status, body }
    })
    expect(ready.status).toBe(503)
    expect(ready.body).toMatchObject({ status: "not ready", database: true, writes: { status: "locked" } })
    const during = await pushing
    expect(during.code).toBe(-6)
    expect(during.message).toMatch(/send it again/)
    // not before the bound
    expect(during.ms).toBeGreaterThanOrEqual(900)
    // an admin write (an @effect/sql transaction) waits for the lock the same way
    const listed = await listing
    expect(listed.code).toBe(-6)
    expect(listed.at - heldAt).toBeGreaterThanOrEqual(900)
    const releasedAt = await holder.released
    // both answered while the other process still held the lock: nothing hung until it let go
    expect(during.at).toBeLessThan(releasedAt)
    expect(listed.at).toBeLessThan(releasedAt)
    expect(readAt).toBeLessThan(Math.min(during.at, listed.at))
    const after = await push(server, "103")
    expect(after.code).toBe(0)
    expect((await asAdmin(server, "getBlacklists")).blaPhone).toEqual([])
    const readyAfter = await fetch(`${server.url}/readyz`)
    expect(readyAfter.status).toBe(200)
    expect((await timed(`${server.url}/healthz`)).status).toBe(200)
    const db = new Database(path.join(server.dataDir, "bridge.db"), { readonly: true })
    try {
      const stored = db.prepare(`SELECT json_extract(data, '$.cbkId') AS id FROM events WHERE source = 'push:callback' ORDER BY id`).all() as Array<{ id: string }>
      // everything acknowledged is there; the refused push was not stored half-way
      expect(stored.map((r) => String(r.id))).toEqual(["101", "103"])
    } finally {
      db.close()
    }
  })
})

/** A receiver that holds each request until told how to answer, and answers at once afterwards. */
const holdingReceiver = () =>
  new Promise<{
    url: string
    /** webhook-id and the status it was answered (null: still held) */
    seen: Array<{ id: string; status: number | null }>
    held: () => number
    answer: (status: number | null) => void
    close: () => Promise<void>
  }>((resolve) => {
    const seen: Array<{ id: string; status: number | null }> = []
    const waiting: Array<{ entry: { id: string; status: number | null }; res: http.ServerResponse }> = []
    let mode: number | null = null
    const server = http.createServer((req, res) => {
      req.resume()
      req.on("end", () => {
        const entry = { id: String(req.headers["webhook-id"]), status: mode }
        seen.push(entry)
        if (mode === null) waiting.push({ entry, res })
        else res.writeHead(mode).end()
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number }
      resolve({
        url: `http://127.0.0.1:${port}/hook`,
        seen,
        held: () => waiting.length,
        answer: (status) => {
          mode = status
          if (status === null) return
          for (const w of waiting.splice(0)) {
            w.entry.status = status
            w.res.writeHead(status).end()
          }
        },
        close: () => new Promise((done) => { server.closeAllConnections(); server.close(() => done()) })
      })
    })
  })

const retries = { scheduleMs: [0, 100, 100, 100, 100, 100, 100, 100, 100, 100] }

const deliveries = (dataDir: string) => {
  const db = new Database(path.join(dataDir, "bridge.db"), { readonly: true })
  try {
    return db.prepare(`SELECT id, webhook_id, status, attempts FROM deliveries ORDER BY id`).all() as Array<{ id: number; webhook_id: string; status: string; attempts: number }>
  } finally {
    db.close()
  }
}

const readyz = async (server: TestServer) => {
  const res = await fetch(`${server.url}/readyz`)
  return { httpStatus: res.status, ...((await res.json()) as { status: string; worker?: { status: string; lastError?: string } }) }
}

/** Fills the file system holding `dir` to the last byte; answers the filler's path. */
const fillDisk = (dir: string) => {
  const filler = path.join(dir, "filler")
  const fd = fs.openSync(filler, "w")
  const chunk = Buffer.alloc(64 * 1024)
  try {
    for (let size = chunk.length; size >= 1; ) {
      try {
        fs.writeSync(fd, chunk, 0, size)
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENOSPC") throw e
        size = Math.floor(size / 2)
      }
    }
  } finally {
    fs.closeSync(fd)
  }
  return filler
}

describe("storage failing while deliveries are in flight (a full disk)", () => {
  // a small file system of its own, so filling it takes the database's room and nobody else's
  const base = tempDir("vb-full-")
  let mounted = false
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=3m", "tmpfs", base], { stdio: "ignore" })
    mounted = true
  } catch {
    mounted = false
  }
  let server: TestServer
  let rx: Awaited<ReturnType<typeof holdingReceiver>>
  beforeAll(async () => {
    if (!mounted) return
    rx = await holdingReceiver()
    server = await startTestServer({
      dataDir: path.join(base, "data"),
      forwarding: { pollIntervalMs: 50, circuitThreshold: 100, circuitCooldownMs: 100, retentionDays: 30 },
      targets: [{ name: "crm", url: rx.url, events: ["callback.*"], timeoutMs: 20_000, retry: retries }]
    })
  })
  afterAll(async () => {
    if (!mounted) return
    await server.close()
    await rx.close()
    execFileSync("umount", [base])
  })

  it.skipIf(!mounted)("(needs root to mount a tmpfs) delivers every delivery with the same process once space returns, degraded in /readyz meanwhile", async () => {
    for (const id of ["201", "202", "203"]) expect((await push(server, id)).code).toBe(0)
    await eventually(() => rx.held() === 3)
    const filler = fillDisk(base)
    // the disk is really full for SQLite: a push cannot be stored
    const refused = await push(server, "204")
    expect(refused.code).toBe(-6)
    // the receiver answers while no outcome can be written
    rx.answer(503)
    rx.answer(200)
    const degraded = await eventually(async () => {
      const r = await readyz(server)
      return r.worker?.status === "degraded" && r
    })
    expect(degraded.httpStatus).toBe(503)
    expect(degraded.worker?.lastError).toBeTruthy()
    expect((await timed(`${server.url}/healthz`)).status).toBe(200)
    fs.rmSync(filler)
    // the same process, no restart: every delivery reaches the receiver
    const all = await eventually(() => {
      const ds = deliveries(server.config.dataDir)
      return ds.length === 3 && ds.every((d) => d.status === "delivered") && ds
    }, 20_000, () => deliveries(server.config.dataDir))
    for (const d of all) expect(rx.seen.filter((s) => s.id === d.webhook_id).map((s) => s.status)).toEqual([503, 200])
    const ready = await eventually(async () => {
      const r = await readyz(server)
      return r.httpStatus === 200 && r
    })
    expect(ready).toMatchObject({ status: "ready", worker: { status: "ok" } })
    // the refused push was not stored half-way; the acknowledged ones all were
    const db = new Database(path.join(server.config.dataDir, "bridge.db"), { readonly: true })
    try {
      const stored = db.prepare(`SELECT json_extract(data, '$.cbkId') AS id FROM events WHERE source = 'push:callback' ORDER BY id`).all() as Array<{ id: string }>
      expect(stored.map((r) => String(r.id))).toEqual(["201", "202", "203"])
    } finally {
      db.close()
    }
    expect((await push(server, "205")).code).toBe(0)
  })
})

describe("deliveries left in flight (their outcome never written)", () => {
  let server: TestServer
  let rx: Awaited<ReturnType<typeof holdingReceiver>>
  beforeAll(async () => {
    rx = await holdingReceiver()
    rx.answer(200)
    server = await startTestServer({
      forwarding: { pollIntervalMs: 50, circuitThreshold: 100, circuitCooldownMs: 100, retentionDays: 30 },
      targets: [{ name: "crm", url: rx.url, events: ["callback.*"], timeoutMs: 20_000, retry: retries }]
    })
  })
  afterAll(async () => {
    await server.close()
    await rx.close()
  })

  const setLease = (ids: ReadonlyArray<number>, lockExpiresAt: number) => {
    const db = new Database(path.join(server.dataDir, "bridge.db"))
    try {
      const update = db.prepare(`UPDATE deliveries SET status = 'in_flight', lock_expires_at = ? WHERE id = ?`)
      db.transaction(() => ids.forEach((id) => update.run(lockExpiresAt, id)))()
    } finally {
      db.close()
    }
  }
  const sent = (webhookId: string) => rx.seen.filter((s) => s.id === webhookId).length

  it("are due again once their lease is over, without a restart; one whose lease still runs is left alone", async () => {
    for (const id of ["301", "302"]) expect((await push(server, id)).code).toBe(0)
    const [expired, leased] = await eventually(() => {
      const ds = deliveries(server.dataDir)
      return ds.length === 2 && ds.every((d) => d.status === "delivered") && ds
    })
    // as a bridge whose outcome writes failed until the end of the lease leaves them
    setLease([expired!.id, leased!.id], Date.now() - 1)
    setLease([leased!.id], Date.now() + 60_000)
    await eventually(() => sent(expired!.webhook_id) === 2 && deliveries(server.dataDir).find((d) => d.id === expired!.id)?.status === "delivered")
    // another sweep or two later, the one still leased has not moved
    await new Promise((r) => setTimeout(r, 2_500))
    expect(deliveries(server.dataDir).find((d) => d.id === leased!.id)?.status).toBe("in_flight")
    expect(sent(leased!.webhook_id)).toBe(1)
  })

  it("are not taken from under the send of this process, even past the lease", async () => {
    rx.answer(null)
    expect((await push(server, "303")).code).toBe(0)
    await eventually(() => rx.held() === 1)
    const sending = deliveries(server.dataDir).find((d) => d.status === "in_flight" && rx.seen.some((s) => s.id === d.webhook_id && s.status === null))!
    setLease([sending.id], Date.now() - 1)
    await new Promise((r) => setTimeout(r, 2_500))
    rx.answer(200)
    await eventually(() => deliveries(server.dataDir).find((d) => d.id === sending.id)?.status === "delivered")
    expect(sent(sending.webhook_id)).toBe(1)
    expect(deliveries(server.dataDir).find((d) => d.id === sending.id)?.attempts).toBe(1)
    expect((await readyz(server)).httpStatus).toBe(200)
  })
})
