/**
 * The enterprises' call flows (§2.10.1) and their sounds. A flow is keyed by its name within
 * the enterprise; its sound is a file under <dataDir>/sound/<enterprise>/, served at
 * /voip/sound/<enterprise>/<name> (the contract's `cflsend_wfPath`). Flows come from the config
 * (upserted at every start, `origin='config'`, the config being the whole truth about its own),
 * from the admin API, and — once per enterprise, so a newcomer has one to use — an example.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Clock, Effect, Schema } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { Outbox } from "../events/Outbox.js"
import { Ids } from "../shared/Ids.js"
import { toneWav } from "../shared/Wav.js"
import { type FlowBody, type FlowItem, type FlowPatch, SoundName } from "./FlowSchema.js"

interface Row {
  readonly cfl_id: number
  readonly comp_number: string
  readonly name: string
  readonly sound: string
  readonly transfer_mode: number
  readonly transfer_times: number
  readonly is_record: number
  readonly send_interval: number
  readonly sms_status: number
  readonly sms_times: number
  readonly sms_content: string
  readonly group_call_times: number
  readonly origin: string
}

export const soundDir = (dataDir: string) => path.join(dataDir, "sound")

export const EXAMPLE = { name: "示例流程", sound: "welcome.wav" } as const

const toItem = (r: Row): FlowItem => ({
  id: r.cfl_id,
  enterprise: r.comp_number,
  name: r.name,
  sound: r.sound,
  wfPath: r.sound === "" ? "" : `${r.comp_number}/${r.sound}`,
  transferMode: r.transfer_mode,
  transferTimes: r.transfer_times,
  isRecord: r.is_record,
  sendInterval: r.send_interval,
  smsStatus: r.sms_status,
  smsTimes: r.sms_times,
  smsContent: r.sms_content,
  groupCallTimes: r.group_call_times,
  origin: r.origin
})

type Settings = Omit<typeof FlowBody.Type, "name">

const columns = (s: Settings) => ({
  sound: s.sound,
  transfer_mode: s.transferMode,
  transfer_times: s.transferTimes,
  is_record: s.isRecord,
  send_interval: s.sendInterval,
  sms_status: s.smsStatus,
  sms_times: s.smsTimes,
  sms_content: s.smsContent,
  group_call_times: s.groupCallTimes
})

const isSoundName = (s: string): boolean => Schema.is(SoundName)(s)

let written = 0

/**
 * Writes a sound in place whole and flushed: a flow never plays a half-written file, and two
 * writes of one name each have their own temporary file (the last rename wins). With
 * `onlyIfAbsent`, a sound already there (an operator's own) is left as it is.
 */
const writeSound = (dataDir: string, comp: string, name: string, bytes: Uint8Array, options: { readonly onlyIfAbsent?: boolean } = {}) =>
  Effect.tryPromise({
    try: async () => {
      const dir = path.join(soundDir(dataDir), comp)
      const target = path.join(dir, name)
      await fs.promises.mkdir(dir, { recursive: true })
      if (options.onlyIfAbsent && fs.existsSync(target)) return
      const temp = path.join(dir, `.${name}.${process.pid}.${++written}.tmp`)
      const handle = await fs.promises.open(temp, "w", 0o600)
      try {
        await handle.writeFile(bytes)
        await handle.sync()
      } finally {
        await handle.close()
      }
      await fs.promises.rename(temp, target)
    },
    catch: (e) => e
  })

export type Refused = { readonly refused: string }

