/**
 * An enterprise's code lists (§2.6.6) and field labels (§2.6.3).
 *
 * A code list lives in the enterprise's rows, so its codes keep their ids: it is copied from
 * the configuration (built-in lists < `crm.codes` < `crm.enterprises[comp].codes`) when the
 * enterprise's lists are first read, and kept in step with the configuration after each change
 * of it (upserted by code: a code that stays keeps its id) — until an administrator edits the
 * list through the admin API; from then on the list is the administrator's (owner 'admin')
 * until it is reset. Labels are computed: built-in < configuration < the admin API's.
 */
import * as crypto from "node:crypto"
import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { Ids } from "../shared/Ids.js"
import type { CrmConfigShape } from "./ConfigSchema.js"
import { CODE_LISTS, type CodeDef, FIELDS, LIMITS } from "./Defaults.js"

export interface CodeRow {
  readonly codeId: number
  readonly codeCode: string
  readonly codeName: string
  readonly codeParentId: number | null
}

const configuredLists = (crm: CrmConfigShape, comp: string): Readonly<Record<string, ReadonlyArray<CodeDef>>> => ({
  ...CODE_LISTS,
  ...crm.codes,
  ...(crm.enterprises[comp]?.codes ?? {})
})

const hashOf = (lists: Readonly<Record<string, ReadonlyArray<CodeDef>>>) =>
  crypto
    .createHash("sha256")
    .update(JSON.stringify(Object.keys(lists).sort().map((k) => [k, lists[k]!.map((c) => [c.code, c.name, c.parent ?? null])])))
    .digest("hex")

/** Makes the list's rows exactly `items`, in order; a code that stays keeps its id. Inside the caller's transaction. */
const writeList = (comp: string, type: string, items: ReadonlyArray<CodeDef>) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const ids = yield* Ids
    for (const [position, item] of items.entries()) {
      const id = yield* ids.next
      yield* sql`INSERT INTO crm_codes (code_id, comp_number, code_type, code_code, code_name, parent_id, position)
        VALUES (${id}, ${comp}, ${type}, ${item.code}, ${item.name}, NULL, ${position})
        ON CONFLICT (comp_number, code_type, code_code) DO UPDATE SET code_name = excluded.code_name, position = excluded.position`
    }
    const kept = new Set(items.map((i) => i.code))
    const rows = yield* sql<{ code_id: number; code_code: string }>`SELECT code_id, code_code FROM crm_codes WHERE comp_number = ${comp} AND code_type = ${type}`
    const gone = rows.filter((r) => !kept.has(r.code_code)).map((r) => r.code_id)
    if (gone.length > 0) yield* sql`DELETE FROM crm_codes WHERE ${sql.in("code_id", gone)}`
    const idOf = new Map(rows.map((r) => [r.code_code, r.code_id]))
    for (const item of items)
      yield* sql`UPDATE crm_codes SET parent_id = ${item.parent === undefined ? null : idOf.get(item.parent) ?? null} WHERE code_id = ${idOf.get(item.code)!}`
  })

const setOwner = (comp: string, type: string, owner: "config" | "admin") =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql`INSERT INTO crm_code_lists (comp_number, code_type, owner) VALUES (${comp}, ${type}, ${owner})
      ON CONFLICT (comp_number, code_type) DO UPDATE SET owner = excluded.owner`
  )

/**
 * Brings the enterprise's configuration-owned lists in step with the configuration, when it
 * changed since they were last synced (one primary-key read otherwise).
 */
