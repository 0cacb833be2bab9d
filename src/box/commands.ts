/**
 * The one registry of what the recording box sends (§2.1.10), by `cmd`: each command's
 * parameters schema (schemas/box.ts) and its handler. A `cmd` not listed here is answered
 * `{"time":…,"status":0}`, as the contract says; a new command is one entry.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect, Either, Exit, Schema } from "effect"
import * as BoxSchema from "../../schemas/box.js"
import type { RawParams } from "../../schemas/Param.js"
import { BoxNoMessage, FileSaveFailed, InvalidParam, StorageFailed } from "../api/Errors.js"
import { toInvalidParam } from "../api/Implementation.js"
import type { AppServices } from "../AppServices.js"
import type { AppConfigShape } from "../config/AppConfig.js"
import { linkCallIn } from "../customers/Phones.js"
import { GroupCommit } from "../db/GroupCommit.js"
import { Outbox } from "../events/Outbox.js"
import type { Failure } from "../http/Endpoint.js"
import type { UploadedFile } from "../http/Params.js"
import { commitFile, contentTypeOf, recordDir, sanitizeName } from "../recordings/Files.js"
import { RecordingsStore } from "../recordings/RecordingsStore.js"
import { CdrStore } from "../records/CdrStore.js"
import { errnoCode } from "../shared/Errno.js"
import { Ids } from "../shared/Ids.js"
import { keyedLock } from "../shared/KeyedLock.js"
import { formatLocal } from "../shared/Time.js"
import { type BoxMessage, BoxQueue } from "./BoxQueue.js"
import { type Device, DevicesStore } from "./DevicesStore.js"

/** What a command adds to the `{time, status: 0}` answer. */
export const BoxResult = Schema.Struct({
  callid: Schema.optional(BoxSchema.RecordingAnswer.fields.callid),
  data: Schema.optional(BoxSchema.MessageListAnswer.fields.data)
})
export type BoxResult = typeof BoxResult.Type

export interface BoxRequest {
  readonly device: Device
  readonly config: AppConfigShape
  readonly address: string | null
  readonly files: ReadonlyArray<UploadedFile>
}

export interface BoxCommand {
  readonly schema: Schema.Schema.Any
  readonly run: (request: BoxRequest, raw: RawParams) => Effect.Effect<BoxResult, Failure, AppServices>
}

/** A command: its parameters decoded with its schema (-14 naming the parameter), then its handler. */
const command = <A, I>(schema: Schema.Schema<A, I>, handler: (request: BoxRequest, params: A) => Effect.Effect<BoxResult, Failure, AppServices>): BoxCommand => {
  const decode = Schema.decodeUnknownEither(schema, { errors: "first", onExcessProperty: "ignore" })
  return {
    schema,
    run: (request, raw) => {
      const params = decode(raw)
      return Either.isLeft(params) ? Effect.fail(toInvalidParam(params.left)) : handler(request, params.right)
    }
  }
}

const channelstatus = command(BoxSchema.channelstatus, ({ device, address }, { status }) =>
  Effect.as(Effect.flatMap(DevicesStore, (devices) => devices.report(device, status, address)), {})
)

const noMessage = () => new BoxNoMessage({ message: "no message to process" })

/** An entry in the §2.1.10 data[] shape: status "0" dial or "51" web message, mdcWan the channel, mdcCode the entry's id. */
const shaped = (m: BoxMessage) => ({
  status: m.status,
  mdcWan: String(m.channel),
  mdcCode: String(m.id),
  phone: m.phone,
  ...(m.memo ? { memo: m.memo } : {})
})

const handedOut = (messages: ReadonlyArray<BoxMessage>) =>
  messages.length === 0 ? Effect.fail(noMessage()) : Effect.succeed({ data: messages.map(shaped) })

/** The dials queued by sendTelCall (§2.5.1), each handed out once; asked every second, so never held open. */
const getCallList = command(BoxSchema.getCallList, ({ device }, { id }) =>
  Effect.zipRight(
    Effect.flatMap(DevicesStore, (devices) => devices.notePollsCallList(device)),
    Effect.flatMap(BoxQueue, (queue) => Effect.flatMap(queue.takeDials(device.mac, id), handedOut))
  )
)

