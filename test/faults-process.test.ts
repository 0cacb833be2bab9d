/**
 * The bridge as users and service managers start it: `npm start`. A SIGTERM to npm reaches
 * the bridge (it used to end npm and leave node serving, holding the data directory's lock),
 * under load nothing acknowledged is lost, and the data directory is private to its user.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import Database from "better-sqlite3"
import { describe, expect, it } from "vitest"
import { startBridge } from "./support/Process.js"
import { uploadRecording } from "./support/Recordings.js"
import { tempDir } from "./support/TestServer.js"

const npmStart = (env: Record<string, string>) => startBridge(env, { file: "npm", args: ["start", "--silent"] })

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** Process ids below `pid` (children, grandchildren), from /proc. */
const descendants = (pid: number): Array<number> => {
  const children = new Map<number, Array<number>>()
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8")
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1])
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)])
    } catch {
      // gone meanwhile
    }
  }
  const out: Array<number> = []
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      out.push(c)
      walk(c)
    }
  }
  walk(pid)
  return out
}

const push = async (url: string, cdrId: number) => {
  const body = new URLSearchParams({ type: "3", peer: "1", phone: "13800138000", memo: JSON.stringify({ cdrId, cdrExtension: "100008800", cdrTalktime: 10 }) })
  const res = await fetch(`${url}/api/voip.json`, { method: "POST", body, signal: AbortSignal.timeout(10_000) })
  return ((await res.json()) as { code: number }).code === 0
}

const storedCdrIds = (dataDir: string) => {
  const db = new Database(path.join(dataDir, "bridge.db"), { readonly: true })
  try {
    const rows = db.prepare("SELECT data FROM events WHERE type LIKE 'call.%'").all() as Array<{ data: string }>
    return new Set(rows.map((r) => (JSON.parse(r.data) as { cdrId: number }).cdrId))
  } finally {
    db.close()
  }
}

describe("npm start", () => {
  it("passes SIGTERM to the bridge under load: it stops, loses nothing acknowledged, and frees its data directory", { timeout: 120_000 }, async () => {
    const dataDir = tempDir()
    const bridge = await npmStart({ BRIDGE_DATA_DIR: dataDir })
    const below = descendants(bridge.child.pid!)
    expect(below.length).toBeGreaterThan(0)

    const acked = new Set<number>()
    let next = 1
    let stopping = false
    const sender = async () => {
      while (next <= 5000) {
        const id = next++
        if (await push(bridge.url, id).catch(() => false)) acked.add(id)
        else if (stopping) return
        if (!stopping && acked.size >= 150) {
          stopping = true
          bridge.child.kill("SIGTERM")
        }
      }
    }
    await Promise.all(Array.from({ length: 8 }, sender))
    expect(stopping).toBe(true)
    await bridge.exited
    expect(bridge.output()).toMatch(/shutting down/)
    // nothing of what npm started is left running
    const deadline = Date.now() + 15_000
    while (below.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
    expect(below.filter(alive)).toEqual([])

    const stored = storedCdrIds(dataDir)
    expect([...acked].filter((id) => !stored.has(id))).toEqual([])

    // the lock went with it: the next start on the same directory is served
    const again = await startBridge({ BRIDGE_DATA_DIR: dataDir })
    try {
      expect((await fetch(`${again.url}/healthz`)).status).toBe(200)
    } finally {
      again.child.kill("SIGTERM")
      await again.exited
    }
  })
})

const modeOf = (file: string) => fs.statSync(file).mode & 0o777

describe("the data directory", () => {
  it("is created 0700 with its files 0600", { timeout: 60_000 }, async () => {
    const dataDir = path.join(tempDir(), "fresh")
    const bridge = await startBridge({ BRIDGE_DATA_DIR: dataDir })
    try {
      // a write, so that the WAL and shared memory exist
      expect(await push(bridge.url, 1)).toBe(true)
      expect(modeOf(dataDir)).toBe(0o700)
      for (const name of ["bridge.db", "bridge.db-wal", "bridge.db-shm", "admin-token", "bridge.lock"]) {
        expect(modeOf(path.join(dataDir, name)), name).toBe(0o600)
      }
      // a recording too: the upload's own chmod used to make it 0644
      const audio = Buffer.from("RIFF-not-really-audio")
      const uploaded = await uploadRecording(bridge, audio, "mode.wav")
      expect(uploaded.code).toBe(0)
      expect(modeOf(path.join(dataDir, "record", uploaded.path!))).toBe(0o600)
    } finally {
      bridge.child.kill("SIGTERM")
      await bridge.exited
    }
  })

  it("made readable by an older version is closed at start, with a log line", { timeout: 60_000 }, async () => {
    const dataDir = tempDir()
    const first = await startBridge({ BRIDGE_DATA_DIR: dataDir })
    first.child.kill("SIGTERM")
    await first.exited
    fs.chmodSync(dataDir, 0o755)
    fs.chmodSync(path.join(dataDir, "bridge.db"), 0o644)
    fs.chmodSync(path.join(dataDir, "admin-token"), 0o644)
    fs.mkdirSync(path.join(dataDir, "record"), { mode: 0o755, recursive: true })
    fs.chmodSync(path.join(dataDir, "record"), 0o755)

    const second = await startBridge({ BRIDGE_DATA_DIR: dataDir })
    try {
      expect(modeOf(dataDir)).toBe(0o700)
      expect(modeOf(path.join(dataDir, "bridge.db"))).toBe(0o600)
      expect(modeOf(path.join(dataDir, "admin-token"))).toBe(0o600)
      expect(modeOf(path.join(dataDir, "record"))).toBe(0o700)
      expect(second.output()).toContain("closed the data directory to other users")
      expect(second.output()).toContain("bridge.db")
    } finally {
      second.child.kill("SIGTERM")
      await second.exited
    }
  })
})

describe("a data directory shared with other things (set by mistake)", () => {
  it("keeps the modes of what is not the bridge's, and of the directory itself, and says so", { timeout: 60_000 }, async () => {
    const shared = tempDir()
    fs.chmodSync(shared, 0o2775)
    fs.writeFileSync(path.join(shared, "someone-elses.conf"), "x", { mode: 0o644 })
    fs.chmodSync(path.join(shared, "someone-elses.conf"), 0o644)
    fs.mkdirSync(path.join(shared, "other-service"))
    fs.chmodSync(path.join(shared, "other-service"), 0o755)
    const bridge = await startBridge({ BRIDGE_DATA_DIR: shared })
    try {
      expect(fs.statSync(shared).mode & 0o7777).toBe(0o2775)
      expect(modeOf(path.join(shared, "someone-elses.conf"))).toBe(0o644)
      expect(modeOf(path.join(shared, "other-service"))).toBe(0o755)
      // what the bridge made is private all the same
      expect(modeOf(path.join(shared, "bridge.db"))).toBe(0o600)
      expect(bridge.output()).toContain("holds entries that are not the bridge's")
    } finally {
      bridge.child.kill("SIGTERM")
      await bridge.exited
    }
  })
})
