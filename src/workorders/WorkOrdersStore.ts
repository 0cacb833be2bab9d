/**
 * Work-order types (steps, people, field labels, code trees), work orders and their
 * attachments, per enterprise. Every statement names the enterprise: a type or work order of
 * another enterprise reads as none. Writers run inside their caller's transaction, so a change
 * and its event commit together.
 */
import { SqlClient } from "@effect/sql"
import { Effect, Schema } from "effect"
import { EventsStore } from "../events/EventsStore.js"
import { TargetSchema } from "../forwarding/Target.js"
import { Targets } from "../forwarding/Targets.js"
import { AppConfig } from "../config/AppConfig.js"
import { Ids } from "../shared/Ids.js"
import { formatLocal } from "../shared/Time.js"
import type { TypeDefinition, TypeItem } from "./Definition.js"
import { pushTargetName } from "./PushTarget.js"

export interface TypeRecord {
  readonly wot_id: number
  readonly comp_number: string
  readonly name: string
  readonly push_url: string | null
}

export interface StepRecord {
  readonly wos_id: number
  readonly wot_id: number
  readonly idx: number
  readonly name: string
  readonly is_end: number
  readonly push_save: number
  readonly push_submit: number
  readonly push_return: number
}

export interface PersonRecord {
  readonly exte_id: number
  readonly extension: string
  readonly name: string
  readonly dept_id: number | null
}

export interface CodeRecord {
  readonly code_id: number
  readonly code_code: string
  readonly code_name: string
  readonly parent_id: number | null
}

export interface WorkOrderRecord {
  readonly wo_id: number
  readonly comp_number: string
  readonly wot_id: number
  readonly cust_id: number | null
  readonly code: string
  readonly phone: string
  readonly step: number
  readonly question: string
  readonly create_exte_id: number | null
  readonly create_exte_name: string
  readonly assignee: number | null
  /** JSON: woOtherN, woMoney, woMoney2, woStepN* as the contract names them */
  readonly fields: string
  readonly created_ms: number
  readonly updated_ms: number
  readonly end_ms: number | null
}

export type WorkOrderValues = Omit<WorkOrderRecord, "wo_id" | "comp_number" | "created_ms">

export interface AttachmentRecord {
  readonly wa_id: number
  readonly wo_id: number
  readonly comp_number: string
  readonly name: string
  readonly rel_path: string
  readonly size: number
}

export interface ListFilter {
  readonly compNumber: string
  readonly wotId: number
  readonly from: number
  readonly to: number
  readonly step: number | undefined
  readonly phoneNorm: string | undefined
  /** searched as itself in the code, question, phone and fields: never a pattern */
  readonly text: string | undefined
  /** an agent: only the work orders it created, is assigned, or whose step it is a person of */
  readonly agent: number | undefined
  readonly offset: number
  readonly limit: number
}

/** A definition would drop steps that work orders are at: they could neither be saved nor moved. */
export class StepsInUse extends Schema.TaggedError<StepsInUse>()("StepsInUse", { message: Schema.String }) {}
const decodeTarget = Schema.decodeUnknownSync(TargetSchema)

