/** §2.1.1, §2.1.2, §2.1.11, §2.1.12, §2.2.4, §2.11.* — extensions of the caller's enterprise. */
import type { EventType } from "../events/EventTypes.js"
import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Option } from "effect"
import * as spec from "../../schemas/extensions.js"
import type { ParamsOf } from "../../schemas/Method.js"
import { Auth, type Caller } from "../auth/Auth.js"
import { generatePassword, Passwords } from "../auth/Passwords.js"
import { AlreadyExists, InvalidParam, NoPermission, NotFound, OverLimit } from "../api/Errors.js"
import { implement } from "../api/Implementation.js"
import { Outbox } from "../events/Outbox.js"
import { isUniqueViolation } from "../shared/Sql.js"
import { EXTE_STATUS, type ExtensionChanges, type ExtensionRecord, ExtensionsRepo } from "./ExtensionsRepo.js"

const statusText = (r: ExtensionRecord) =>
  r.status === EXTE_STATUS.disabled ? "禁用" : r.check_in === 0 ? "签入" : "签出"

const toRow = (r: ExtensionRecord) => ({
  exteId: r.exte_id,
  exteExtension: r.extension,
  exteSuffix: r.suffix,
  exteName: r.name,
  exteMobile: r.mobile,
  exteinMobileRule: r.in_mobile_rule,
  exteStatus: r.status,
  statustext: statusText(r),
  exteCheckIn: r.check_in,
  exteShowPhone: r.show_phone,
  exteIsRecord: r.is_record,
  exteLoginName: r.login_name,
  exteLoginType: r.login_type,
  exteIsApp: r.is_app,
  exte_deptId: r.dept_id,
  exte_shpId: r.shp_id,
  exte_transfer_shpId: r.transfer_shp_id,
  exteMemo: r.memo1,
  exteMemo2: r.memo2,
  exteMemo3: r.memo3,
  exteMemo4: r.memo4,
  exteMemo5: r.memo5
})

/** What an event says about an extension: everything but its password hash. */
const eventData = (r: ExtensionRecord) => toRow(r)

type EditableParams = Omit<ParamsOf<typeof spec.editExtension>, "exteId">

/** Contract field names → columns; a password is hashed on the way. */
const changesFrom = (p: EditableParams) =>
  Effect.gen(function* () {
    const passwords = yield* Passwords
    const c: { -readonly [K in keyof ExtensionChanges]: ExtensionChanges[K] } = {}
    if (p.exteExtension !== undefined) c.suffix = p.exteExtension
    if (p.exteName !== undefined) c.name = p.exteName
    if (p.extePassword !== undefined) c.password_hash = yield* passwords.hashPlain(p.extePassword)
    if (p.exte_deptId !== undefined) c.dept_id = p.exte_deptId
    if (p.exteMobile !== undefined) c.mobile = p.exteMobile
    if (p.exteinMobileRule !== undefined) c.in_mobile_rule = p.exteinMobileRule
    if (p.exteStatus !== undefined) c.status = p.exteStatus
    if (p.exteIsRecord !== undefined) c.is_record = p.exteIsRecord
    if (p.exteMemo !== undefined) c.memo1 = p.exteMemo
    if (p.exteMemo2 !== undefined) c.memo2 = p.exteMemo2
    if (p.exteMemo3 !== undefined) c.memo3 = p.exteMemo3
    if (p.exteMemo4 !== undefined) c.memo4 = p.exteMemo4
    if (p.exteMemo5 !== undefined) c.memo5 = p.exteMemo5
    if (p.exteLoginName !== undefined) c.login_name = p.exteLoginName
    if (p.exteLoginType !== undefined) c.login_type = p.exteLoginType
    if (p.exte_transfer_shpId !== undefined) c.transfer_shp_id = p.exte_transfer_shpId
    if (p.exteIsApp !== undefined) c.is_app = p.exteIsApp
    if (p.exte_shpId !== undefined) c.shp_id = p.exte_shpId
    return c
  })

const taken =
  (compNumber: string, suffix: number | undefined) =>
  (e: SqlError): Effect.Effect<never, AlreadyExists | SqlError> =>
  isUniqueViolation(e)
    ? Effect.fail(new AlreadyExists({ message: `extension ${compNumber}${suffix ?? ""} already exists` }))
    : Effect.fail(e)

