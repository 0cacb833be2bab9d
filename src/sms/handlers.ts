/**
 * SMS the bridge sends (§2.2.3 smsSend) and verification codes by SMS (§2.11.6
 * sendCallAgiPhoneSms, §2.11.7 CallAgiverificationCode). The bridge has no SMS gateway of its
 * own: what it sends is an SMS record (kind 3, as the clients' §2.1.7 records) and an `sms.added`
 * event — a target subscribed to it (an SMS provider's webhook) delivers it. In front of a real
 * platform (the upstream driver) the platform sends SMS and codes itself: the methods are relayed.
 *
 * A verification code is checked against its hash (verification_codes). The SMS record and its
 * `sms.added` event hold the text with the code masked (验证码：******); the code in clear travels
 * only in a `verification.sms` event, which reaches only a target naming that exact type (the
 * SMS gateway: src/forwarding/Target.ts SENSITIVE_EVENT_TYPES), and is kept in the events table
 * like any event, for the retention period.
 */
import * as crypto from "node:crypto"
import { SqlClient } from "@effect/sql"
import { Clock, Effect } from "effect"
import * as spec from "../../schemas/system.js"
import { InvalidParam, NotFound, OverLimit } from "../api/Errors.js"
import { implement } from "../api/Implementation.js"
import { refuseBlacklisted } from "../blacklist/Listed.js"
import { AppConfig } from "../config/AppConfig.js"
import { Outbox } from "../events/Outbox.js"
import { lastPhoneOf } from "../records/CdrStore.js"
import { Ids } from "../shared/Ids.js"
import { Telephony } from "../telephony/Telephony.js"
import { sameSecret } from "../shared/Secret.js"

/** SMS kind of a message the bridge sent (§2.1.7: 3 发送短信). */
const SENT = 3

const hashOf = (comp: string, phoneKey: string, code: string) => crypto.createHash("sha256").update(`${comp}\u0000${phoneKey}\u0000${code}`).digest("hex")

/** Records one sent SMS with its event, inside the caller's transaction. */
const recordSent = (input: { comp: string; extension: string; phone: string; content: string; listId: number | null; source: string; now: number }) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const outbox = yield* Outbox
    const smsId = yield* Effect.flatMap(Ids, (ids) => ids.next)
    yield* sql`INSERT INTO sms_records ${sql.insert({
      sms_id: smsId,
      comp_number: input.comp,
      extension: input.extension,
      local_id: null,
      kind: SENT,
      phone: input.phone,
      content: input.content,
      time_ms: input.now,
      created_at: input.now,
      updated_at: input.now,
      list_id: input.listId
    })}`
    yield* outbox.emit({
      type: "sms.added",
      enterprise: input.comp,
      source: input.source,
      data: { smsId, id: null, extension: input.extension, kind: SENT, phone: input.phone, content: input.content, time: input.now, listId: input.listId, outgoing: true }
    })
    return smsId
  })