export const ensureSynced = (comp: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const { crm } = yield* AppConfig
    const lists = configuredLists(crm, comp)
    const hash = hashOf(lists)
    const seeded = (yield* sql<{ config_hash: string }>`SELECT config_hash FROM crm_code_seeds WHERE comp_number = ${comp}`)[0]
    if (seeded?.config_hash === hash) return
    yield* sql.withTransaction(
      Effect.gen(function* () {
        // another fiber may have synced while this one waited for the write lock
        const again = (yield* sql<{ config_hash: string }>`SELECT config_hash FROM crm_code_seeds WHERE comp_number = ${comp}`)[0]
        if (again?.config_hash === hash) return
        const owners = yield* sql<{ code_type: string; owner: string }>`SELECT code_type, owner FROM crm_code_lists WHERE comp_number = ${comp}`
        const byAdmin = new Set(owners.filter((o) => o.owner === "admin").map((o) => o.code_type))
        for (const [type, items] of Object.entries(lists)) {
          if (byAdmin.has(type)) continue
          yield* writeList(comp, type, items)
          yield* setOwner(comp, type, "config")
        }
        for (const o of owners)
          if (o.owner === "config" && !(o.code_type in lists)) {
            yield* sql`DELETE FROM crm_codes WHERE comp_number = ${comp} AND code_type = ${o.code_type}`
            yield* sql`DELETE FROM crm_code_lists WHERE comp_number = ${comp} AND code_type = ${o.code_type}`
          }
        yield* sql`INSERT INTO crm_code_seeds (comp_number, config_hash) VALUES (${comp}, ${hash})
          ON CONFLICT (comp_number) DO UPDATE SET config_hash = excluded.config_hash`
      })
    )
  })

const readList = (comp: string, type: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<CodeRow>`SELECT code_id AS "codeId", code_code AS "codeCode", code_name AS "codeName", parent_id AS "codeParentId"
      FROM crm_codes WHERE comp_number = ${comp} AND code_type = ${type} ORDER BY position, code_id`
  )

/** The enterprise's list of `type`; an unknown type is an empty list. */
export const codesOf = (comp: string, type: string) => Effect.zipRight(ensureSynced(comp), readList(comp, type))

/** Every list of the enterprise, by type. */
export const allCodesOf = (comp: string) =>
  Effect.gen(function* () {
    yield* ensureSynced(comp)
    const sql = yield* SqlClient.SqlClient
    const lists = yield* sql<{ code_type: string; owner: string }>`SELECT code_type, owner FROM crm_code_lists WHERE comp_number = ${comp} ORDER BY code_type`
    const out: Array<{ codeType: string; owner: string; items: ReadonlyArray<CodeRow> }> = []
    for (const l of lists) out.push({ codeType: l.code_type, owner: l.owner, items: yield* readList(comp, l.code_type) })
    return out
  })

export type Edit<A> = { readonly ok: A } | { readonly refused: string } | { readonly missing: string } | { readonly exists: string }

/** Replaces a whole list (validated by the caller with CodeList); the list becomes the administrator's. */
export const replaceList = (comp: string, type: string, items: ReadonlyArray<CodeDef>) =>
  Effect.gen(function* () {
    yield* ensureSynced(comp)
    const sql = yield* SqlClient.SqlClient
    yield* sql.withTransaction(Effect.zipRight(writeList(comp, type, items), setOwner(comp, type, "admin")))
    return yield* readList(comp, type)
  })

/** Adds one code at the end of a list (a new type starts a new list); the list becomes the administrator's. */
export const addCode = (comp: string, type: string, item: CodeDef) =>
  Effect.gen(function* () {
    yield* ensureSynced(comp)
    const sql = yield* SqlClient.SqlClient
    return yield* sql.withTransaction(
      Effect.gen(function* (): Effect.fn.Return<Edit<CodeRow>, SqlError, SqlClient.SqlClient | Ids> {
        const current = yield* readList(comp, type)
        if (current.some((c) => c.codeCode === item.code)) return { exists: `code ${item.code} of ${type} exists already` }
        if (current.length >= LIMITS.listMax) return { refused: `(list): at most ${LIMITS.listMax} codes per list` }
        const parent = item.parent === undefined ? undefined : current.find((c) => c.codeCode === item.parent)
        if (item.parent !== undefined && parent === undefined) return { refused: `parent: no code ${JSON.stringify(item.parent)} in ${type}` }
        const id = yield* Effect.flatMap(Ids, (ids) => ids.next)
        yield* sql`INSERT INTO crm_codes (code_id, comp_number, code_type, code_code, code_name, parent_id, position)
          VALUES (${id}, ${comp}, ${type}, ${item.code}, ${item.name}, ${parent?.codeId ?? null},
            (SELECT COALESCE(MAX(position), -1) + 1 FROM crm_codes WHERE comp_number = ${comp} AND code_type = ${type}))`
        yield* setOwner(comp, type, "admin")
        return { ok: { codeId: id, codeCode: item.code, codeName: item.name, codeParentId: parent?.codeId ?? null } }
      })
    )
  })