export class WorkOrdersStore extends Effect.Service<WorkOrdersStore>()("WorkOrdersStore", {
  dependencies: [Ids.Default, Targets.Default, EventsStore.Default],
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const ids = yield* Ids
    const targets = yield* Targets
    const events = yield* EventsStore
    const { tz } = yield* AppConfig

    const types = (compNumber: string) => sql<TypeRecord>`SELECT wot_id, comp_number, name, push_url FROM wo_types WHERE comp_number = ${compNumber} ORDER BY wot_id`

    const type = (compNumber: string, wotId: number) =>
      Effect.map(sql<TypeRecord>`SELECT wot_id, comp_number, name, push_url FROM wo_types WHERE comp_number = ${compNumber} AND wot_id = ${wotId}`, (rows) => rows[0])

    const steps = (wotId: number) => sql<StepRecord>`SELECT * FROM wo_steps WHERE wot_id = ${wotId} ORDER BY idx`

    /** The people of a step; a step that lists none is everyone's of the enterprise. */
    const people = (compNumber: string, wotId: number, idx: number | undefined) =>
      Effect.gen(function* () {
        const listed = yield* sql<PersonRecord & { idx: number }>`SELECT p.idx, e.exte_id, e.extension, e.name, e.dept_id FROM wo_step_people p
          JOIN extensions e ON e.exte_id = p.exte_id WHERE p.wot_id = ${wotId} AND e.comp_number = ${compNumber} ORDER BY e.suffix`
        const all = () => sql<PersonRecord>`SELECT exte_id, extension, name, dept_id FROM extensions WHERE comp_number = ${compNumber} ORDER BY suffix`
        if (idx !== undefined) {
          const ofStep = listed.filter((p) => p.idx === idx)
          return ofStep.length > 0 ? ofStep : yield* all()
        }
        const stepsWithPeople = new Set(listed.map((p) => p.idx))
        const open = (yield* steps(wotId)).some((s) => !stepsWithPeople.has(s.idx))
        if (open) return yield* all()
        const seen = new Set<number>()
        return listed.filter((p) => !seen.has(p.exte_id) && seen.add(p.exte_id))
      })

    const codes = (wotId: number, field: string, parent: number | undefined) =>
      parent === undefined
        ? sql<CodeRecord>`SELECT code_id, code_code, code_name, parent_id FROM wo_codes WHERE wot_id = ${wotId} AND field = ${field} ORDER BY position`
        : sql<CodeRecord>`SELECT code_id, code_code, code_name, parent_id FROM wo_codes WHERE wot_id = ${wotId} AND field = ${field} AND parent_id = ${parent} ORDER BY position`

    const fields = (wotId: number) => sql<{ field: string; label: string }>`SELECT field, label FROM wo_fields WHERE wot_id = ${wotId} ORDER BY field`

    /**
     * The type's push goes out through a target of its own, which matches no event by itself: a step's setting adds each delivery.
     * A push URL taken off takes the target with it, and what waited for it becomes dead letters (as a deleted target's do).
     */
    const syncPushTarget = (wotId: number, pushUrl: string | undefined) =>
      pushUrl === undefined
        ? Effect.zipRight(targets.remove(pushTargetName(wotId)), Effect.asVoid(events.deadLetterWaiting(pushTargetName(wotId))))
        : targets.save(decodeTarget({ name: pushTargetName(wotId), url: pushUrl, events: [], format: "800ing" }), "api")

    /**
     * Writes a whole definition over the type of the same enterprise and name (or a new one).
     * Steps keep their ids by index; people, labels and codes are replaced. Answers the type's id.
     * Unknown extension numbers are refused by the caller (`unknownPeople`). Fails with StepsInUse, before
     * writing anything, when the definition has fewer steps than a work order of the type is at.
     */
    const saveType = (def: TypeDefinition, now: number) =>
      Effect.gen(function* () {
        const existing = yield* sql<{ wot_id: number }>`SELECT wot_id FROM wo_types WHERE comp_number = ${def.enterprise} AND name = ${def.name}`
        const wotId = existing[0]?.wot_id ?? (yield* ids.next)
        if (existing[0] === undefined)
          yield* sql`INSERT INTO wo_types ${sql.insert({ wot_id: wotId, comp_number: def.enterprise, name: def.name, push_url: def.pushUrl ?? null, created_ms: now })}`
        else {
          const stranded = yield* sql<{ step: number; n: number }>`SELECT step, count(*) AS n FROM work_orders
            WHERE wot_id = ${wotId} AND step > ${def.steps.length} GROUP BY step ORDER BY step`
          if (stranded.length > 0)
            return yield* new StepsInUse({
              message: `work-order type ${wotId} (${def.name}) has work orders at ${stranded.map((s) => `step ${s.step} (${s.n})`).join(", ")}, which this definition of ${def.steps.length} steps drops: return them to an earlier step first`
            })
          yield* sql`UPDATE wo_types SET push_url = ${def.pushUrl ?? null} WHERE wot_id = ${wotId}`
        }
        yield* sql`DELETE FROM wo_steps WHERE wot_id = ${wotId} AND idx > ${def.steps.length}`
        yield* sql`DELETE FROM wo_step_people WHERE wot_id = ${wotId}`
        for (const [i, s] of def.steps.entries()) {
          const idx = i + 1
          const wosId = yield* ids.next
          const values = { name: s.name, is_end: s.end ? 1 : 0, push_save: s.push.save ? 1 : 0, push_submit: s.push.submit ? 1 : 0, push_return: s.push.return ? 1 : 0 }
          yield* sql`INSERT INTO wo_steps ${sql.insert({ wos_id: wosId, wot_id: wotId, idx, ...values })}
            ON CONFLICT (wot_id, idx) DO UPDATE SET ${sql.update(values)}`
          for (const extension of s.people)
            yield* sql`INSERT OR IGNORE INTO wo_step_people (wot_id, idx, exte_id)
              SELECT ${wotId}, ${idx}, exte_id FROM extensions WHERE comp_number = ${def.enterprise} AND extension = ${extension}`
        }
        yield* sql`DELETE FROM wo_fields WHERE wot_id = ${wotId}`
        for (const [field, label] of Object.entries(def.fields)) yield* sql`INSERT INTO wo_fields ${sql.insert({ wot_id: wotId, field, label })}`
        yield* sql`DELETE FROM wo_codes WHERE wot_id = ${wotId}`
        for (const [field, list] of Object.entries(def.codes)) {
          const idOf = new Map<string, number>()
          for (const c of list) idOf.set(c.code, yield* ids.next)
          for (const [position, c] of list.entries())
            yield* sql`INSERT INTO wo_codes ${sql.insert({
              code_id: idOf.get(c.code)!,
              wot_id: wotId,
              field,
              code_code: c.code,
              code_name: c.name,
              parent_id: c.parent === undefined ? null : (idOf.get(c.parent) ?? null),
              position
            })}`
        }
        yield* syncPushTarget(wotId, def.pushUrl)
        return wotId
      })

    /** The extension numbers of a definition that are not extensions of its enterprise. */
    const unknownPeople = (def: TypeDefinition) =>
      Effect.gen(function* () {
        const named = [...new Set(def.steps.flatMap((s) => s.people))]
        if (named.length === 0) return []
        const found = yield* sql<{ extension: string }>`SELECT extension FROM extensions WHERE comp_number = ${def.enterprise} AND ${sql.in("extension", named)}`
        const known = new Set(found.map((r) => r.extension))
        return named.filter((n) => !known.has(n))
      })

    const removeType = (compNumber: string, wotId: number) =>
      Effect.gen(function* () {
        const used = yield* sql<{ n: number }>`SELECT count(*) AS n FROM work_orders WHERE comp_number = ${compNumber} AND wot_id = ${wotId}`
        if ((used[0]?.n ?? 0) > 0) return "in use" as const
        if ((yield* type(compNumber, wotId)) === undefined) return "missing" as const
        yield* sql`DELETE FROM wo_types WHERE comp_number = ${compNumber} AND wot_id = ${wotId}`
        yield* syncPushTarget(wotId, undefined)
        return "removed" as const
      })

    /** A stored type, whole, as the admin API answers it. */
    const definition = (compNumber: string, wotId: number) =>
      Effect.gen(function* () {
        const t = yield* type(compNumber, wotId)
        if (t === undefined) return undefined
        const stepRows = yield* steps(wotId)
        const named = yield* sql<{ idx: number; extension: string }>`SELECT p.idx, e.extension FROM wo_step_people p JOIN extensions e ON e.exte_id = p.exte_id
          WHERE p.wot_id = ${wotId} ORDER BY e.suffix`
        const labels = yield* fields(wotId)
        const codeRows = yield* sql<CodeRecord & { field: string }>`SELECT code_id, code_code, code_name, parent_id, field FROM wo_codes WHERE wot_id = ${wotId} ORDER BY field, position`
        const codeOf = new Map(codeRows.map((c) => [c.code_id, c.code_code]))
        const codes: Record<string, Array<TypeItem["codes"][string][number]>> = {}
        for (const c of codeRows) (codes[c.field] ??= []).push({ codeId: c.code_id, code: c.code_code, name: c.code_name, parent: c.parent_id === null ? null : (codeOf.get(c.parent_id) ?? null) })
        return {
          wotId: String(t.wot_id),
          name: t.name,
          pushUrl: t.push_url,
          pushTarget: t.push_url === null ? null : pushTargetName(t.wot_id),
          steps: stepRows.map((s) => ({
            wosId: s.wos_id,
            wosIndex: s.idx,
            name: s.name,
            end: s.is_end === 1,
            people: named.filter((p) => p.idx === s.idx).map((p) => p.extension),
            push: { save: s.push_save === 1, submit: s.push_submit === 1, return: s.push_return === 1 }
          })),
          fields: Object.fromEntries(labels.map((l) => [l.field, l.label])),
          codes
        } satisfies TypeItem
      })

    const find = (compNumber: string, woId: number) =>
      Effect.map(sql<WorkOrderRecord>`SELECT * FROM work_orders WHERE comp_number = ${compNumber} AND wo_id = ${woId}`, (rows) => rows[0])

    const visibleTo = (agent: number) =>
      sql`(w.create_exte_id = ${agent} OR w.assignee = ${agent}
        OR EXISTS (SELECT 1 FROM wo_step_people p WHERE p.wot_id = w.wot_id AND p.idx = w.step AND p.exte_id = ${agent})
        OR NOT EXISTS (SELECT 1 FROM wo_step_people p WHERE p.wot_id = w.wot_id AND p.idx = w.step))`

    /** Whether an agent sees this work order: it created it, is assigned it, or is a person of its step. */
    const visible = (wo: WorkOrderRecord, agent: number | undefined) =>
      agent === undefined
        ? Effect.succeed(true)
        : Effect.map(sql<{ ok: number }>`SELECT 1 AS ok FROM work_orders w WHERE w.wo_id = ${wo.wo_id} AND ${visibleTo(agent)}`, (rows) => rows.length > 0)

    const insert = (compNumber: string, values: WorkOrderValues, now: number) =>
      Effect.gen(function* () {
        const woId = yield* ids.next
        yield* sql`INSERT INTO work_orders ${sql.insert({ wo_id: woId, comp_number: compNumber, created_ms: now, ...values })}`
        return woId
      })

    const update = (compNumber: string, woId: number, values: WorkOrderValues) =>
      sql`UPDATE work_orders SET ${sql.update(values)} WHERE comp_number = ${compNumber} AND wo_id = ${woId}`

    const list = (f: ListFilter) =>
      Effect.gen(function* () {
        const where = [sql`w.comp_number = ${f.compNumber}`, sql`w.wot_id = ${f.wotId}`, sql`w.created_ms >= ${f.from}`, sql`w.created_ms <= ${f.to}`]
        if (f.step !== undefined) where.push(sql`w.step = ${f.step}`)
        if (f.phoneNorm !== undefined) where.push(sql`w.phone_norm = ${f.phoneNorm}`)
        if (f.text !== undefined) {
          // instr, not LIKE: the text is a value, `%` and `_` in it are themselves. In the fields, their values only
          // (not their names): JSON escapes character by character, so a value holding the text holds it escaped in the
          // JSON — a cheap test that rules out most rows before json_each reads the values
          const escaped = JSON.stringify(f.text).slice(1, -1)
          where.push(sql`(instr(w.code, ${f.text}) > 0 OR instr(w.question, ${f.text}) > 0 OR instr(w.phone, ${f.text}) > 0
            OR (instr(w.fields, ${escaped}) > 0 AND EXISTS (SELECT 1 FROM json_each(w.fields) j WHERE instr(j.value, ${f.text}) > 0)))`)
        }
        if (f.agent !== undefined) where.push(visibleTo(f.agent))
        const condition = sql.and(where)
        const counted = yield* sql<{ n: number }>`SELECT count(*) AS n FROM work_orders w WHERE ${condition}`
        const rows = yield* sql<WorkOrderRecord>`SELECT w.* FROM work_orders w WHERE ${condition} ORDER BY w.created_ms DESC, w.wo_id DESC LIMIT CAST(${f.limit} AS INTEGER) OFFSET ${f.offset}`
        return { total: counted[0]?.n ?? 0, rows }
      })

    /** A customer's newest work orders, as getcustomer's `worktype` lists them. */
    const ofCustomer = (compNumber: string, custId: number) =>
      Effect.map(
        sql<WorkOrderRecord & { wot_name: string }>`SELECT w.*, t.name AS wot_name FROM work_orders w JOIN wo_types t ON t.wot_id = w.wot_id
          WHERE w.comp_number = ${compNumber} AND w.cust_id = ${custId} ORDER BY w.wo_id DESC LIMIT 100`,
        (rows) =>
          rows.map((w) => ({
            woId: String(w.wo_id),
            wo_wotId: String(w.wot_id),
            wotName: w.wot_name,
            woCode: w.code,
            woStepId: w.step,
            woQuestion: w.question,
            woCreateTime: formatLocal(w.created_ms, tz),
            woEndTime: w.end_ms === null ? null : formatLocal(w.end_ms, tz)
          }))
      )

    const insertAttachment = (row: AttachmentRecord & { md5: string; uploaded_by: number; created_ms: number }) => sql`INSERT INTO wo_attachments ${sql.insert({ ...row })}`
    const attachments = (compNumber: string, woId: number) =>
      sql<AttachmentRecord>`SELECT wa_id, wo_id, comp_number, name, rel_path, size FROM wo_attachments WHERE comp_number = ${compNumber} AND wo_id = ${woId} ORDER BY wa_id`
    const attachmentAt = (relPath: string) => Effect.map(sql<AttachmentRecord>`SELECT wa_id, wo_id, comp_number, name, rel_path, size FROM wo_attachments WHERE rel_path = ${relPath}`, (rows) => rows[0])

    return {
      types,
      type,
      steps,
      people,
      codes,
      fields,
      saveType,
      definition,
      unknownPeople,
      removeType,
      find,
      visible,
      insert,
      update,
      list,
      ofCustomer,
      insertAttachment,
      attachments,
      attachmentAt
    } as const
  })
}) {}
