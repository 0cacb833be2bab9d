/**
 * A recording box (§2.1.10) in software, for testers and for our own end-to-end tests and
 * benchmarks: it speaks to a bridge exactly as the box does — plain HTTP POSTs to
 * `/voip/upload_record` — sending heartbeats (`channelstatus`), polling `getCallList` once a
 * second per idle channel, "dialling" what it is handed, and uploading each call's CDR with a
 * generated WAV recording. `npm start -- box-sim --help`.
 */
import { setMaxListeners } from "node:events"
import { toneWav } from "../shared/Wav.js"

export interface SimulatorOptions {
  readonly mac: string
  /** the bridge's base URL, e.g. http://127.0.0.1:8080 */
  readonly to: string
  readonly channels: number
  /** incoming calls to generate (0: none) */
  readonly calls: number
  /** generated calls per second */
  readonly rate: number
  /** stop once this many handed-out dials have been made and uploaded (undefined: no such goal) */
  readonly dials?: number | undefined
  /** stop after this long whatever is left (undefined: run until the goals are met, or forever) */
  readonly durationMs?: number | undefined
  readonly heartbeatMs: number
  readonly pollMs: number
  /** how long a simulated call talks */
  readonly talkMs: number
  readonly path?: string
}

export interface SimulatorStats {
  heartbeats: number
  polls: number
  dials: number
  callsStarted: number
  uploads: number
  errors: number
  /** answers by the box protocol's status (0, 3001, 3003, …) */
  readonly statuses: Record<string, number>
  lastError: string | null
}

interface ChannelState {
  readonly ch: number
  state: number
  phone: string
  peer: number | null
  since: number
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) return resolve()
    const timer = setTimeout(done, ms)
    function done() {
      clearTimeout(timer)
      signal.removeEventListener("abort", done)
      resolve()
    }
    signal.addEventListener("abort", done, { once: true })
  })

export { toneWav } from "../shared/Wav.js"

/**
 * Call ids as the box makes them: unique across boxes and above 2^53 (the bridge must keep them
 * exact): the time in ms, then three digits of this box and three of a counter.
 */
const callIds = (mac: string) => {
  const box = BigInt([...mac].reduce((h, c) => (h * 31 + c.charCodeAt(0)) % 1000, 7))
  let n = 0n
  return () => {
    n = (n + 1n) % 1000n
    return (BigInt(Date.now()) * 1_000_000n + box * 1000n + n).toString()
  }
}

