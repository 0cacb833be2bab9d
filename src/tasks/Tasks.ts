/**
 * Outbound call tasks (外呼任务, §2.10.2–2.10.3, §2.1.8 / §2.7.2). A task is a list of numbers
 * stored whole in one transaction with its `task.added` event. Automatic tasks (addType 1, 3)
 * are dialled here, on the telephony driver in force, from `sendTime` on, `sendInterval`
 * seconds apart (0: as many at once as MAX_CALLS allows); each number's status and outcome is
 * its row. Manual tasks (addType 2, 4) hand their numbers to the allotted agents one at a time
 * (getTaskDetailPhone), each number exactly once: one UPDATE … RETURNING takes it, and SQLite
 * runs that whole under its write lock, so two agents asking at once never get the same one.
 * A task whose numbers are all done (dialled to an end, or handed out) is finished, with its
 * `task.finished` event carrying the counts per status.
 *
 * Under the upstream driver a task is relayed to the platform whole (addTask) and kept here with
 * the platform's id; the platform dials it and hands its numbers out, so this dialler and the
 * manual claims leave it alone (src/tasks/handlers.ts relays findTaskMx / getTaskDetailPhone).
 *
 * What was dialled is stored before it is dialled, so a restart goes on with the numbers not
 * yet dialled; a number whose simulated call a stop cut short ends as not answered
 * (INTERRUPTED), as a callback does, and is not dialled again.
 */
import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Duration, Effect, Option, Queue } from "effect"
import type { Caller } from "../auth/Auth.js"
import { firstListed } from "../blacklist/Listed.js"
import { AppConfig } from "../config/AppConfig.js"
import { GroupCommit } from "../db/GroupCommit.js"
import type { Prepared } from "../db/Sqlite.js"
import { Outbox } from "../events/Outbox.js"
import { ExtensionsRepo } from "../extensions/ExtensionsRepo.js"
import { FlowsStore } from "../flows/FlowsStore.js"
import type { FlowItem } from "../flows/FlowSchema.js"
import { Ids } from "../shared/Ids.js"
import { type CallState, STATUS } from "../telephony/Driver.js"
import { Telephony } from "../telephony/Telephony.js"

/** The most numbers one task holds (above: -12): 10,000 store in well under a second, and fit http.bodyLimitBytes's default. */
export const MAX_TASK_NUMBERS = 10_000
/** Task calls this bridge has ringing at once, over all tasks: the driver's load, and the database's. */
export const MAX_CALLS = 64
/** A number not answered is dialled this many more times when the task says repeatSend=1. */
export const MAX_REPEATS = 1
/** How long a task waits when its line had no room for a dial (the box driver's channel queue was full). */
const LINE_FULL_BACKOFF_MS = 1_000
/** How often the dialler looks for due tasks when nothing wakes it. */
const IDLE_MS = 1_000

export const INTERRUPTED = "INTERRUPTED"
export const BLACKLISTED = "BLACKLISTED"

export const isAutomatic = (addType: number) => addType === 1 || addType === 3

export interface TaskRow {
  readonly ctk_id: number
  readonly comp_number: string
  readonly name: string
  readonly add_type: number
  readonly cfl_id: number | null
  readonly cfl_name: string
  readonly send_ms: number
  readonly repeat_send: number
  readonly send_interval: number
  readonly attri_exte: string
  readonly wot_name: string
  readonly creator_exte_id: number
  readonly driver: string
  readonly total: number
  readonly next_dial_ms: number
  readonly created_ms: number
  readonly finished_ms: number | null
}

export interface NumberRow {
  readonly ctd_id: number
  readonly ctk_id: number
  readonly seq: number
  readonly phone: string
  readonly key: string
  readonly memo: string
  readonly wo_other: string
  readonly status: number
  readonly claimed_by: string | null
  readonly call_ms: number | null
  readonly begin_ms: number | null
  readonly success_ms: number | null
  readonly end_ms: number | null
  readonly transfer_success_ms: number | null
  readonly transfer_end_ms: number | null
  readonly talk_secs: number
  readonly transfer_secs: number
  readonly result_code: string
  readonly wav_file: string
  readonly cdr_id: string | null
  readonly re_num: number
}