export const handlers = [
  implement(spec.smsSend, ({ phoneNum, memo, listId }, caller) =>
    Effect.gen(function* () {
      if (memo.trim() === "") return yield* new InvalidParam({ param: "memo", problem: "is empty" })
      yield* refuseBlacklisted(caller, phoneNum.map((phone) => ["phoneNum", phone] as const))
      const sql = yield* SqlClient.SqlClient
      const now = yield* Clock.currentTimeMillis
      // the batch: the caller's own number for it, else one of ours
      const batch = listId ?? (yield* Effect.flatMap(Ids, (ids) => ids.next))
      const comp = caller.enterprise.comp_number
      // in front of a real platform, the platform sends it: recorded only once it said yes
      const { relay } = yield* Telephony
      if (relay) yield* relay("smsSend", { phoneNum: phoneNum.join(","), memo, listId: String(batch) })
      yield* sql.withTransaction(
        Effect.forEach(phoneNum, (phone) => recordSent({ comp, extension: caller.extension.extension, phone, content: memo, listId: batch, source: "api:smsSend", now }), { discard: true })
      )
      return { listId: batch }
    })
  ),

  implement(spec.sendCallAgiPhoneSms, ({ phone }, caller) =>
    Effect.gen(function* () {
      yield* refuseBlacklisted(caller, [["phone", phone]])
      // in front of a real platform, its code: sent and checked there
      const { relay } = yield* Telephony
      if (relay) return yield* Effect.as(relay("sendCallAgiPhoneSms", { phone }), {})
      const sql = yield* SqlClient.SqlClient
      const outbox = yield* Outbox
      const { verification } = yield* AppConfig
      const now = yield* Clock.currentTimeMillis
      const comp = caller.enterprise.comp_number
      const key = lastPhoneOf(phone)
      const code = String(crypto.randomInt(0, 10 ** verification.codeLength)).padStart(verification.codeLength, "0")
      const minutes = Math.max(1, Math.round(verification.ttlMs / 60_000))
      return yield* sql.withTransaction(
        Effect.gen(function* () {
          const [pending] = yield* sql<{ sent_at: number }>`SELECT sent_at FROM verification_codes WHERE comp_number = ${comp} AND phone_key = ${key}`
          if (pending && now - pending.sent_at < verification.resendAfterMs)
            return yield* new OverLimit({ message: `a code was sent to ${phone} ${Math.round((now - pending.sent_at) / 1000)} s ago: ask again after ${Math.ceil(verification.resendAfterMs / 1000)} s` })
          // a new code replaces the pending one (and its wrong guesses)
          yield* sql`DELETE FROM verification_codes WHERE comp_number = ${comp} AND phone_key = ${key}`
          yield* sql`INSERT INTO verification_codes ${sql.insert({ comp_number: comp, phone_key: key, code_hash: hashOf(comp, key, code), sent_at: now, expires_at: now + verification.ttlMs, attempts: 0 })}`
          const text = (shown: string) => `验证码：${shown}，${minutes} 分钟内有效。`
          const smsId = yield* recordSent({ comp, extension: caller.extension.extension, phone, content: text("*".repeat(code.length)), listId: null, source: "api:sendCallAgiPhoneSms", now })
          // for the SMS gateway only (an exact subscription): the text to send, with the code
          yield* outbox.emit({
            type: "verification.sms",
            enterprise: comp,
            source: "api:sendCallAgiPhoneSms",
            data: { smsId, phone, extension: caller.extension.extension, content: text(code), code, expiresAt: now + verification.ttlMs }
          })
          yield* outbox.emit({ type: "verification.sent", enterprise: comp, source: "api:sendCallAgiPhoneSms", data: { phone, extension: caller.extension.extension, expiresAt: now + verification.ttlMs } })
          return {}
        })
      )
    })
  ),

  implement(spec.CallAgiverificationCode, ({ phone, vtCode }, caller) =>
    Effect.gen(function* () {
      const { relay } = yield* Telephony
      if (relay) return yield* Effect.as(relay("CallAgiverificationCode", { phone, vtCode }), {})
      const sql = yield* SqlClient.SqlClient
      const outbox = yield* Outbox
      const { verification } = yield* AppConfig
      const now = yield* Clock.currentTimeMillis
      const comp = caller.enterprise.comp_number
      const key = lastPhoneOf(phone)
      const outcome = yield* sql.withTransaction(
        Effect.gen(function* () {
          const [pending] = yield* sql<{ code_hash: string; expires_at: number; attempts: number }>`SELECT code_hash, expires_at, attempts FROM verification_codes WHERE comp_number = ${comp} AND phone_key = ${key}`
          if (!pending || pending.expires_at <= now) {
            if (pending) yield* sql`DELETE FROM verification_codes WHERE comp_number = ${comp} AND phone_key = ${key}`
            return "none" as const
          }
          if (sameSecret(hashOf(comp, key, vtCode), pending.code_hash)) {
            yield* sql`DELETE FROM verification_codes WHERE comp_number = ${comp} AND phone_key = ${key}`
            yield* outbox.emit({ type: "verification.passed", enterprise: comp, source: "api:CallAgiverificationCode", data: { phone, extension: caller.extension.extension } })
            return "passed" as const
          }
          const attempts = Number(pending.attempts) + 1
          // the last wrong guess voids the code: a new one must be asked for
          if (attempts >= verification.maxAttempts) {
            yield* sql`DELETE FROM verification_codes WHERE comp_number = ${comp} AND phone_key = ${key}`
            yield* outbox.emit({ type: "verification.failed", enterprise: comp, source: "api:CallAgiverificationCode", data: { phone, extension: caller.extension.extension, attempts } })
            return "exhausted" as const
          }
          yield* sql`UPDATE verification_codes SET attempts = ${attempts} WHERE comp_number = ${comp} AND phone_key = ${key}`
          return { wrong: verification.maxAttempts - attempts }
        })
      )
      if (outcome === "passed") return {}
      if (outcome === "none") return yield* new NotFound({ message: `no code is pending for ${phone} (none was sent, it expired, or it was used): ask for a new one` })
      if (outcome === "exhausted") return yield* new OverLimit({ message: `too many wrong codes for ${phone}: ask for a new one` })
      return yield* new InvalidParam({ param: "vtCode", problem: `is not the code sent (${outcome.wrong} attempt(s) left)` })
    })
  )
]