/** The long poll (§2.1.10 getMessageList of old firmware, getMessageList_1125 of new): held open up to box.messageWaitMs. */
const messageList = <A extends { readonly id?: number | undefined }, I>(schema: Schema.Schema<A, I>) =>
  command(schema, ({ device }, { id }) =>
    // a box that polls getCallList dials through it (the seed recommends it): its long poll carries web messages only
    Effect.flatMap(BoxQueue, (queue) => Effect.flatMap(queue.takeOrWait(device.mac, id, device.callListAt === null), handedOut))
  )

/** §2.1.10 `direction` → the contract's cdrPeer (1 outgoing, 2 incoming); a missed call (`unkown`) has none. */
const PEER: Record<string, number | null> = { out: 1, in: 2, unkown: null, unknown: null }

/**
 * The stored name of a box's recording: its callid and the recording's own id — unique by
 * construction, so no app upload (§2.1.5, names chosen by clients) can hold it already — and the
 * extension its file came with when that is a plain one.
 */
const recordingName = (callid: string, recordingId: number, sent: string) => {
  const clean = sanitizeName(sent)
  const ext = clean === undefined ? "" : path.extname(clean).toLowerCase()
  return `box-${callid}-${recordingId}${/^\.[a-z0-9]{1,5}$/.test(ext) ? ext : ".wav"}`
}

const saveFailed = (e: unknown) => new FileSaveFailed({ message: `the recording could not be saved (${errnoCode(e)})` })

/** The latest call time taken (2100-01-01): later ones are no clock's, and no date can show them. */
const LATEST_MS = 4_102_444_800_000

/** Two uploads of one call must not interleave: the second would find no record yet and store it again. */
const oneUploadPerCall = keyedLock()