export interface NewTask {
  readonly caller: Caller
  readonly name: string
  readonly addType: number
  readonly flow: FlowItem | undefined
  readonly sendMs: number
  readonly repeatSend: number
  readonly sendInterval: number
  readonly allot: ReadonlyArray<string>
  readonly attri: string
  readonly wotName: string
  readonly items: ReadonlyArray<{ readonly phone: string; readonly key?: string | undefined; readonly memo?: string | undefined; readonly [k: string]: unknown }>
  /** the platform's id of a task relayed to it whole (the upstream driver): the platform dials it, not this bridge */
  readonly upstreamId?: string | null | undefined
  /** a relayed task's flow, by the platform's name of it (no flow of ours) */
  readonly cflName?: string | undefined
}

const INSERT_TASK = `INSERT INTO call_tasks (ctk_id, comp_number, name, add_type, cfl_id, cfl_name, send_ms, repeat_send, send_interval, attri_exte, wot_name,
  creator_exte_id, driver, total, next_dial_ms, created_ms, upstream_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)`
const INSERT_AGENT = `INSERT OR IGNORE INTO call_task_agents (extension, ctk_id) VALUES (?, ?)`
const INSERT_NUMBER = `INSERT INTO call_task_numbers (ctd_id, ctk_id, seq, phone, key, memo, wo_other) VALUES (?, ?, ?, ?, ?, ?, ?)`
/** Something of the task is left: a number not yet ended (automatic: an answered call may still be transferring), or not yet handed out (manual). */
const LEFT_AUTOMATIC = `SELECT 1 FROM call_task_numbers WHERE ctk_id = ? AND end_ms IS NULL LIMIT 1`
const LEFT_MANUAL = `SELECT 1 FROM call_task_numbers WHERE ctk_id = ? AND status = 0 LIMIT 1`
const GROUPS = `SELECT status AS ctdStatus, count(*) AS num FROM call_task_numbers WHERE ctk_id = ? GROUP BY status ORDER BY status`
/** The next numbers of an automatic task: one statement marks them and returns them (see the module's note). */
const CLAIM_AUTOMATIC = `UPDATE call_task_numbers SET status = 1, call_ms = ?
  WHERE ctd_id IN (SELECT ctd_id FROM call_task_numbers WHERE ctk_id = ? AND status = 0 ORDER BY re_num, seq LIMIT CAST(? AS INTEGER)) AND status = 0
  RETURNING *`
/** The manual task an agent is served from: the earliest due one with a number left. */
const NEXT_MANUAL_TASK = `SELECT t.ctk_id, t.cfl_id FROM call_task_agents a JOIN call_tasks t ON t.ctk_id = a.ctk_id
  WHERE a.extension = ? AND t.comp_number = ? AND t.finished_ms IS NULL AND t.add_type IN (2, 4) AND t.send_ms <= ? AND t.driver <> 'upstream'
    AND EXISTS (SELECT 1 FROM call_task_numbers n WHERE n.ctk_id = t.ctk_id AND n.status = 0)
  ORDER BY t.send_ms, t.ctk_id LIMIT 1`
const CLAIM_MANUAL = `UPDATE call_task_numbers SET status = 1, claimed_by = ?, call_ms = ?
  WHERE ctd_id = (SELECT ctd_id FROM call_task_numbers WHERE ctk_id = ? AND status = 0 ORDER BY re_num, seq LIMIT 1) AND status = 0
  RETURNING ctd_id, ctk_id, phone`
const PROGRESS = `UPDATE call_task_numbers SET status = ?, begin_ms = ?, success_ms = ?, end_ms = ?, transfer_success_ms = ?, transfer_end_ms = ?,
  talk_secs = ?, transfer_secs = ?, result_code = ?, wav_file = ?, cdr_id = ?, claimed_by = ? WHERE ctd_id = ?`
/** Not answered, with a repeat left: back in the queue, behind the numbers of the first round. */
const REQUEUE = `UPDATE call_task_numbers SET status = 0, re_num = re_num + 1, call_ms = NULL, begin_ms = NULL, success_ms = NULL, end_ms = NULL,
  transfer_success_ms = NULL, transfer_end_ms = NULL, talk_secs = 0, transfer_secs = 0, cdr_id = NULL, claimed_by = NULL WHERE ctd_id = ?`

/** How long a flow's sound plays before the call is transferred or hung up (mode 2 transfers at once). */
const flowPlay = (flow: FlowItem | undefined, label: string) => ({
  playMs: flow === undefined || flow.transferMode === 2 ? 0 : flow.transferTimes * 1000,
  transfer: flow !== undefined && flow.transferMode !== 1,
  label
})