export class FlowsStore extends Effect.Service<FlowsStore>()("FlowsStore", {
  dependencies: [Outbox.Default, Ids.Default],
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const outbox = yield* Outbox
    const ids = yield* Ids
    const config = yield* AppConfig

    const changed = (comp: string, action: "saved" | "deleted", flow: FlowItem) =>
      outbox.emit({ type: `flow.${action}`, enterprise: comp, source: "admin", data: flow })

    /** The example flow, once per enterprise (a deleted one is not brought back). */
    const seeded = (comp: string) =>
      Effect.gen(function* () {
        const [done] = yield* sql`SELECT 1 AS x FROM call_flow_seeds WHERE comp_number = ${comp}`
        if (done) return
        const exists = yield* sql`SELECT 1 AS x FROM enterprises WHERE comp_number = ${comp}`
        if (exists.length === 0) return
        // an operator's own welcome.wav, stored before the example was made, stays
        yield* writeSound(config.dataDir, comp, EXAMPLE.sound, toneWav(3), { onlyIfAbsent: true }).pipe(Effect.orDie)
        const now = yield* Clock.currentTimeMillis
        const id = yield* ids.next
        yield* sql.withTransaction(
          Effect.gen(function* () {
            yield* sql`INSERT INTO call_flow_seeds ${sql.insert({ comp_number: comp })} ON CONFLICT (comp_number) DO NOTHING`
            yield* sql`INSERT INTO call_flows ${sql.insert({
              cfl_id: id,
              comp_number: comp,
              name: EXAMPLE.name,
              ...columns({ sound: EXAMPLE.sound, transferMode: 3, transferTimes: 30, isRecord: 1, sendInterval: 0, smsStatus: 0, smsTimes: 0, smsContent: "", groupCallTimes: 30 }),
              origin: "example",
              created_at: now,
              updated_at: now
            })} ON CONFLICT (comp_number, name) DO NOTHING`
          })
        )
      })

    const list = (comp: string): Effect.Effect<ReadonlyArray<FlowItem>, SqlError> =>
      Effect.zipRight(seeded(comp), Effect.map(sql<Row>`SELECT * FROM call_flows WHERE comp_number = ${comp} ORDER BY cfl_id`, (rows) => rows.map(toItem)))

    const get = (comp: string, id: number) =>
      Effect.map(sql<Row>`SELECT * FROM call_flows WHERE comp_number = ${comp} AND cfl_id = ${id}`, ([row]) => (row ? toItem(row) : undefined))

    const soundProblem = (comp: string, sound: string) => {
      if (sound === "") return undefined
      if (!isSoundName(sound)) return `sound: ${JSON.stringify(sound.slice(0, 100))} is not a sound file name (such as welcome.wav)`
      return fs.existsSync(path.join(soundDir(config.dataDir), comp, sound)) ? undefined : `sound: no sound ${sound} for enterprise ${comp} (PUT it first)`
    }

    const create = (comp: string, body: typeof FlowBody.Type, origin = "admin") =>
      Effect.gen(function* () {
        yield* seeded(comp)
        const problem = soundProblem(comp, body.sound)
        if (problem !== undefined) return { refused: problem } as Refused
        const now = yield* Clock.currentTimeMillis
        const id = yield* ids.next
        return yield* sql.withTransaction(
          Effect.gen(function* () {
            const [taken] = yield* sql`SELECT 1 AS x FROM call_flows WHERE comp_number = ${comp} AND name = ${body.name}`
            if (taken) return "exists" as const
            yield* sql`INSERT INTO call_flows ${sql.insert({ cfl_id: id, comp_number: comp, name: body.name, ...columns(body), origin, created_at: now, updated_at: now })}`
            const flow = (yield* get(comp, id))!
            yield* changed(comp, "saved", flow)
            return flow
          })
        )
      })

    const update = (comp: string, id: number, patch: typeof FlowPatch.Type) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        return yield* sql.withTransaction(
          Effect.gen(function* () {
            const existing = yield* get(comp, id)
            if (!existing) return undefined
            // the config is the whole truth about its own flows: an edit here would be undone at the next start
            if (existing.origin === "config") return { refused: `flow ${existing.name} comes from the config file (callFlows): change it there` } as Refused
            const merged = { ...existing, ...Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)) } as FlowItem
            const problem = soundProblem(comp, merged.sound)
            if (problem !== undefined) return { refused: problem } as Refused
            if (merged.name !== existing.name) {
              const [taken] = yield* sql`SELECT 1 AS x FROM call_flows WHERE comp_number = ${comp} AND name = ${merged.name}`
              if (taken) return "exists" as const
            }
            yield* sql`UPDATE call_flows SET ${sql.update({ name: merged.name, ...columns(merged), updated_at: now })} WHERE comp_number = ${comp} AND cfl_id = ${id}`
            const flow = (yield* get(comp, id))!
            yield* changed(comp, "saved", flow)
            return flow
          })
        )
      })

    const remove = (comp: string, id: number) =>
      sql.withTransaction(
        Effect.gen(function* () {
          const existing = yield* get(comp, id)
          if (!existing) return false
          if (existing.origin === "config") return { refused: `flow ${existing.name} comes from the config file (callFlows): remove it there` } as Refused
          yield* sql`DELETE FROM call_flows WHERE comp_number = ${comp} AND cfl_id = ${id}`
          yield* changed(comp, "deleted", existing)
          return true
        })
      )

    const saveSound = (comp: string, name: string, bytes: Uint8Array) => writeSound(config.dataDir, comp, name, bytes)

    /**
     * The flows of the config, upserted by name; one whose enterprise is unknown or whose sound
     * file cannot be read is refused (the caller logs it). A config flow no longer in the config
     * is deleted.
     */
    const upsertConfigured = Effect.gen(function* () {
      const refused: Array<{ readonly flow: string; readonly problem: string }> = []
      const kept = new Set<string>()
      for (const f of config.callFlows) {
        const label = `${f.enterprise}/${f.name}`
        const [exists] = yield* sql`SELECT 1 AS x FROM enterprises WHERE comp_number = ${f.enterprise}`
        if (!exists) {
          refused.push({ flow: label, problem: `enterprise: no enterprise ${f.enterprise}` })
          continue
        }
        let sound = f.sound
        if (f.soundFile !== undefined) {
          const name = path.basename(f.soundFile)
          if (!isSoundName(name)) {
            refused.push({ flow: label, problem: `soundFile: ${name} is not a sound file name (.wav, .mp3 or .gsm)` })
            continue
          }
          const copied = yield* Effect.tryPromise(() => fs.promises.readFile(f.soundFile!)).pipe(
            Effect.flatMap((bytes) => writeSound(config.dataDir, f.enterprise, name, bytes)),
            Effect.either
          )
          if (copied._tag === "Left") {
            refused.push({ flow: label, problem: `soundFile: ${f.soundFile} cannot be read` })
            continue
          }
          sound = name
        }
        const problem = soundProblem(f.enterprise, sound)
        if (problem !== undefined) {
          refused.push({ flow: label, problem })
          continue
        }
        const now = yield* Clock.currentTimeMillis
        const id = yield* ids.next
        yield* sql`INSERT INTO call_flows ${sql.insert({ cfl_id: id, comp_number: f.enterprise, name: f.name, ...columns({ ...f, sound }), origin: "config", created_at: now, updated_at: now })}
          ON CONFLICT (comp_number, name) DO UPDATE SET sound = excluded.sound, transfer_mode = excluded.transfer_mode, transfer_times = excluded.transfer_times,
            is_record = excluded.is_record, send_interval = excluded.send_interval, sms_status = excluded.sms_status, sms_times = excluded.sms_times,
            sms_content = excluded.sms_content, group_call_times = excluded.group_call_times, origin = 'config', updated_at = excluded.updated_at`
        kept.add(label)
      }
      const stale = (yield* sql<{ cfl_id: number; comp_number: string; name: string }>`SELECT cfl_id, comp_number, name FROM call_flows WHERE origin = 'config'`).filter(
        (r) => !kept.has(`${r.comp_number}/${r.name}`)
      )
      for (const r of stale) yield* sql`DELETE FROM call_flows WHERE cfl_id = ${r.cfl_id}`
      return { refused, removed: stale.map((r) => `${r.comp_number}/${r.name}`) }
    })

    return { list, get, create, update, remove, saveSound, upsertConfigured } as const
  })
}) {}
