/**
 * The simulator driver: plays each call's life — ring, answered / not answered / busy / failed,
 * talk, hang-up — on Effect's clock, at `speed` times real time, with the configured outcome
 * weights and time ranges. What the platform would do, it does: its call pushes (§2.10.4
 * types 1–4) go through the same ingest as a real push (src/receive/Ingest.ts), so they write
 * the call record, raise the same events and reach the same targets; a call asked to record
 * gets a WAV recording, downloadable like any other.
 *
 * Times in the records are on the simulated timeline, starting when the call starts: at speed
 * 100 a 30 s call is over in 0.3 s, and its record says 30 s, from start to hang-up.
 *
 * A call does not outlive the process that plays it: at start, the call record of a simulated
 * callback or verification call cut by a stop or crash gets its hang-up push (INTERRUPTED),
 * as the callback and verification rows get their end (Callbacks.ts, Audits.ts).
 */
import * as crypto from "node:crypto"
import * as path from "node:path"
import { SqlClient } from "@effect/sql"
import { Duration, Effect, Random, Schema } from "effect"
import { CallPush } from "../../schemas/push.js"
import type { AppConfigShape } from "../config/AppConfig.js"
import { GroupCommit } from "../db/GroupCommit.js"
import { Outbox } from "../events/Outbox.js"
import { ingest } from "../receive/Ingest.js"
import { receivers } from "../receive/receivers.js"
import { recordDir, writeDurablyAsync } from "../recordings/Files.js"
import { RecordingsStore } from "../recordings/RecordingsStore.js"
import { CdrStore, lastPhoneOf } from "../records/CdrStore.js"
import { Ids } from "../shared/Ids.js"
import { formatLocal } from "../shared/Time.js"
import { toneWav } from "../box/Simulator.js"
import type { AppConfig } from "../config/AppConfig.js"
import type { Outcome } from "./ConfigSchema.js"
import { type CallRequest, type CallState, initialState, INTERRUPTED, STATUS, type TelephonyDriver } from "./Driver.js"

const voip = receivers[0]
const decodePush = Schema.decodeUnknown(CallPush)

/** What each outcome of a leg ends with: the cause and the SIP status a real switch reports. */
const ENDINGS: Record<Exclude<Outcome, "answered">, { readonly resultCode: string; readonly errorCode: string; readonly text: string }> = {
  noAnswer: { resultCode: "NO_ANSWER", errorCode: "480", text: "无人接听" },
  busy: { resultCode: "USER_BUSY", errorCode: "486", text: "用户忙" },
  failed: { resultCode: "CALL_REJECTED", errorCode: "503", text: "呼叫失败" }
}
const NORMAL = { resultCode: "NORMAL_CLEARING", errorCode: "", text: "正常挂机" }

/**
 * A recording is a short tone of the call's length, at most this long (16 KB a second, as the box
 * simulator's): a real WAV to play and transcode, not a disk filler — at 10 s, a simulated task of
 * 10,000 numbers wrote and flushed about 1 GB.
 */
const MAX_RECORDING_SECS = 3

