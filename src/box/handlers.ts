/**
 * The methods the recording boxes answer: §2.5.1 sendTelCall (a box's phone dials, handed out by
 * its getCallList poll) and the channel monitor of §2.2.1 systemChannels / §2.2.2 getChannelList,
 * answered from the boxes' live state (their heartbeats, cmd=channelstatus).
 */
import { Effect } from "effect"
import * as spec from "../../schemas/system.js"
import { CHANNEL_STATE_TEXT } from "../../schemas/box.js"
import { NoPermission } from "../api/Errors.js"
import { implement } from "../api/Implementation.js"
import { AppConfig } from "../config/AppConfig.js"
import { formatLocal } from "../shared/Time.js"
import { refuseBlacklisted } from "../blacklist/Listed.js"
import { Telephony } from "../telephony/Telephony.js"
import { type Device, DevicesStore } from "./DevicesStore.js"

/** Channel states of a line in use: ringing, dialling, talking. */
const IN_USE = new Set([2, 3, 4])

/**
 * Every channel of an enterprise's boxes — those assigned an extension and those its heartbeats
 * report — as the monitor shows it. An offline box's lines are 未连接 whatever it last said.
 */
const channelsOf = (devices: ReadonlyArray<Device>, tz: string) =>
  devices.flatMap((device) => {
    const numbers = new Set([...Object.keys(device.channels).map(Number), ...device.live.map((c) => c.ch)])
    return [...numbers]
      .sort((a, b) => a - b)
      .map((ch) => {
        const live = device.live.find((c) => c.ch === ch)
        const online = device.presence === "online"
        const state = online && live ? live.state : 0
        return {
          channelName: `${device.mac}/${ch}`,
          mac: device.mac,
          ch,
          extension: device.channels[String(ch)] ?? null,
          online,
          state,
          stateText: CHANNEL_STATE_TEXT[state] ?? "",
          phone: online && live ? live.phone : "",
          peer: online && live ? live.peer : null,
          calltime: online && live ? live.timelen : null,
          changedAt: live?.changedAt ?? null,
          changeTime: live ? formatLocal(live.changedAt, tz) : ""
        }
      })
  })

const ownEnterprise = (compNumber: string | undefined, own: string) =>
  compNumber === undefined || compNumber.trim() === "" || compNumber.trim() === own
    ? Effect.void
    : Effect.fail(new NoPermission({ message: `enterprise ${compNumber} is not yours` }))

export const handlers = [
  // the driver in force dials: the box and simulator drivers queue it for the box's getCallList, upstream relays it
  implement(spec.sendTelCall, ({ mac, channel, phone }, caller) =>
    Effect.gen(function* () {
      yield* refuseBlacklisted(caller, [["phone", phone]])
      yield* (yield* Telephony).dialOnDevice({ mac, channel, phone }, caller)
      return {}
    })
  ),

  // The bridge's lines are the boxes' RJ11 channels: no group-call (群呼) channels exist here.
  implement(spec.systemChannels, ({ CompNumber }, caller) =>
    Effect.gen(function* () {
      yield* ownEnterprise(CompNumber, caller.enterprise.comp_number)
      const { tz } = yield* AppConfig
      const channels = channelsOf(yield* (yield* DevicesStore).listOf(caller.enterprise.comp_number), tz)
      return {
        channelviewinfo: channels,
        totalNum: channels.length,
        totalGroupCallNum: 0,
        useGroupCallNum: 0,
        useAgiCallNum: channels.filter((c) => IN_USE.has(c.state)).length,
        channelNum: channels.length
      }
    })
  ),

  /**
   * queueSize=1: the calls waiting (lines ringing), longest waiting first; 0: every line in use.
   * queueId is the place in that order, from 1.
   */
  implement(spec.getChannelList, ({ queueSize }, caller) =>
    Effect.gen(function* () {
      const { tz } = yield* AppConfig
      const channels = channelsOf(yield* (yield* DevicesStore).listOf(caller.enterprise.comp_number), tz)
      const rows = channels
        .filter((c) => (queueSize === 1 ? c.state === 2 : IN_USE.has(c.state)))
        .sort((a, b) => (a.changedAt ?? 0) - (b.changedAt ?? 0))
      return { rows: rows.map((c, i) => ({ channelName: c.channelName, callinTel: c.phone, createTime: c.changeTime, queueId: i + 1 })) }
    })
  )
]
