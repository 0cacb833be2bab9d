/** Storage of enterprises and extensions. Every query names the enterprise it is scoped to. */
import { SqlClient } from "@effect/sql"
import { Clock, Effect, Option } from "effect"
import { Ids } from "../shared/Ids.js"

export interface ExtensionRecord {
  readonly exte_id: number
  readonly comp_number: string
  readonly suffix: number
  readonly extension: string
  readonly name: string
  readonly password_hash: string
  /** moves whenever the extension's sessions must end (migration 0009) */
  readonly session_epoch: number
  readonly mobile: string
  readonly in_mobile_rule: number
  readonly status: number
  readonly is_record: number
  readonly memo1: string
  readonly memo2: string
  readonly memo3: string
  readonly memo4: string
  readonly memo5: string
  readonly login_name: string
  readonly login_type: number
  readonly is_app: number
  readonly dept_id: number | null
  readonly shp_id: number | null
  readonly transfer_shp_id: number | null
  readonly show_phone: string
  readonly check_in: number
  readonly created_at: number
  readonly updated_at: number
}

export interface EnterpriseRecord {
  readonly comp_number: string
  readonly comp_name: string
  readonly disable_phone_num: number
}

/** Columns a caller may set; the rest are the bridge's. */
export type ExtensionChanges = Partial<
  Pick<
    ExtensionRecord,
    | "suffix"
    | "name"
    | "password_hash"
    | "mobile"
    | "in_mobile_rule"
    | "status"
    | "is_record"
    | "memo1"
    | "memo2"
    | "memo3"
    | "memo4"
    | "memo5"
    | "login_name"
    | "login_type"
    | "is_app"
    | "dept_id"
    | "shp_id"
    | "transfer_shp_id"
    | "show_phone"
    | "check_in"
  >
>

export const SUFFIX_MIN = 400
export const SUFFIX_MAX = 899
export const EXTE_STATUS = { agent: 0, disabled: 1, admin: 2, staff: 9 } as const

export class ExtensionsRepo extends Effect.Service<ExtensionsRepo>()("ExtensionsRepo", {
  dependencies: [Ids.Default],
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const ids = yield* Ids

    const findByExtension = (extension: string) =>
      sql<ExtensionRecord>`SELECT * FROM extensions WHERE extension = ${extension}`.pipe(
        Effect.map((rows) => Option.fromNullable(rows[0]))
      )

    const findById = (compNumber: string, exteId: number) =>
      sql<ExtensionRecord>`SELECT * FROM extensions WHERE exte_id = ${exteId} AND comp_number = ${compNumber}`.pipe(
        Effect.map((rows) => Option.fromNullable(rows[0]))
      )

    const list = (compNumber: string) =>
      sql<ExtensionRecord>`SELECT * FROM extensions WHERE comp_number = ${compNumber} ORDER BY suffix`

    const enterprise = (compNumber: string) =>
      sql<EnterpriseRecord>`SELECT comp_number, comp_name, disable_phone_num FROM enterprises WHERE comp_number = ${compNumber}`.pipe(
        Effect.map((rows) => Option.fromNullable(rows[0]))
      )

    const ensureEnterprise = (compNumber: string, compName: string) =>
      Effect.flatMap(
        Clock.currentTimeMillis,
        (now) =>
          sql`INSERT INTO enterprises (comp_number, comp_name, created_at) VALUES (${compNumber}, ${compName}, ${now})
              ON CONFLICT (comp_number) DO NOTHING`
      )

    /** Inserts; fails with the SqlError of the UNIQUE constraint when the suffix is taken. */
    const insert = (compNumber: string, suffix: number, changes: ExtensionChanges & { password_hash: string }) =>
      Effect.gen(function* () {
        const exteId = yield* ids.next
        const now = yield* Clock.currentTimeMillis
        const row = {
          exte_id: exteId,
          comp_number: compNumber,
          suffix,
          extension: `${compNumber}${suffix}`,
          created_at: now,
          updated_at: now,
          ...changes
        }
        yield* sql`INSERT INTO extensions ${sql.insert(row)}`
        return row
      })

    /**
     * A new password or a disabled extension ends the extension's sessions in the same
     * transaction: a sessionId must not outlive the credentials it was issued for, whichever
     * path (API, CLI) changed them.
     */
    const update = (compNumber: string, exteId: number, changes: ExtensionChanges) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const set: Record<string, unknown> = { ...changes, updated_at: now }
        if (changes.suffix !== undefined) set.extension = `${compNumber}${changes.suffix}`
        const endsSessions = changes.password_hash !== undefined || changes.status === EXTE_STATUS.disabled
        const rows = yield* sql<{ exte_id: number }>`UPDATE extensions SET ${sql.update(set)}
          ${endsSessions ? sql`, session_epoch = session_epoch + 1` : sql``}
          WHERE exte_id = ${exteId} AND comp_number = ${compNumber} RETURNING exte_id`
        if (rows.length > 0 && endsSessions) yield* sql`DELETE FROM sessions WHERE exte_id = ${exteId}`
        return rows.length > 0
      }).pipe(sql.withTransaction)

    const remove = (compNumber: string, exteId: number) =>
      sql<{ exte_id: number }>`DELETE FROM extensions WHERE exte_id = ${exteId} AND comp_number = ${compNumber} RETURNING exte_id`.pipe(
        Effect.map((rows) => rows.length > 0)
      )

    /** The lowest suffix in 400–899 no extension of the enterprise uses. */
    const nextFreeSuffix = (compNumber: string) =>
      sql<{ suffix: number }>`SELECT suffix FROM extensions WHERE comp_number = ${compNumber} ORDER BY suffix`.pipe(
        Effect.map((rows) => {
          let candidate = SUFFIX_MIN
          for (const { suffix } of rows) {
            if (suffix === candidate) candidate++
            else if (suffix > candidate) break
          }
          return candidate <= SUFFIX_MAX ? Option.some(candidate) : Option.none()
        })
      )

    return { findByExtension, findById, list, enterprise, ensureEnterprise, insert, update, remove, nextFreeSuffix } as const
  })
}) {}