const mustFind = (caller: Caller, exteId: number) =>
  Effect.flatMap(ExtensionsRepo, (repo) => repo.findById(caller.enterprise.comp_number, exteId)).pipe(
    Effect.flatMap(
      Option.match({
        onNone: () => Effect.fail(new NotFound({ message: `extension with exteId ${exteId} does not exist` })),
        onSome: Effect.succeed
      })
    )
  )

/** By extension number, in the caller's enterprise; the caller itself when not given. */
const targetByNumber = (caller: Caller, number: string | undefined, param: string) =>
  Effect.gen(function* () {
    if (number === undefined || number === caller.extension.extension) return caller.extension
    if (!caller.isAdmin) return yield* new NoPermission({ message: `only an enterprise administrator may change another extension (${param})` })
    const repo = yield* ExtensionsRepo
    const found = yield* repo.findByExtension(number)
    if (Option.isNone(found) || found.value.comp_number !== caller.enterprise.comp_number)
      return yield* new NotFound({ message: `extension ${number} does not exist` })
    return found.value
  })

/** The enterprise must keep an administrator, or nobody could manage it any more. */
const keepsAnAdmin = (caller: Caller, target: ExtensionRecord, newStatus: number | undefined, param: string) =>
  Effect.gen(function* () {
    if (target.status !== EXTE_STATUS.admin || newStatus === EXTE_STATUS.admin) return
    const repo = yield* ExtensionsRepo
    const admins = (yield* repo.list(caller.enterprise.comp_number)).filter((r) => r.status === EXTE_STATUS.admin)
    if (admins.length <= 1)
      return yield* new InvalidParam({ param, problem: "the enterprise must keep at least one administrator" })
  })

const updateAndEmit = (caller: Caller, target: ExtensionRecord, changes: ExtensionChanges, type: EventType, source: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const repo = yield* ExtensionsRepo
    const outbox = yield* Outbox
    const comp = caller.enterprise.comp_number
    return yield* sql.withTransaction(
      Effect.gen(function* () {
        yield* repo.update(comp, target.exte_id, changes)
        const after = yield* repo.findById(comp, target.exte_id).pipe(Effect.map(Option.getOrThrow))
        yield* outbox.emit({ type, enterprise: comp, source, data: eventData(after) })
        return after
      })
    ).pipe(Effect.catchTag("SqlError", taken(comp, changes.suffix)))
  })

/** Inserts and records `extension.created`; the caller wraps it in its transaction. */
const insertAndEmit = (comp: string, suffix: number, changes: ExtensionChanges & { password_hash: string }, source: string) =>
  Effect.gen(function* () {
    const repo = yield* ExtensionsRepo
    const outbox = yield* Outbox
    const inserted = yield* repo.insert(comp, suffix, changes)
    const after = yield* repo.findById(comp, inserted.exte_id).pipe(Effect.map(Option.getOrThrow))
    yield* outbox.emit({ type: "extension.created", enterprise: comp, source, data: eventData(after) })
    return after
  })