export class Tasks extends Effect.Service<Tasks>()("Tasks", {
  dependencies: [Outbox.Default, GroupCommit.Default, Ids.Default, Telephony.Default, ExtensionsRepo.Default, FlowsStore.Default],
  scoped: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const commit = yield* GroupCommit
    const outbox = yield* Outbox
    const ids = yield* Ids
    const telephony = yield* Telephony
    const repo = yield* ExtensionsRepo
    const flows = yield* FlowsStore
    const config = yield* AppConfig
    const wakeUp = yield* Queue.sliding<void>(1)
    const wake = Effect.asVoid(Queue.offer(wakeUp, undefined))

    /** Finishes the task when nothing of it is left to dial or hand out, on the caller's connection; its event says the counts. */
    const finishIfDoneIn = (prepared: Prepared, task: Pick<TaskRow, "ctk_id" | "comp_number" | "name" | "total" | "add_type">) => {
      if (prepared(isAutomatic(task.add_type) ? LEFT_AUTOMATIC : LEFT_MANUAL).get(task.ctk_id) !== undefined) return
      const now = Date.now()
      const changed = prepared(`UPDATE call_tasks SET finished_ms = ? WHERE ctk_id = ? AND finished_ms IS NULL`).run(now, task.ctk_id).changes
      if (changed === 0) return
      const groupData = prepared(GROUPS).all(task.ctk_id) as Array<{ ctdStatus: number; num: number }>
      outbox.emitIn(prepared, {
        type: "task.finished",
        enterprise: task.comp_number,
        source: "tasks",
        data: { id: task.ctk_id, name: task.name, total: task.total, groupData },
        dedupKey: `task:finished:${task.ctk_id}`
      })
    }

    /** A new task and all its numbers, one transaction with its `task.added` event. */
    const create = (t: NewTask) =>
      Effect.gen(function* () {
        const id = yield* ids.next
        const now = Date.now()
        const comp = t.caller.enterprise.comp_number
        yield* commit.submit((_, prepared) => {
          prepared(INSERT_TASK).run(
            id, comp, t.name, t.addType, t.flow?.id ?? null, t.flow?.name ?? t.cflName ?? "", t.sendMs, t.repeatSend, t.sendInterval, t.attri, t.wotName,
            t.caller.extension.exte_id, telephony.name, t.items.length, now, t.upstreamId ?? null
          )
          const agent = prepared(INSERT_AGENT)
          for (const extension of t.allot) agent.run(extension, id)
          const insert = prepared(INSERT_NUMBER)
          t.items.forEach((item, seq) => {
            const { phone, key, memo, ...rest } = item
            const others = Object.fromEntries(Object.entries(rest).filter(([k, v]) => k.startsWith("woOther") && v !== undefined))
            insert.run(ids.nextSync(), id, seq, phone, key ?? "", memo ?? "", JSON.stringify(others))
          })
          outbox.emitIn(prepared, {
            type: "task.added",
            enterprise: comp,
            source: "api:addTask",
            data: { id, name: t.name, addType: t.addType, cflId: t.flow?.id ?? null, cflName: t.flow?.name ?? t.cflName ?? "", sendTime: t.sendMs, total: t.items.length, allotExte: t.allot, attriExte: t.attri },
            dedupKey: `task:added:${id}`
          })
        })
        if (isAutomatic(t.addType) && t.upstreamId === undefined) yield* wake
        return id
      })

    /** getTaskDetailPhone: the agent's next manual-dial number, taken for good; undefined when none is waiting. */
    const claimManual = (caller: Caller) =>
      commit.submit((_, prepared) => {
        const now = Date.now()
        const task = prepared(NEXT_MANUAL_TASK).get(caller.extension.extension, caller.enterprise.comp_number, now) as { ctk_id: number; cfl_id: number | null } | undefined
        if (task === undefined) return undefined
        const taken = prepared(CLAIM_MANUAL).get(caller.extension.extension, now, task.ctk_id) as { ctd_id: number; ctk_id: number; phone: string } | undefined
        if (taken === undefined) return undefined
        const row = prepared(`SELECT ctk_id, comp_number, name, total, add_type FROM call_tasks WHERE ctk_id = ?`).get(task.ctk_id) as TaskRow
        finishIfDoneIn(prepared, row)
        return { phone: taken.phone, cflId: task.cfl_id, ctdId: taken.ctd_id }
      })

    // ---- the dialler of automatic tasks

    let inFlight = 0
    /** who a task's calls are placed as (and transferred to): its allotted agents in turn, else its owner */
    const agents = new Map<number, { readonly callers: ReadonlyArray<Caller>; next: number }>()
    const agentsOf = (task: TaskRow) =>
      Effect.gen(function* () {
        const known = agents.get(task.ctk_id)
        if (known) return known
        const enterprise = Option.getOrUndefined(yield* repo.enterprise(task.comp_number))
        const names = (yield* sql<{ extension: string }>`SELECT extension FROM call_task_agents WHERE ctk_id = ${task.ctk_id} ORDER BY extension`).map((r) => r.extension)
        const callers: Array<Caller> = []
        if (enterprise)
          for (const name of names) {
            const extension = Option.getOrUndefined(yield* repo.findByExtension(name))
            if (extension && extension.comp_number === task.comp_number) callers.push({ extension, enterprise, isAdmin: false })
          }
        // nobody allotted is left: the task's owner
        const owner = enterprise && callers.length === 0 ? Option.getOrUndefined(yield* repo.findByExtension(task.attri_exte)) : undefined
        if (enterprise && owner && owner.comp_number === task.comp_number) callers.push({ extension: owner, enterprise, isAdmin: false })
        const entry = { callers, next: 0 }
        agents.set(task.ctk_id, entry)
        return entry
      })

    /** The number's call moved on: its row follows; an end may requeue it or finish its task. */
    const store = (task: TaskRow, n: NumberRow, agent: string, s: CallState) =>
      commit.submit((_, prepared) => {
        prepared(PROGRESS).run(
          s.status, s.beginMs, s.successMs, s.ended ? (s.endMs ?? Date.now()) : s.endMs, s.transferSuccessMs, s.transferEndMs,
          s.talkSecs, s.transferSecs, s.resultCode, s.recordFile, s.cdrId, s.status === STATUS.transferred ? agent : null, n.ctd_id
        )
        if (!s.ended) return
        if (s.status === STATUS.notAnswered && task.repeat_send === 1 && n.re_num < MAX_REPEATS) prepared(REQUEUE).run(n.ctd_id)
        else finishIfDoneIn(prepared, task)
      })
    const progress = (task: TaskRow, n: NumberRow, agent: string, s: CallState) =>
      store(task, n, agent, s).pipe(Effect.catchAll((e) => Effect.logError("a task number's progress could not be stored", e)))

    // a call whose end the driver learns later (the box's upload, or none by its due time): found by its number
    yield* telephony.onEnd("task", (ctdId, s) =>
      Effect.gen(function* () {
        const [n] = yield* sql<NumberRow>`SELECT * FROM call_task_numbers WHERE ctd_id = ${ctdId}`
        const [task] = n === undefined ? [] : yield* sql<TaskRow>`SELECT * FROM call_tasks WHERE ctk_id = ${n.ctk_id}`
        // a box call is never transferred: no agent is named. Its failure keeps the end to be delivered again (src/telephony/BoxDriver.ts)
        if (n !== undefined && task !== undefined) yield* store(task, n, "", s)
      })
    )

    const ended = (resultCode: string) => ({
      status: STATUS.notAnswered, beginMs: null, successMs: null, endMs: Date.now(), transferSuccessMs: null, transferEndMs: null,
      talkSecs: 0, transferSecs: 0, resultCode, errorCode: "", recordFile: "", cdrId: null, ended: true
    } satisfies CallState)

    const release = Effect.zipRight(Effect.sync(() => void inFlight--), wake)

    /** Places one number's call; its life runs on the driver's fibers, releasing its slot when over. */
    const dial = (task: TaskRow, flow: FlowItem | undefined, n: NumberRow) =>
      Effect.gen(function* () {
        const pool = yield* agentsOf(task)
        const caller = pool.callers[pool.next++ % Math.max(1, pool.callers.length)]
        if (caller === undefined) return yield* Effect.zipRight(progress(task, n, "", ended("NO_EXTENSION")), release)
        if ((yield* firstListed(task.comp_number, [n.phone]).pipe(Effect.provideService(SqlClient.SqlClient, sql))) !== undefined) return yield* Effect.zipRight(progress(task, n, "", ended(BLACKLISTED)), release)
        const placed = yield* telephony.place({
          kind: "task",
          id: n.ctd_id,
          caller,
          from: caller.extension.extension,
          to: n.phone,
          record: (flow?.isRecord ?? 0) > 0,
          flow: flowPlay(flow, task.name),
          params: {}
        })
        yield* telephony.start(placed.run((state) => progress(task, n, caller.extension.extension, state)).pipe(Effect.ensuring(release)))
      }).pipe(
        // the line is full (a box channel holds MAX_WAITING_PER_CHANNEL dials): the number waits its turn, the task a while
        Effect.catchTag("OverLimit", () =>
          Effect.zipRight(
            commit
              .submit((_, prepared) => {
                prepared(`UPDATE call_task_numbers SET status = 0, call_ms = NULL WHERE ctd_id = ? AND status = 1`).run(n.ctd_id)
                prepared(`UPDATE call_tasks SET next_dial_ms = max(next_dial_ms, ?) WHERE ctk_id = ?`).run(Date.now() + LINE_FULL_BACKOFF_MS, task.ctk_id)
              })
              .pipe(Effect.catchAll((e) => Effect.logError("a task number the line had no room for could not be put back", e))),
            release
          )
        ),
        Effect.catchAll((e) =>
          Effect.zipRight(Effect.logWarning("a task number could not be dialled", e), Effect.zipRight(progress(task, n, "", ended(e._tag === "SqlError" ? "FAILED" : e._tag)), release))
        )
      )

    /** One look at the due automatic tasks: as many of their numbers dialled as there are free slots. */
    const tick: Effect.Effect<number, SqlError> = Effect.gen(function* () {
      const now = Date.now()
      // a task relayed to the platform is the platform's to dial
      const due = yield* sql<TaskRow>`SELECT * FROM call_tasks WHERE finished_ms IS NULL AND add_type IN (1, 3) AND send_ms <= ${now} AND driver <> 'upstream' ORDER BY send_ms, ctk_id`
      let soonest = now + IDLE_MS
      for (const task of due) {
        if (task.next_dial_ms > now) {
          soonest = Math.min(soonest, task.next_dial_ms)
          continue
        }
        const room = MAX_CALLS - inFlight
        if (room <= 0) break
        const paced = task.send_interval > 0
        const claimed = yield* commit.submit((_, prepared) => {
          const rows = prepared(CLAIM_AUTOMATIC).all(now, task.ctk_id, paced ? 1 : room) as Array<NumberRow>
          if (paced && rows.length > 0) prepared(`UPDATE call_tasks SET next_dial_ms = ? WHERE ctk_id = ?`).run(now + task.send_interval * 1000, task.ctk_id)
          if (rows.length === 0) finishIfDoneIn(prepared, task)
          return rows.sort((a, b) => a.re_num - b.re_num || a.seq - b.seq)
        })
        if (claimed.length === 0) {
          // nothing more to dial now: who it dials as is looked up again should a repeat come
          agents.delete(task.ctk_id)
          continue
        }
        if (paced) soonest = Math.min(soonest, now + task.send_interval * 1000)
        const flow = task.cfl_id === null ? undefined : yield* flows.get(task.comp_number, task.cfl_id)
        inFlight += claimed.length
        // one at a time: placing is quick (the call's life is forked), and a dial's order is the list's
        for (const n of claimed) yield* dial(task, flow, n)
      }
      return Math.max(0, soonest - Date.now())
    })

    // a stop cut these short: never dialled (no call began) go back; begun ones ended, as a callback's do
    const started = Date.now()
    yield* sql`UPDATE call_task_numbers SET status = 0, call_ms = NULL WHERE status = 1 AND begin_ms IS NULL AND claimed_by IS NULL
      AND ctk_id IN (SELECT ctk_id FROM call_tasks WHERE finished_ms IS NULL AND add_type IN (1, 3))`
    yield* sql`UPDATE call_task_numbers SET status = 3, end_ms = ${started}, result_code = ${INTERRUPTED} WHERE status IN (1, 4, 5) AND end_ms IS NULL AND begin_ms IS NOT NULL
      AND ctk_id IN (SELECT ctk_id FROM call_tasks WHERE finished_ms IS NULL AND add_type IN (1, 3) AND driver = 'simulator')`

    yield* Effect.gen(function* () {
      for (;;) {
        const waitMs = yield* tick.pipe(Effect.catchAll((e) => Effect.as(Effect.logError("the task dialler could not look for due tasks", e), IDLE_MS)))
        yield* Effect.raceFirst(Queue.take(wakeUp), Effect.sleep(Duration.millis(Math.max(10, waitMs))))
      }
    }).pipe(Effect.interruptible, Effect.forkScoped)

    return { create, claimManual, finishIfDoneIn, tz: config.tz } as const
  })
}) {}