const upload = command(BoxSchema.upload, ({ device, config, files }, p) => {
  const comp = device.enterprise!
  return oneUploadPerCall(
    `${comp}/${p.callid}`,
    Effect.gen(function* () {
      const cdrs = yield* CdrStore
      const commit = yield* GroupCommit
      // a re-upload after a lost answer: acknowledged, nothing stored again
      const seen = yield* commit.submit((_, prepared) => cdrs.boxCallIn(prepared, comp, p.callid))
      if (seen !== undefined) return { callid: p.callid }
      const file = files.find((f) => f.field === "file") ?? files[0]
      if (!file && p.recorded === 1) return yield* new InvalidParam({ param: "file", problem: "is missing (recorded is 1: the recording is the multipart part `file`)" })
      const recordings = yield* RecordingsStore
      const outbox = yield* Outbox
      const ids = yield* Ids
      const now = Date.now()
      const extension = device.channels[String(p.channel)] ?? ""
      const startMs = p.start_time_secs * 1000
      const hangupMs = p.start_time_hangup === undefined ? null : p.start_time_hangup * 1000
      // a time no calendar can show would fail every retry later on: refused now, as the parameter it is
      for (const [param, ms] of [["start_time_secs", startMs], ["start_time_hangup", hangupMs]] as const)
        if (ms !== null && !(ms >= 0 && ms <= LATEST_MS))
          return yield* new InvalidParam({ param, problem: `expected Unix seconds up to ${LATEST_MS / 1000} (the year 2100), got ${ms / 1000}` })
      const recordingId = file ? yield* ids.next : 0
      const name = file ? recordingName(p.callid, recordingId, file.filename) : ""
      const day = formatLocal(startMs, config.tz)
      // a directory of their own: no name an app upload (§2.1.5) is given can be the box's path
      const relPath = file ? `${comp}/box/${day.slice(0, 4)}${day.slice(5, 7)}/${day.slice(8, 10)}/${name}` : ""
      const absolute = file ? path.join(recordDir(config.dataDir), relPath) : ""
      const peer = PEER[p.direction] ?? null
      const phone = p.callid_dialed ?? ""
      const talkSecs = p.duration_secs ?? 0
      const fields = {
        boxMac: device.mac,
        boxChannel: p.channel,
        boxDirection: p.direction,
        boxRecordId: p.id ?? null,
        boxRecorded: p.recorded ?? null,
        ...(file ? { boxFileName: file.filename } : {})
      }
      const memo = {
        cdrId: p.callid,
        cdrExtension: extension,
        cdrStartTime: formatLocal(startMs, config.tz),
        cdrHangupTime: hangupMs === null ? "" : formatLocal(hangupMs, config.tz),
        cdrTalktime: talkSecs,
        cdrPeer: peer ?? 0,
        cdrPhoneNum: phone,
        cdrRecordFile: relPath
      }
      const callEvent = (type: 3 | 4, linked: { custId?: number }) => ({
        type: type === 3 ? ("call.hangup" as const) : ("call.recording" as const),
        enterprise: comp,
        source: "box",
        data: { type, peer: peer ?? 0, phone, cdrId: p.callid, memo, memoParsed: true, ...linked },
        dedupKey: `box:${comp}:${p.callid}:${type}`
      })
      const queue = yield* BoxQueue
      const write = commit.submit((_, prepared) => {
        if (file)
          recordings.insertIn(prepared, {
            id: recordingId,
            comp_number: comp,
            file_name: name,
            rel_path: relPath,
            md5: file.md5,
            size: file.size,
            content_type: contentTypeOf(name),
            uploaded_by: null,
            created_at: now
          })
        const cdrId = cdrs.insertFromBoxIn(prepared, comp, { callid: p.callid, extension, phone, startMs, hangupMs, talkSecs, peer, recordFile: name, fields })
        // a call with a customer's number is that customer's latest call, and its events say whose
        const custId = linkCallIn(prepared, comp, phone, startMs)
        const linked = custId === undefined ? {} : { custId }
        outbox.emitIn(prepared, callEvent(3, linked))
        if (file) {
          outbox.emitIn(prepared, callEvent(4, linked))
          outbox.emitIn(prepared, {
            type: "box.recording",
            enterprise: comp,
            source: "box",
            data: { mac: device.mac, channel: p.channel, extension, callid: p.callid, cdrId: p.callid, localCdrId: cdrId, id: recordingId, path: relPath, md5: file.md5, size: file.size, ...linked },
            dedupKey: `box:${comp}:${p.callid}:recording`
          })
        }
        // the call a box-driver dial asked for: its requester learns the end with this record
        return queue.matchUploadIn(prepared, { mac: device.mac, enterprise: comp, channel: p.channel, direction: p.direction, phone, callid: p.callid, startMs, hangupMs, talkSecs, recordFile: relPath })
      }).pipe(Effect.tap((matched) => (matched ? queue.reported : Effect.void)))
      const failed = (e: unknown) => Effect.zipRight(Effect.logError("a box upload could not be stored", e), Effect.fail(new StorageFailed({ message: "the upload could not be stored; send it again" })))
      if (!file) {
        yield* write.pipe(Effect.catchAll(failed))
        return { callid: p.callid }
      }
      // from the rename on, the file and its rows succeed or fail together
      yield* Effect.uninterruptible(
        Effect.zipRight(
          // never over a file that is there: removing it again on failure would lose somebody's recording
          Effect.tryPromise({ try: () => commitFile(file.path, absolute, file.size, { replace: false }), catch: saveFailed }),
          write.pipe(
            Effect.catchAllDefect(failed),
            Effect.catchAll(failed),
            Effect.onExit((exit) => (Exit.isSuccess(exit) ? Effect.void : Effect.sync(() => fs.rmSync(absolute, { force: true }))))
          )
        )
      )
      return { callid: p.callid }
    })
  )
})

export const boxCommands: Readonly<Record<string, BoxCommand>> = {
  channelstatus,
  upload,
  getCallList,
  getMessageList: messageList(BoxSchema.getMessageList),
  getMessageList_1125: messageList(BoxSchema.getMessageList_1125)
}