export const handlers = [
  implement(spec.getExtension, (_, caller) =>
    Effect.gen(function* () {
      const auth = yield* Auth
      const sessionId = yield* auth.openSession(caller.extension)
      const e = caller.extension
      return {
        exteId: e.exte_id,
        name: e.name,
        extension: e.extension,
        compNumber: caller.enterprise.comp_number,
        compName: caller.enterprise.comp_name,
        disablePhoneNum: caller.enterprise.disable_phone_num,
        exteLoginType: e.login_type,
        exteStatus: e.status,
        sessionId
      }
    })
  ),

  implement(spec.getExtensions, (_, caller) =>
    Effect.gen(function* () {
      const repo = yield* ExtensionsRepo
      const rows = (yield* repo.list(caller.enterprise.comp_number)).map(toRow)
      return { extension: rows, rows, total: rows.length }
    })
  ),

  implement(spec.addExtension, (p, caller) =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const passwords = yield* Passwords
      const comp = caller.enterprise.comp_number
      const generated = p.extePassword === undefined ? generatePassword() : undefined
      const changes = yield* changesFrom(p)
      const password_hash = changes.password_hash ?? (yield* passwords.hashPlain(generated!))
      const row = yield* sql
        .withTransaction(insertAndEmit(comp, p.exteExtension, { ...changes, password_hash }, "api:addExtension"))
        .pipe(Effect.catchTag("SqlError", taken(comp, p.exteExtension)))
      return { exteId: row.exte_id, extension: row.extension, ...(generated ? { password: generated } : {}) }
    })
  ),

  implement(spec.editExtension, ({ exteId, ...rest }, caller) =>
    Effect.gen(function* () {
      const target = yield* mustFind(caller, exteId)
      if (rest.exteStatus !== undefined) yield* keepsAnAdmin(caller, target, rest.exteStatus, "exteStatus")
      const changes = yield* changesFrom(rest)
      yield* updateAndEmit(caller, target, changes, "extension.updated", "api:editExtension")
      return {}
    })
  ),

  implement(spec.delExtension, ({ exteId }, caller) =>
    Effect.gen(function* () {
      if (exteId === caller.extension.exte_id)
        return yield* new InvalidParam({ param: "exteId", problem: "an extension cannot delete itself" })
      const target = yield* mustFind(caller, exteId)
      yield* keepsAnAdmin(caller, target, undefined, "exteId")
      const sql = yield* SqlClient.SqlClient
      const repo = yield* ExtensionsRepo
      const outbox = yield* Outbox
      const comp = caller.enterprise.comp_number
      yield* sql.withTransaction(
        Effect.zipRight(
          repo.remove(comp, exteId),
          outbox.emit({ type: "extension.deleted", enterprise: comp, source: "api:delExtension", data: eventData(target) })
        )
      )
      return {}
    })
  ),

  implement(spec.initExtensionPassword, ({ exteId }, caller) =>
    Effect.gen(function* () {
      const target = yield* mustFind(caller, exteId)
      const passwords = yield* Passwords
      const password = generatePassword()
      const password_hash = yield* passwords.hashPlain(password)
      yield* updateAndEmit(caller, target, { password_hash }, "extension.password_reset", "api:initExtensionPassword")
      return { password }
    })
  ),

  implement(spec.registerExtension, (_, caller) =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const repo = yield* ExtensionsRepo
      const passwords = yield* Passwords
      const comp = caller.enterprise.comp_number
      const password = generatePassword()
      const password_hash = yield* passwords.hashPlain(password)
      // Finding the free suffix and taking it in one transaction: SQLite has one writer, so no other call can take it between.
      const row = yield* sql.withTransaction(
        Effect.gen(function* () {
          const suffix = yield* repo.nextFreeSuffix(comp)
          if (Option.isNone(suffix))
            return yield* new OverLimit({ message: "no free extension number is left (suffixes 400–899 are all in use)" })
          return yield* insertAndEmit(comp, suffix.value, { password_hash, name: `${comp}${suffix.value}` }, "api:registerExtension")
        })
      )
      return { extension: row.extension, password, exteId: row.exte_id }
    })
  ),

  implement(spec.setExteMobile, ({ exteId, phone }, caller) =>
    Effect.gen(function* () {
      if (exteId !== caller.extension.exte_id && !caller.isAdmin)
        return yield* new NoPermission({ message: "only an enterprise administrator may change another extension's mobile" })
      const target = yield* mustFind(caller, exteId)
      yield* updateAndEmit(caller, target, { mobile: phone }, "extension.updated", "api:setExteMobile")
      return {}
    })
  ),

  implement(spec.setShowPhone, ({ extension, phone }, caller) =>
    Effect.gen(function* () {
      const target = yield* targetByNumber(caller, extension, "extension")
      yield* updateAndEmit(caller, target, { show_phone: phone }, "extension.updated", "api:setShowPhone")
      return {}
    })
  ),

  implement(spec.setUserCheckInOut, ({ exten, status }, caller) =>
    Effect.gen(function* () {
      const target = yield* targetByNumber(caller, exten, "exten")
      yield* updateAndEmit(caller, target, { check_in: status }, status === 0 ? "extension.checked_in" : "extension.checked_out", "api:setUserCheckInOut")
      return {}
    })
  )
]
