/**
 * Proxy dialling (§2.2.5 setIvrDialing, 设置代拨号码缓存): when `sourcePhone` calls `descPhone`,
 * the IVR dials `dialPhone` instead, for `saveTimes` seconds. The entries are the enterprise's,
 * numbers matched by their normal form; the telephony driver asks `proxyDialFor` when it places
 * a call.
 */
import { SqlClient } from "@effect/sql"
import { Clock, Effect } from "effect"
import * as spec from "../../schemas/system.js"
import { implement } from "../api/Implementation.js"
import { refuseBlacklisted } from "../blacklist/Listed.js"
import { Outbox } from "../events/Outbox.js"
import { lastPhoneOf } from "../records/CdrStore.js"

/** How long an entry holds when saveTimes is not given: the seed names no default. */
export const DEFAULT_SAVE_SECONDS = 3600

/** The number to dial when `source` calls `dest` in the enterprise, if an entry holds now. */
export const proxyDialFor = (comp: string, source: string, dest: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const now = yield* Clock.currentTimeMillis
    const [row] = yield* sql<{ dial_phone: string }>`SELECT dial_phone FROM ivr_dialing
      WHERE comp_number = ${comp} AND source_key = ${lastPhoneOf(source)} AND desc_key = ${lastPhoneOf(dest)} AND expires_at > ${now}`
    return row?.dial_phone
  })

export const handlers = [
  implement(spec.setIvrDialing, ({ sourcePhone, descPhone, dialPhone, saveTimes }, caller) =>
    Effect.gen(function* () {
      // the number that would be rung instead must not be one the enterprise refuses to call
      yield* refuseBlacklisted(caller, [["dialPhone", dialPhone]])
      const sql = yield* SqlClient.SqlClient
      const outbox = yield* Outbox
      const now = yield* Clock.currentTimeMillis
      const comp = caller.enterprise.comp_number
      const expiresAt = now + (saveTimes ?? DEFAULT_SAVE_SECONDS) * 1000
      const row = {
        comp_number: comp,
        source_key: lastPhoneOf(sourcePhone),
        desc_key: lastPhoneOf(descPhone),
        source_phone: sourcePhone,
        desc_phone: descPhone,
        dial_phone: dialPhone,
        expires_at: expiresAt,
        set_by: caller.extension.extension,
        updated_at: now
      }
      yield* sql.withTransaction(
        Effect.gen(function* () {
          // expired entries of the enterprise go as new ones are set: the table holds what is in force
          yield* sql`DELETE FROM ivr_dialing WHERE comp_number = ${comp} AND expires_at <= ${now}`
          yield* sql`INSERT INTO ivr_dialing ${sql.insert(row)}
            ON CONFLICT (comp_number, source_key, desc_key) DO UPDATE SET
              source_phone = excluded.source_phone, desc_phone = excluded.desc_phone, dial_phone = excluded.dial_phone,
              expires_at = excluded.expires_at, set_by = excluded.set_by, updated_at = excluded.updated_at`
          yield* outbox.emit({
            type: "ivr.dialing.set",
            enterprise: comp,
            source: "api:setIvrDialing",
            data: { sourcePhone, descPhone, dialPhone, expiresAt, by: caller.extension.extension }
          })
        })
      )
      return {}
    })
  )
]
