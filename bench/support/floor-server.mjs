/**
 * The floor of a durable push on this machine: bare express (the baseline's own body parser)
 * with the writes a call push makes in the bridge — the call record looked up and inserted (its
 * index entries and counting triggers), the customer lookup, the event with its raw request —
 * into a database the bridge migrated, group-committed with the WAL flushed off the event loop
 * as the bridge does, answered once on disk. Nothing else: no token, no validation of the
 * contract's parameters, no Effect, no metrics, no capture, no deliveries: what the writes cost
 * behind express's own dispatch, body parser and answer.
 *
 *   node bench/support/floor-server.mjs <bridge.db>
 *
 * FLOOR_EFFECT=1 runs each request as one Effect fiber (started, suspended until its batch is
 * flushed, answered by its observer): what the stack's rule, a handler is an Effect program,
 * costs at the least (~15 µs of CPU per push here, measured 2026-11-27).
 */
import * as fs from "node:fs"
import Database from "better-sqlite3"
import express from "express"

const file = process.argv[2]
const db = new Database(file)
db.pragma("journal_mode = WAL")
db.pragma("temp_store = MEMORY")
db.pragma("recursive_triggers = ON")
db.pragma("synchronous = NORMAL")
const SELECT_PLATFORM = db.prepare(`SELECT * FROM cdrs WHERE comp_number = ? AND platform_cdr_id = ?`)
const INSERT_PLATFORM = db.prepare(`INSERT INTO cdrs (cdr_id, comp_number, platform_cdr_id, source, created_at, extension, phone, last_phone, start_ms,
  hangup_ms, talk_secs, peer, record_file, fields, updated_at) VALUES (?, ?, ?, 'platform', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
const CUSTOMER_OF_PHONE = db.prepare(`SELECT cust_id FROM customer_phones WHERE comp_number = ? AND norm = ? ORDER BY cust_id LIMIT 1`)
const INSERT_EVENT = db.prepare(`INSERT INTO events (id, type, occurred_at, enterprise, source, data, raw, dedup_key)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dedup_key) DO NOTHING`)
const BEGIN = db.prepare("BEGIN IMMEDIATE")
const COMMIT = db.prepare("COMMIT")

let nextId = Date.now() * 1000
const localMs = (text) => (typeof text === "string" ? Date.parse(`${text.replace(" ", "T")}+08:00`) : Date.now())

const write = (push, raw) => {
  const memo = JSON.parse(push.memo)
  const comp = String(memo.cdrExtension).slice(0, 6)
  const now = Date.now()
  const existing = SELECT_PLATFORM.get(comp, String(memo.cdrId))
  if (!existing) {
    const phone = String(memo.cdrPhoneNum)
    INSERT_PLATFORM.run(nextId++, comp, String(memo.cdrId), now, String(memo.cdrExtension), phone, phone.slice(-8), localMs(memo.cdrStartTime), localMs(memo.cdrHangupTime), memo.cdrTalktime, memo.cdrPeer, memo.cdrRecordFile.split("/").pop(), JSON.stringify(memo), now)
    CUSTOMER_OF_PHONE.get(comp, phone)
  }
  const data = { type: Number(push.type), peer: Number(push.peer), phone: push.phone, cdrId: memo.cdrId, memo, memoParsed: true }
  INSERT_EVENT.run(nextId++, "call.hangup", now, comp, "push:voip", JSON.stringify(data), raw, `voip:${memo.cdrId}:${push.type}`)
}

let wal
let queued = []
let flushing = false
let scheduled = false
const answer = (res, status, body) => res.status(status).json(body)

const commit = () => {
  scheduled = false
  if (flushing || queued.length === 0) return
  const batch = queued
  queued = []
  BEGIN.run()
  const failed = []
  for (const w of batch) {
    try {
      write(w.push, w.raw)
    } catch (e) {
      failed.push(w)
      w.error = e
    }
  }
  COMMIT.run()
  wal ??= fs.openSync(`${file}-wal`, "r+")
  flushing = true
  fs.fdatasync(wal, (e) => {
    flushing = false
    for (const w of batch) w.error || e ? answer(w.res, 200, { code: -6, message: "not stored" }) : answer(w.res, 200, { code: 0, message: "OK" })
    if (queued.length > 0) setImmediate(commit)
  })
}

const app = express()
app.disable("x-powered-by")
app.use(express.urlencoded({ extended: false, limit: "1mb" }))
const enqueue = (req, res) => {
  queued.push({ push: req.body, raw: JSON.stringify({ method: req.method, query: "", contentType: req.headers["content-type"], body: new URLSearchParams(req.body).toString() }), res })
  if (!scheduled) {
    scheduled = true
    setImmediate(commit)
  }
}
const { Effect } = process.env.FLOOR_EFFECT ? await import("effect") : {}
app.all(
  "/api/voip.json",
  process.env.FLOOR_EFFECT
    ? (req, res) => {
        const fiber = Effect.runFork(Effect.async((resume) => enqueue(req, { status: (s) => ({ json: (b) => resume(Effect.succeed([s, b])) }) })))
        fiber.addObserver((exit) => res.status(exit.value[0]).json(exit.value[1]))
      }
    : enqueue
)
const server = app.listen(0, "127.0.0.1", () => {
  const address = server.address()
  process.stdout.write(`listening ${typeof address === "object" && address ? address.port : 0}\n`)
})
process.on("SIGTERM", () => server.close(() => process.exit(0)))
