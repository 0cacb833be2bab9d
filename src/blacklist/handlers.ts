/** §2.2.6–2.2.8 — the enterprise's blacklist. Adding a listed number, or removing an absent one, is not an error. */
import { SqlClient } from "@effect/sql"
import { Clock, Effect } from "effect"
import * as spec from "../../schemas/blacklist.js"
import { OverLimit } from "../api/Errors.js"
import { implement } from "../api/Implementation.js"
import { Outbox } from "../events/Outbox.js"
import { AppConfig } from "../config/AppConfig.js"
import { lastPhoneOf } from "../records/CdrStore.js"
import { formatLocal } from "../shared/Time.js"
import { removeEntries } from "./Listed.js"

const withinBatch = (phones: ReadonlyArray<string>) =>
  phones.length > spec.BLACKLIST_BATCH_MAX
    ? Effect.fail(new OverLimit({ message: `parameter phones: at most ${spec.BLACKLIST_BATCH_MAX} numbers per call, got ${phones.length}` }))
    : Effect.void

export const handlers = [
  implement(spec.addBlacklists, ({ phones }, caller) =>
    Effect.gen(function* () {
      yield* withinBatch(phones)
      const sql = yield* SqlClient.SqlClient
      const outbox = yield* Outbox
      const now = yield* Clock.currentTimeMillis
      const comp = caller.enterprise.comp_number
      const added = yield* sql.withTransaction(
        Effect.gen(function* () {
          const fresh: Array<string> = []
          for (const phone of phones) {
            const rows = yield* sql<{ phone: string }>`INSERT INTO blacklist (comp_number, phone, phone_key, created_at, created_by)
              VALUES (${comp}, ${phone}, ${lastPhoneOf(phone)}, ${now}, ${caller.extension.exte_id})
              ON CONFLICT DO NOTHING RETURNING phone`
            fresh.push(...rows.map((r) => r.phone))
          }
          if (fresh.length > 0)
            yield* outbox.emit({ type: "blacklist.added", enterprise: comp, source: "api:addBlacklists", data: { phones: fresh, by: caller.extension.extension } })
          return fresh.length
        })
      )
      return { added }
    })
  ),

  implement(spec.delBlacklists, ({ phones }, caller) =>
    Effect.gen(function* () {
      yield* withinBatch(phones)
      const sql = yield* SqlClient.SqlClient
      const outbox = yield* Outbox
      const comp = caller.enterprise.comp_number
      const removed = yield* sql.withTransaction(
        Effect.gen(function* () {
          // by the number's normal form, as it is matched: deleting 13800138000 removes the entry
          // +8613800138000 that blocked it (and every other spelling of it), not a foreign +1…
          const gone: Array<{ phone: string }> = []
          for (const phone of phones) gone.push(...(yield* removeEntries(comp, phone)))
          if (gone.length > 0)
            yield* outbox.emit({ type: "blacklist.removed", enterprise: comp, source: "api:delBlacklists", data: { phones: gone.map((r) => r.phone), by: caller.extension.extension } })
          return gone.length
        })
      )
      return { removed }
    })
  ),

  implement(spec.getBlacklists, (_, caller) =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const { tz } = yield* AppConfig
      const rows = yield* sql<{ phone: string; created_at: number }>`SELECT phone, created_at FROM blacklist
        WHERE comp_number = ${caller.enterprise.comp_number} ORDER BY phone`
      return {
        blaPhone: rows.map((r) => r.phone),
        rows: rows.map((r) => ({ blaPhone: r.phone, blaCreateTime: formatLocal(r.created_at, tz) })),
        total: rows.length
      }
    })
  )
]