export const runSimulator = async (options: SimulatorOptions, onProgress: (stats: SimulatorStats) => void = () => {}, outer?: AbortSignal): Promise<SimulatorStats> => {
  const url = `${options.to.replace(/\/+$/, "")}${options.path ?? "/voip/upload_record"}`
  const stats: SimulatorStats = { heartbeats: 0, polls: 0, dials: 0, callsStarted: 0, uploads: 0, errors: 0, statuses: {}, lastError: null }
  const stop = new AbortController()
  const signal = outer ? AbortSignal.any([outer, stop.signal]) : stop.signal
  // every channel's and every call's wait listens to it: hundreds at once are expected, not a leak
  setMaxListeners(0, signal)
  const channels: Array<ChannelState> = Array.from({ length: options.channels }, (_, i) => ({ ch: i + 1, state: 1, phone: "", peer: null, since: Date.now() }))
  const nextCallId = callIds(options.mac)
  const calls = new Set<Promise<void>>()
  let recordId = 0

  const post = async (body: URLSearchParams | FormData): Promise<Record<string, unknown> | undefined> => {
    try {
      const res = await fetch(url, { method: "POST", body })
      const answer = (await res.json()) as Record<string, unknown>
      const status = String(answer.status)
      stats.statuses[status] = (stats.statuses[status] ?? 0) + 1
      if (status !== "0" && status !== "3003") {
        stats.errors++
        stats.lastError = `status ${status}${typeof answer.message === "string" ? `: ${answer.message}` : ""}`
      }
      return answer
    } catch (e) {
      stats.errors++
      stats.lastError = e instanceof Error ? e.message : String(e)
      return undefined
    }
  }

  const heartbeat = async () => {
    const now = Date.now()
    const status = {
      diskUsagePercent: "5",
      diskSize: "30000",
      diskSurplusSize: "28500",
      diskStatus: 0,
      ip: "192.168.1.20",
      channels: channels.map((c) => ({
        ch: String(c.ch),
        state: String(c.state),
        phone: c.phone,
        timelen: c.state === 1 ? "" : String(Math.floor((now - c.since) / 1000)),
        peer: c.peer === null ? "" : String(c.peer),
        serial: "1"
      }))
    }
    stats.heartbeats++
    await post(new URLSearchParams({ cmd: "channelstatus", satellite: options.mac, time: String(now), status: JSON.stringify(status) }))
  }

  const setState = (c: ChannelState, state: number, phone: string, peer: number | null) => {
    c.state = state
    c.phone = phone
    c.peer = peer
    c.since = Date.now()
    // a change of state is told at once, as a box does
    void heartbeat()
  }

  /** One call on a channel: ringing or dialling, talking, hanging up, then its CDR and recording. */
  const call = (c: ChannelState, direction: "in" | "out", phone: string) => {
    const run = (async () => {
      const start = Date.now()
      setState(c, direction === "in" ? 2 : 3, phone, direction === "in" ? 2 : 1)
      await sleep(Math.min(300, options.talkMs / 3), signal)
      const answered = Date.now()
      setState(c, 4, phone, direction === "in" ? 2 : 1)
      await sleep(options.talkMs, signal)
      const hangup = Date.now()
      setState(c, 1, "", null)
      const talkSecs = Math.max(1, Math.round((hangup - answered) / 1000))
      const form = new FormData()
      const fields: Record<string, string> = {
        cmd: "upload",
        satellite: options.mac,
        channel: String(c.ch),
        start_time_secs: String(Math.floor(start / 1000)),
        start_time_hangup: String(Math.floor(hangup / 1000)),
        direction,
        callid_dialed: phone,
        duration_secs: String(talkSecs),
        id: String(++recordId),
        recorded: "1",
        callid: nextCallId()
      }
      for (const [k, v] of Object.entries(fields)) form.append(k, v)
      form.append("file", new Blob([toneWav(Math.min(talkSecs, 3))], { type: "audio/wav" }), `${fields.callid}.wav`)
      const answer = await post(form)
      if (answer?.status === 0 && answer.callid === fields.callid) stats.uploads++
      else if (answer?.status === 0) {
        stats.errors++
        stats.lastError = `upload answered callid ${String(answer.callid)}, sent ${fields.callid}`
      }
    })()
    calls.add(run)
    void run.finally(() => calls.delete(run))
    return run
  }

  const goalsMet = () =>
    (options.dials !== undefined || options.calls > 0) &&
    (options.dials === undefined || stats.dials >= options.dials) &&
    stats.callsStarted >= options.calls &&
    calls.size === 0

  const heartbeats = (async () => {
    while (!signal.aborted) {
      await heartbeat()
      await sleep(options.heartbeatMs, signal)
    }
  })()

  /** Each idle channel asks for a dial once per pollMs, spread over the interval as real boxes are. */
  const polls = (async () => {
    while (!signal.aborted) {
      const round = Date.now()
      await Promise.all(
        channels.map(async (c, i) => {
          await sleep((options.pollMs * i) / Math.max(1, channels.length), signal)
          if (signal.aborted || c.state !== 1) return
          stats.polls++
          const answer = await post(new URLSearchParams({ cmd: "getCallList", satellite: options.mac, id: String(c.ch), time: String(Date.now()) }))
          const data = answer?.status === 0 && Array.isArray(answer.data) ? (answer.data as Array<Record<string, unknown>>) : []
          for (const d of data) {
            if (d.status !== "0") continue
            const target = channels.find((x) => String(x.ch) === String(d.mdcWan)) ?? c
            stats.dials++
            void call(target, "out", String(d.phone ?? ""))
          }
        })
      )
      await sleep(Math.max(0, options.pollMs - (Date.now() - round)), signal)
    }
  })()

  const generated = (async () => {
    for (let i = 0; i < options.calls && !signal.aborted; i++) {
      const idle = channels.find((c) => c.state === 1)
      if (idle) {
        stats.callsStarted++
        void call(idle, "in", `139${String(Math.floor(Math.random() * 1e8)).padStart(8, "0")}`)
      } else i--
      await sleep(1000 / options.rate, signal)
    }
  })()

  const progress = setInterval(() => onProgress(stats), 500)
  const deadline = options.durationMs === undefined ? Infinity : Date.now() + options.durationMs
  while (!signal.aborted && Date.now() < deadline && !goalsMet()) await sleep(100, signal)
  stop.abort()
  await Promise.all([heartbeats, polls, generated, ...calls])
  clearInterval(progress)
  onProgress(stats)
  return stats
}
