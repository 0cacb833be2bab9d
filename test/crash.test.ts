/**
 * Nothing acknowledged is lost: pushes under concurrent load, `kill -9` of the bridge
 * mid-burst, restart on the same data directory — every push that was answered OK reaches
 * the CRM (duplicates allowed, and counted), none is lost.
 */
import * as fs from "node:fs"
import * as http from "node:http"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { startBridge } from "./support/Process.js"
import { tempDir } from "./support/TestServer.js"

const TOTAL = 600
const CONCURRENCY = 16
const KILL_AFTER_ACKS = 200

/** The CRM: counts each cdrId it is sent (whatever the body's shape, the memo's cdrId is in it). */
const crm = () =>
  new Promise<{ url: string; received: Map<number, number>; close: () => void }>((resolve) => {
    const received = new Map<number, number>()
    const server = http.createServer((req, res) => {
      let body = ""
      req.on("data", (c: Buffer) => (body += c.toString()))
      req.on("end", () => {
        const m = /cdrId[^0-9]{1,8}(\d+)/.exec(decodeURIComponent(body.replace(/\+/g, " ")))
        if (m) received.set(Number(m[1]), (received.get(Number(m[1])) ?? 0) + 1)
        res.writeHead(200).end("ok")
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number }
      resolve({ url: `http://127.0.0.1:${port}/crm`, received, close: () => server.close() })
    })
  })

const push = async (url: string, cdrId: number) => {
  const body = new URLSearchParams({ type: "3", peer: "1", phone: "13800138000", memo: JSON.stringify({ cdrId, cdrExtension: "100008800", cdrTalktime: 10 }) })
  const res = await fetch(`${url}/api/voip.json`, { method: "POST", body, signal: AbortSignal.timeout(10_000) })
  const answer = (await res.json()) as { code: number }
  return answer.code === 0
}

describe("crash safety", () => {
  it("delivers every acknowledged push after kill -9 and restart", { timeout: 120_000 }, async () => {
    const receiver = await crm()
    const dataDir = tempDir()
    const config = path.join(dataDir, "bridge.json")
    fs.writeFileSync(config, JSON.stringify({ targets: [{ name: "crm", url: receiver.url, events: ["call.*"], retry: { scheduleMs: [0, 200, 500, 1000, 2000, 5000] } }] }))
    const env = { BRIDGE_DATA_DIR: dataDir, BRIDGE_CONFIG: config }
    const first = await startBridge(env)

    const acked = new Set<number>()
    let next = 1
    let killed = false
    const worker = async () => {
      while (next <= TOTAL) {
        const id = next++
        const ok = await push(first.url, id).catch(() => false)
        if (ok) acked.add(id)
        if (!killed && acked.size >= KILL_AFTER_ACKS) {
          killed = true
          first.child.kill("SIGKILL")
        }
        if (killed && !ok) return
      }
    }
    await Promise.all(Array.from({ length: CONCURRENCY }, worker))
    await first.exited
    expect(killed).toBe(true)
    expect(acked.size).toBeGreaterThanOrEqual(KILL_AFTER_ACKS)

    const second = await startBridge(env)
    try {
      const deadline = Date.now() + 60_000
      const missing = () => [...acked].filter((id) => !receiver.received.has(id))
      while (missing().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200))
      const duplicates = [...receiver.received.values()].reduce((n, c) => n + (c - 1), 0)
      process.stdout.write(`crash test: ${acked.size} acknowledged, ${receiver.received.size} distinct delivered, ${duplicates} duplicate deliveries\n`)
      expect(missing()).toEqual([])
    } finally {
      second.child.kill("SIGTERM")
      await second.exited
      receiver.close()
    }
  })
})