export const makeSimulator = (config: AppConfigShape, device: Pick<TelephonyDriver, "dialOnDevice">) =>
  Effect.gen(function* () {
    const settings = config.telephony.simulator
    const ids = yield* Ids
    // what the pushes' ingest and the recordings need, captured once: the call runs in a fiber of its own
    const context = yield* Effect.context<CdrStore | AppConfig | Outbox | GroupCommit | RecordingsStore>()
    const commit = yield* GroupCommit
    const recordings = yield* RecordingsStore

    const between = (range: { readonly min: number; readonly max: number }) => Random.nextIntBetween(range.min, range.max + 1)
    const pick = Effect.gen(function* () {
      const o = settings.outcomes
      const weights: ReadonlyArray<readonly [Outcome, number]> = [["answered", o.answered], ["noAnswer", o.noAnswer], ["busy", o.busy], ["failed", o.failed]]
      let r = (yield* Random.next) * weights.reduce((sum, [, w]) => sum + w, 0)
      for (const [outcome, w] of weights) {
        if (r < w) return outcome
        r -= w
      }
      return "answered" as Outcome
    })

    /** One call on the simulated timeline: `now` moves forward by what is waited, real time by that over `speed`. */
    const timeline = (start: number) => {
      let now = start
      return {
        now: () => now,
        wait: (ms: number) =>
          Effect.zipRight(
            Effect.sleep(Duration.millis(ms / settings.speed)),
            Effect.sync(() => void (now += ms))
          )
      }
    }

    /** One §2.10.4 push, as the platform would send it, ingested as a received one is. */
    const push = (type: 1 | 2 | 3 | 4, phone: string, memo: Readonly<Record<string, unknown>>) =>
      Effect.gen(function* () {
        const wire = { type: String(type), peer: "1", phone, memo: JSON.stringify(memo) }
        const decoded = yield* decodePush(wire)
        const raw = JSON.stringify({ method: "POST", query: "", contentType: "application/x-www-form-urlencoded", body: new URLSearchParams(wire).toString() })
        yield* ingest(voip, decoded, { raw, source: "telephony:simulator", fallbackKey: () => `sim:${String(memo.cdrId)}:${type}` })
      }).pipe(
        Effect.provide(context),
        Effect.catchAll((e) => Effect.logError("a simulated call push could not be stored", e))
      )

    // the cut calls' records: those of simulated callbacks and verification calls with no hang-up
    const sql = yield* SqlClient.SqlClient
    const cut = yield* sql<{ platform_cdr_id: string; phone: string; fields: string }>`SELECT platform_cdr_id, phone, fields FROM cdrs
      WHERE hangup_ms IS NULL AND platform_cdr_id IN (
        SELECT cdr_id FROM callbacks WHERE driver = 'simulator' AND cdr_id IS NOT NULL
        UNION ALL SELECT cdr_id FROM phone_audits WHERE driver = 'simulator' AND cdr_id IS NOT NULL
        UNION ALL SELECT n.cdr_id FROM call_task_numbers n JOIN call_tasks t ON t.ctk_id = n.ctk_id WHERE t.driver = 'simulator' AND n.cdr_id IS NOT NULL AND n.end_ms IS NULL)`
    for (const r of cut) {
      let memo: Record<string, unknown> = {}
      try {
        memo = JSON.parse(r.fields) as Record<string, unknown>
      } catch {
        // an unreadable record still gets its hang-up, by its id alone
      }
      yield* push(3, r.phone, { ...memo, cdrId: r.platform_cdr_id, cdrHangupTime: formatLocal(Date.now(), config.tz), cdrHangupReasonCode: INTERRUPTED, cdrHangupReasonText: "中断" })
    }

    // a recording is one of MAX_RECORDING_SECS tones: each made (and hashed) once, not once a call
    const tones = new Map<number, { readonly wav: Buffer; readonly md5: string }>()
    const toneOf = (secs: number) => {
      const known = tones.get(secs)
      if (known) return known
      const wav = toneWav(secs)
      const made = { wav, md5: crypto.createHash("md5").update(wav).digest("hex") }
      tones.set(secs, made)
      return made
    }

    /** A WAV of the call, stored as the box's recordings are: a file under the record directory and its row. */
    const record = (comp: string, cdrId: string, talkSecs: number, startMs: number) =>
      Effect.gen(function* () {
        const { wav, md5 } = toneOf(Math.max(1, Math.min(talkSecs, MAX_RECORDING_SECS)))
        const day = formatLocal(startMs, config.tz)
        const name = `sim-${cdrId}.wav`
        const relPath = `${comp}/sim/${day.slice(0, 4)}${day.slice(5, 7)}/${day.slice(8, 10)}/${name}`
        yield* Effect.tryPromise(() => writeDurablyAsync(path.join(recordDir(config.dataDir), relPath), wav))
        const id = yield* ids.next
        yield* commit.submit((_, prepared) =>
          recordings.insertIn(prepared, {
            id,
            comp_number: comp,
            file_name: name,
            rel_path: relPath,
            md5,
            size: wav.length,
            content_type: "audio/wav",
            uploaded_by: null,
            created_at: Date.now()
          })
        )
        return relPath
      }).pipe(Effect.catchAll((e) => Effect.as(Effect.logError("a simulated recording could not be stored", e), "")))

    const run = (request: CallRequest) => (report: (state: CallState) => Effect.Effect<void>) =>
      Effect.gen(function* () {
        const { caller } = request
        const comp = caller.enterprise.comp_number
        const cdrId = String(yield* ids.next)
        const clock = timeline(Date.now())
        const local = (ms: number) => formatLocal(ms, config.tz)
        // the customer's number is the call record's: the callback's second leg, the verification call's only one
        const phone = request.to
        const baseMemo = {
          cdrId,
          cdrExtension: caller.extension.extension,
          exteName: caller.extension.name,
          cdrCalledName: "",
          cdrExtensionIp: "",
          cdrPhonePort: "",
          cdrIVR:
            request.kind === "audit" ? `语音验证码${request.say?.commandNo ? ` ${request.say.commandNo}` : ""}` : request.kind === "task" ? `外呼任务 ${request.flow?.label ?? ""}` : "回拨",
          cdrPeer: 1,
          cdrPhoneNum: phone,
          cdrLastPhoneNum: lastPhoneOf(phone),
          cdrPhoneIp: "",
          cdrTrunkRoute: "simulator",
          cdrCmmId: String(request.id),
          cdrExtensionPort: "",
          cdrIVRKey: "",
          cdrStartTime: local(clock.now())
        }
        let state: CallState = { ...initialState, status: STATUS.calling, beginMs: clock.now(), cdrId }
        // the call's start said and its record stored together: a restart finds a call it cut short
        // by its record (above), so a stop between the two would leave a begun call with none
        yield* Effect.uninterruptible(Effect.zipRight(report(state), push(1, phone, baseMemo)))

        const hangUp = (ending: { readonly resultCode: string; readonly errorCode: string; readonly text: string }, talkFrom: number | null) =>
          Effect.gen(function* () {
            const end = clock.now()
            const talkSecs = talkFrom === null ? 0 : Math.round((end - talkFrom) / 1000)
            const recordFile = request.record && talkSecs > 0 ? yield* record(comp, cdrId, talkSecs, talkFrom ?? end) : ""
            const memo = {
              ...baseMemo,
              cdrHangupTime: local(end),
              cdrTalktime: talkSecs,
              cdrChargingTimes: Math.ceil(talkSecs / 60),
              cdrHangupReasonCode: ending.resultCode,
              cdrHangupReasonText: ending.text,
              cdrRecordFile: recordFile
            }
            yield* push(3, phone, memo)
            if (recordFile !== "") yield* push(4, phone, memo)
            return { end, talkSecs, recordFile }
          })

        // the first leg: the enterprise's side of a callback, the called party of a verification call
        yield* clock.wait(yield* between(settings.ringMs))
        const first = yield* pick
        if (first !== "answered") {
          const ending = ENDINGS[first]
          const { end } = yield* hangUp(ending, null)
          return yield* report({ ...state, status: STATUS.notAnswered, endMs: end, resultCode: ending.resultCode, errorCode: ending.errorCode, ended: true })
        }
        const answeredAt = clock.now()
        state = { ...state, status: STATUS.answered, successMs: answeredAt }
        yield* report(state)
        yield* push(2, phone, { ...baseMemo, cdrAnswerTime: local(answeredAt) })

        if (request.kind === "audit" || (request.kind === "task" && request.flow?.transfer !== true)) {
          // a code is said (about half a second a character) and repeated once; a task's flow plays its sound
          const sayMs = request.kind === "task" ? (request.flow?.playMs ?? 0) : 2_000 + 1_000 * [...(request.say?.text ?? "")].length
          yield* clock.wait(sayMs)
          const { end, talkSecs, recordFile } = yield* hangUp(NORMAL, answeredAt)
          return yield* report({ ...state, endMs: end, talkSecs, resultCode: NORMAL.resultCode, recordFile, ended: true })
        }

        // a callback's second leg: the customer, to whom the answered call is transferred; a task's: the agent, after the flow played
        if (request.kind === "task") yield* clock.wait(request.flow?.playMs ?? 0)
        yield* clock.wait(yield* between(settings.ringMs))
        const second = yield* pick
        if (second !== "answered") {
          const ending = ENDINGS[second]
          const { end, talkSecs, recordFile } = yield* hangUp(ending, answeredAt)
          return yield* report({ ...state, endMs: end, talkSecs, resultCode: ending.resultCode, errorCode: ending.errorCode, recordFile, ended: true })
        }
        const transferredAt = clock.now()
        state = { ...state, status: STATUS.transferred, transferSuccessMs: transferredAt }
        yield* report(state)
        yield* clock.wait(yield* between(settings.talkMs))
        const { end, talkSecs, recordFile } = yield* hangUp(NORMAL, answeredAt)
        yield* report({
          ...state,
          endMs: end,
          transferEndMs: end,
          talkSecs,
          transferSecs: Math.round((end - transferredAt) / 1000),
          resultCode: NORMAL.resultCode,
          recordFile,
          ended: true
        })
      })

    const place: TelephonyDriver["place"] = (request) => Effect.succeed({ answer: null, run: run(request) })

    // a SmartTel phone is a device: the simulator of a box is `box-sim`, which polls getCallList like the box
    return { name: "simulator", place, dialOnDevice: device.dialOnDevice } satisfies TelephonyDriver
  })