/** Removes one code (not one that is another's parent); the list becomes the administrator's. */
export const removeCode = (comp: string, type: string, codeId: number) =>
  Effect.gen(function* () {
    yield* ensureSynced(comp)
    const sql = yield* SqlClient.SqlClient
    return yield* sql.withTransaction(
      Effect.gen(function* (): Effect.fn.Return<{ readonly ok: true } | { readonly refused: string } | { readonly missing: string }, SqlError, SqlClient.SqlClient> {
        const current = yield* readList(comp, type)
        if (!current.some((c) => c.codeId === codeId)) return { missing: `code ${codeId} of ${type}` }
        const children = current.filter((c) => c.codeParentId === codeId)
        if (children.length > 0) return { refused: `codeId: code ${codeId} is the parent of ${children.map((c) => c.codeCode).join(", ")}; remove those first` }
        yield* sql`DELETE FROM crm_codes WHERE comp_number = ${comp} AND code_id = ${codeId}`
        yield* setOwner(comp, type, "admin")
        return { ok: true }
      })
    )
  })

/** Gives a list back to the configuration: the administrator's edits are dropped. */
export const resetList = (comp: string, type: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    yield* sql.withTransaction(
      Effect.gen(function* () {
        yield* sql`DELETE FROM crm_codes WHERE comp_number = ${comp} AND code_type = ${type}`
        yield* sql`DELETE FROM crm_code_lists WHERE comp_number = ${comp} AND code_type = ${type}`
        yield* sql`DELETE FROM crm_code_seeds WHERE comp_number = ${comp}`
      })
    )
    return yield* codesOf(comp, type)
  })

export interface FieldRow {
  readonly fieldName: string
  readonly fieldType: string
  readonly systemName: string
  readonly label: string
  /** where the label comes from: default, config or admin */
  readonly origin: "default" | "config" | "admin"
}

/** The customer fields with the enterprise's labels. */
export const fieldsOf = (comp: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const { crm } = yield* AppConfig
    const configured: Readonly<Record<string, string>> = { ...crm.fields, ...(crm.enterprises[comp]?.fields ?? {}) }
    const stored = yield* sql<{ field_name: string; label: string }>`SELECT field_name, label FROM crm_field_labels WHERE comp_number = ${comp}`
    const byAdmin = new Map(stored.map((r) => [r.field_name, r.label]))
    return FIELDS.map((f): FieldRow => {
      const admin = byAdmin.get(f.fieldName)
      const config = configured[f.fieldName]
      return {
        fieldName: f.fieldName,
        fieldType: f.fieldType,
        systemName: f.systemName,
        label: admin ?? config ?? f.systemName,
        origin: admin !== undefined ? "admin" : config !== undefined ? "config" : "default"
      }
    })
  })

/** Sets labels (validated by the caller); null drops the administrator's label (back to the configuration's). */
export const setLabels = (comp: string, labels: Readonly<Record<string, string | null>>) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    yield* sql.withTransaction(
      Effect.forEach(Object.entries(labels), ([field, label]) =>
        label === null
          ? sql`DELETE FROM crm_field_labels WHERE comp_number = ${comp} AND field_name = ${field}`
          : sql`INSERT INTO crm_field_labels (comp_number, field_name, label) VALUES (${comp}, ${field}, ${label})
              ON CONFLICT (comp_number, field_name) DO UPDATE SET label = excluded.label`,
        { discard: true }
      )
    )
    return yield* fieldsOf(comp)
  })
