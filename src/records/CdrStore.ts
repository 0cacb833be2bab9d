/**
 * Call records. Three senders write them: clients (addCdrRecord, keyed by their own dialId),
 * the platform's pushes (keyed by its cdrId) and the recording box. findDialrecord reads
 * them in the contract's `cdr*` shape. Writers run inside their caller's transaction, so the
 * record and its event commit together.
 *
 * addCdrRecord (§2.1.6) → findDialrecord row (§2.4.1):
 *   dialPhoneNum → cdrPhoneNum     dialStartTime → cdrStartTime   dialHangupTime → cdrHangupTime
 *   dialTalktime → cdrTalktime     dialPeer → cdrPeer             dialHangupReason → cdrHangupReasonCode
 *   dialOpenIp → cdrExtensionIp    dialRecordFile → cdrRecordFile (once that file is uploaded)
 *   the caller → cdrExtension, exteName; other dial* fields are kept and shown in events.
 */
import { SqlClient } from "@effect/sql"
import type { Fragment } from "@effect/sql/Statement"
import { Clock, Effect, Either } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import type { Prepared } from "../db/Sqlite.js"
import { readStored } from "../db/StoredJson.js"
import { reachableThroughCall } from "../recordings/Access.js"
import { Ids } from "../shared/Ids.js"
import { formatLocal, parseLocal, pushedInstant } from "../shared/Time.js"
import { boundBucket } from "./TalkBuckets.js"

export interface CdrRecord {
  readonly cdr_id: number
  readonly comp_number: string
  readonly extension: string
  readonly dial_id: string | null
  readonly platform_cdr_id: string | null
  readonly phone: string
  readonly last_phone: string
  readonly start_ms: number
  readonly hangup_ms: number | null
  readonly talk_secs: number
  readonly peer: number | null
  readonly record_file: string
  readonly fields: string
  readonly source: string
}

/** The number without formatting, country prefix or leading zeros: what cdrLastPhoneNum means. */
export const lastPhoneOf = (phone: string): string =>
  phone.replace(/[^\d+]/g, "").replace(/^(\+86|0086)/, "").replace(/^\++/, "").replace(/^0+/, "")

const basename = (file: string) => file.split(/[\\/]/).pop() ?? ""

const text = (v: unknown): string => (v === undefined || v === null ? "" : String(v))
const num = (v: unknown): number | undefined => {
  const n = typeof v === "number" ? v : typeof v === "string" && v.trim() !== "" ? Number(v) : NaN
  return Number.isFinite(n) ? n : undefined
}

/** `memo` with `defaults` for the keys it lacks; `memo` itself (no copy) when it lacks none. */
const withDefaults = (memo: Readonly<Record<string, unknown>>, defaults: Readonly<Record<string, unknown>>) => {
  let out: Record<string, unknown> | undefined
  for (const key in defaults) {
    if (defaults[key] === undefined || memo[key] !== undefined) continue
    out ??= { ...memo }
    out[key] = defaults[key]
  }
  return out ?? memo
}

/** A platform id as JSON: a number when exact, else its text. */
const idValue = (id: string): number | string => (Number.isSafeInteger(Number(id)) ? Number(id) : id)

export interface ClientCdr {
  readonly dialId: string
  readonly phone?: string | undefined
  readonly startLocal?: string | undefined
  readonly hangupLocal?: string | undefined
  readonly talkSecs?: number | undefined
  readonly peer?: number | undefined
  readonly recordFile?: string | undefined
  /** every other field, as the client named it */
  readonly extra: Readonly<Record<string, unknown>>
}

export interface CdrFilter {
  readonly compNumber: string
  /** only these extensions (already limited to the caller's own for a non-admin) */
  readonly extensions?: ReadonlyArray<string> | undefined
  /** the agent (exte_id) asking, whose calls link only the recordings it may reach (Access.ts); undefined for an administrator */
  readonly viewer?: number | undefined
  readonly phone?: string | undefined
  readonly talk?: { readonly op: ">" | "<"; readonly secs: number } | undefined
  readonly fromMs?: number | undefined
  readonly toMs?: number | undefined
  readonly peer?: number | undefined
  readonly cdrId?: string | undefined
  readonly start: number
  readonly limit: number
}

const SELECT_PLATFORM = `SELECT * FROM cdrs WHERE comp_number = ? AND platform_cdr_id = ?`
// every enterprise that has call records, probed on (comp_number, platform_cdr_id): no index on the id alone to pay for
// (CROSS JOIN fixes the loop order: SQLite would otherwise scan the whole index of cdrs)
const ENTERPRISES_OF_PLATFORM_ID = `SELECT c.comp_number FROM cdr_counts k CROSS JOIN cdrs c ON c.comp_number = k.comp_number AND c.platform_cdr_id = ? LIMIT 2`
const UPDATE_PLATFORM = `UPDATE cdrs SET extension = ?, phone = ?, last_phone = ?, start_ms = ?, hangup_ms = ?, talk_secs = ?, peer = ?,
  record_file = ?, fields = ?, updated_at = ? WHERE cdr_id = ?`
const INSERT_PLATFORM = `INSERT INTO cdrs (cdr_id, comp_number, platform_cdr_id, source, created_at, extension, phone, last_phone, start_ms,
  hangup_ms, talk_secs, peer, record_file, fields, updated_at) VALUES (?, ?, ?, 'platform', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

const SELECT_BOX = `SELECT cdr_id FROM cdrs WHERE comp_number = ? AND box_callid = ?`
/** The callid is the record's platform id too, unless a platform push took that id first (migration 0012). */
const INSERT_BOX = `INSERT INTO cdrs (cdr_id, comp_number, box_callid, platform_cdr_id, source, created_at, extension, phone, last_phone, start_ms,
  hangup_ms, talk_secs, peer, record_file, fields, updated_at)
  VALUES (?, ?, ?, CASE WHEN EXISTS (SELECT 1 FROM cdrs WHERE comp_number = ? AND platform_cdr_id = ?) THEN NULL ELSE ? END,
    'box', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

/** A call the recording box uploaded (§2.1.10 cmd=upload): keyed by the box's callid, kept as text. */
export interface BoxCdr {
  readonly callid: string
  readonly extension: string
  readonly phone: string
  readonly startMs: number
  readonly hangupMs: number | null
  readonly talkSecs: number
  readonly peer: number | null
  /** the stored recording's file name, "" when the call has none */
  readonly recordFile: string
  /** the upload's fields as the box sent them */
  readonly fields: Readonly<Record<string, unknown>>
}

type Joined = CdrRecord & { exte_name: string | null; rel_path: string | null }

/**
 * A record's stored fields, or why they cannot be read. Rows stored before parameters were
 * held to a nesting depth may nest thousands deep: read naively, one such row overflowed the
 * stack on every findDialrecord of its enterprise.
 */
const storedFields = (r: CdrRecord): Either.Either<Readonly<Record<string, unknown>>, string> =>
  Either.flatMap(readStored(r.fields), (v) =>
    typeof v === "object" && v !== null && !Array.isArray(v) ? Either.right(v as Record<string, unknown>) : Either.left("not a JSON object")
  )

const WARNED_MAX = 10_000

/** cdr_hour_talk_counts' time bucket (migrations 0028, 0030) */
const HOUR = 3_600_000

/** findDialrecord's order: a total one (ids are unique), so OFFSET pages neither repeat nor skip a call */
const NEWEST_FIRST = "c.start_ms DESC, c.cdr_id DESC"
/** up to this many extensions a page is merged from each one's own range (more: one IN list) */
const MERGED_EXTENSIONS_MAX = 50

/** What an update adds its fields to. Unreadable stored fields are replaced: kept, they would make every later update of that call fail. */
const priorFields = (existing: CdrRecord | undefined): Readonly<Record<string, unknown>> =>
  existing === undefined ? {} : Either.getOrElse(storedFields(existing), () => ({}))

export class CdrStore extends Effect.Service<CdrStore>()("CdrStore", {
  dependencies: [Ids.Default],
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const ids = yield* Ids
    const { tz } = yield* AppConfig
    /** records whose unreadable fields were logged already: once per record, not on every page that lists it */
    const warned = new Set<number>()

    const first = <A>(rows: ReadonlyArray<A>): A | undefined => rows[0]

    /** addCdrRecord: a repeat of the same dialId by the same extension updates the record. */
    const upsertFromClient = (compNumber: string, extension: string, cdr: ClientCdr) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const existing = first(yield* sql<CdrRecord>`SELECT * FROM cdrs WHERE comp_number = ${compNumber} AND extension = ${extension} AND dial_id = ${cdr.dialId}`)
        if (existing && Either.isLeft(storedFields(existing)))
          yield* Effect.logWarning(`call record ${existing.cdr_id}: its stored fields cannot be read; this update replaces them`)
        const values = {
          phone: cdr.phone ?? existing?.phone ?? "",
          last_phone: lastPhoneOf(cdr.phone ?? existing?.phone ?? ""),
          start_ms: cdr.startLocal ? parseLocal(cdr.startLocal, tz) : (existing?.start_ms ?? now),
          hangup_ms: cdr.hangupLocal ? parseLocal(cdr.hangupLocal, tz) : (existing?.hangup_ms ?? null),
          talk_secs: cdr.talkSecs ?? existing?.talk_secs ?? 0,
          peer: cdr.peer ?? existing?.peer ?? null,
          record_file: cdr.recordFile ? basename(cdr.recordFile) : (existing?.record_file ?? ""),
          fields: JSON.stringify({ ...priorFields(existing), ...cdr.extra }),
          updated_at: now
        }
        if (existing) {
          yield* sql`UPDATE cdrs SET ${sql.update(values)} WHERE cdr_id = ${existing.cdr_id}`
          return { cdrId: existing.cdr_id, created: false }
        }
        const cdrId = yield* ids.next
        yield* sql`INSERT INTO cdrs ${sql.insert({ cdr_id: cdrId, comp_number: compNumber, extension, dial_id: cdr.dialId, source: "client", created_at: now, ...values })}`
        return { cdrId, created: true }
      })

    const localTime = (v: unknown) => pushedInstant(text(v), tz)
    const seconds = (v: unknown) => {
      const n = num(v)
      return n !== undefined && Number.isInteger(n) && n >= 0 ? n : undefined
    }

    /**
     * The platform's push memo (§2.10.4), keyed by its cdrId; later pushes of the same call
     * (dialing → answered → hangup → recording) fill in what the earlier ones lacked.
     * Synchronous, on the caller's connection: the push ingest runs it inside its group commit.
     */
    const upsertFromPlatformIn = (
      prepared: Prepared,
      compNumber: string,
      pushed: Readonly<Record<string, unknown>>,
      /** what the memo leaves out is taken from here (the push's own phone and direction) */
      defaults: Readonly<Record<string, unknown>> = {}
    ) => {
      const memo = withDefaults(pushed, defaults)
      const now = Date.now()
      const platformId = text(memo.cdrId).trim()
      const existing = prepared(SELECT_PLATFORM).get(compNumber, platformId) as CdrRecord | undefined
      const phone = memo.cdrPhoneNum !== undefined ? text(memo.cdrPhoneNum) : (existing?.phone ?? "")
      const extension = memo.cdrExtension !== undefined ? text(memo.cdrExtension) : (existing?.extension ?? "")
      const lastPhone = memo.cdrLastPhoneNum !== undefined ? text(memo.cdrLastPhoneNum) : lastPhoneOf(phone)
      const startMs = localTime(memo.cdrStartTime) ?? existing?.start_ms ?? now
      const hangupMs = localTime(memo.cdrHangupTime) ?? existing?.hangup_ms ?? null
      const talkSecs = seconds(memo.cdrTalktime) ?? existing?.talk_secs ?? 0
      const peer = num(memo.cdrPeer) ?? existing?.peer ?? null
      const recordFile = memo.cdrRecordFile ? basename(text(memo.cdrRecordFile)) : (existing?.record_file ?? "")
      const fields = JSON.stringify(existing ? { ...priorFields(existing), ...memo } : memo)
      if (existing) {
        prepared(UPDATE_PLATFORM).run(extension, phone, lastPhone, startMs, hangupMs, talkSecs, peer, recordFile, fields, now, existing.cdr_id)
        return { cdrId: existing.cdr_id, created: false }
      }
      const cdrId = ids.nextSync()
      prepared(INSERT_PLATFORM).run(cdrId, compNumber, platformId, now, extension, phone, lastPhone, startMs, hangupMs, talkSecs, peer, recordFile, fields, now)
      return { cdrId, created: true }
    }

    /**
     * A push whose memo names its call but not its extension (a recording push, say) updates
     * that call's record when exactly one enterprise has a call of that id; it creates none.
     */
    const updateFromPlatformIn = (prepared: Prepared, pushed: Readonly<Record<string, unknown>>, defaults: Readonly<Record<string, unknown>> = {}) => {
      const owners = prepared(ENTERPRISES_OF_PLATFORM_ID).all(text(pushed.cdrId).trim()) as Array<{ comp_number: string }>
      return owners.length === 1 ? upsertFromPlatformIn(prepared, owners[0]!.comp_number, pushed, defaults) : undefined
    }

    /** A stored record in the contract's `cdr*` shape, given its stored fields as read (`storedFields`). */
    const toRow = (r: Joined, f: Readonly<Record<string, unknown>>) => {
      const talk = r.talk_secs
      return {
        cdrId: r.platform_cdr_id !== null ? idValue(r.platform_cdr_id) : r.cdr_id,
        cdrCalledName: text(f.cdrCalledName),
        cdrExtensionIp: text(f.cdrExtensionIp ?? f.dialOpenIp),
        cdrHangupTime: r.hangup_ms === null ? "" : formatLocal(r.hangup_ms, tz),
        cdrPhonePort: text(f.cdrPhonePort),
        cdrStartTime: formatLocal(r.start_ms, tz),
        cdrExtension: r.extension,
        cdrIVR: text(f.cdrIVR),
        cdrTalktime: talk,
        cdrChargingTimes: num(f.cdrChargingTimes) ?? Math.ceil(talk / 60),
        cdrLastPhoneNum: r.last_phone,
        cdrPeer: r.peer ?? 0,
        exteName: r.exte_name ?? text(f.exteName),
        cdrHangupReasonText: text(f.cdrHangupReasonText),
        cdrPhoneNum: r.phone,
        cdrPhoneIp: text(f.cdrPhoneIp),
        cdrHangupReasonCode: text(f.cdrHangupReasonCode ?? f.dialHangupReason),
        cdrTrunkRoute: text(f.cdrTrunkRoute),
        cdrCmmId: text(f.cdrCmmId),
        cdrExtensionPort: text(f.cdrExtensionPort),
        cdrIVRKey: text(f.cdrIVRKey),
        cdrRecordFile: r.rel_path ?? (r.source === "platform" ? text(f.cdrRecordFile) : "")
      }
    }

    const joined = (viewer: number | undefined) => sql`SELECT c.*, e.name AS exte_name, r.rel_path FROM cdrs c
      LEFT JOIN extensions e ON e.extension = c.extension
      LEFT JOIN recordings r ON c.record_file <> '' AND r.comp_number = c.comp_number AND r.file_name = c.record_file
        ${viewer === undefined ? sql`` : sql`AND ${reachableThroughCall(sql, viewer)}`}`

    /** Stored records as rows; fields that cannot be read are left out (the call itself is still listed) and logged. */
    const rowsOf = (records: ReadonlyArray<Joined>) =>
      Effect.forEach(records, (r) =>
        Either.match(storedFields(r), {
          onRight: (f) => Effect.succeed(toRow(r, f)),
          onLeft: (problem) => {
            const row = toRow(r, {})
            if (warned.has(r.cdr_id) || warned.size >= WARNED_MAX) return Effect.succeed(row)
            warned.add(r.cdr_id)
            return Effect.as(Effect.logWarning(`call record ${r.cdr_id}: its stored fields cannot be read (${problem}); it is listed without them`), row)
          }
        })
      )

    // the record as stored, for events: every recording it names is linked
    const findRow = (cdrId: number) =>
      Effect.flatMap(sql<Joined>`${joined(undefined)} WHERE c.cdr_id = ${cdrId}`, (rows) => Effect.map(rowsOf(rows), (out) => out[0]))

    /**
     * The ids of one page, found before anything is joined: OFFSET then skips index entries
     * (the indexes hold the order's columns and, but for the phone's, the talk time and
     * direction) instead of whole joined rows — page 500 of 1M read 10,000 rows to return 20.
     */
    const pageIds = (condition: Fragment, filter: CdrFilter, others: ReadonlyArray<Fragment>, merged: boolean) => {
      const extensions = filter.extensions ?? []
      if (!merged)
        return sql`SELECT c.cdr_id FROM cdrs c WHERE ${condition} ORDER BY ${sql.literal(NEWEST_FIRST)} LIMIT CAST(${filter.limit} AS INTEGER) OFFSET ${filter.start}`
      // several extensions: each one's newest start + limit from its own index range, merged. With
      // an IN list SQLite walks cdrs_newest and reads every row to test its extension (a deep
      // page of three extensions out of a hundred at 1M: ~90 ms). Chosen by `search` only when the
      // extensions are few against how rare their calls are (see there).
      const branches = extensions.map(
        (extension) =>
          sql`SELECT * FROM (SELECT c.cdr_id, c.start_ms FROM cdrs c WHERE ${sql.and([...others, sql`c.extension = ${extension}`])} ORDER BY ${sql.literal(NEWEST_FIRST)} LIMIT CAST(${filter.start + filter.limit} AS INTEGER))`
      )
      return sql`SELECT m.cdr_id FROM (${sql.join(" UNION ALL ", false)(branches)}) m ORDER BY m.start_ms DESC, m.cdr_id DESC LIMIT CAST(${filter.limit} AS INTEGER) OFFSET ${filter.start}`
    }

    /** every call of the enterprise, as 0003/0028's trigger counts them */
    const enterpriseCount = (compNumber: string) => sql<{ n: number }>`SELECT n FROM cdr_counts WHERE comp_number = ${compNumber}`

    /**
     * How findDialrecord's total is found. A filter naming nothing narrower than talk time, direction
     * and time is summed from the counts: talk time and direction from cdr_talk_counts (0028), time
     * with them from cdr_hour_talk_counts (0030), whose talk buckets answer a talk time on one of
     * their bounds whole (another talk time with a time range is counted from the calls). The
     * range's partial hours at either end are counted from the index. Direction 0 is where those
     * counts keep the calls that have none, so it is counted too.
     */
    const totalOf = (filter: CdrFilter, condition: Fragment) => {
      const counted = sql<{ n: number }>`SELECT count(*) AS n FROM cdrs c WHERE ${condition}`
      const timed = filter.fromMs !== undefined || filter.toMs !== undefined
      const bucket = filter.talk && boundBucket(filter.talk.secs)
      if (filter.extensions !== undefined || filter.phone !== undefined || filter.cdrId !== undefined || filter.peer === 0 || (timed && filter.talk && bucket === undefined))
        return counted
      if (!timed && !filter.talk && filter.peer === undefined) return enterpriseCount(filter.compNumber)
      const peer = filter.peer === undefined ? [] : [sql`k.peer = ${filter.peer}`]
      const talk = !filter.talk ? [] : [filter.talk.op === ">" ? sql`k.talk_secs > ${filter.talk.secs}` : sql`k.talk_secs < ${filter.talk.secs}`]
      if (!timed) {
        return sql<{ n: number }>`SELECT coalesce(sum(k.n), 0) AS n FROM cdr_talk_counts k WHERE ${sql.and([sql`k.comp_number = ${filter.compNumber}`, ...peer, ...talk])}`
      }
      const { fromMs, toMs } = filter
      // the whole hours within [fromMs, toMs]: lo ≤ hour < hi
      const lo = fromMs === undefined ? undefined : Math.ceil(fromMs / HOUR)
      const hi = toMs === undefined ? undefined : Math.floor((toMs + 1) / HOUR)
      if (lo !== undefined && hi !== undefined && lo >= hi) return counted
      const talkBucket = filter.talk && bucket !== undefined ? [filter.talk.op === ">" ? sql`k.talk_bucket > ${bucket}` : sql`k.talk_bucket < ${bucket}`] : []
      const hoursSum = (...time: ReadonlyArray<Fragment>) =>
        sql`(SELECT coalesce(sum(k.n), 0) FROM cdr_hour_talk_counts k WHERE ${sql.and([sql`k.comp_number = ${filter.compNumber}`, ...peer, ...talkBucket, ...time])})`
      const inside = hoursSum(...(lo === undefined ? [] : [sql`k.hour >= ${lo}`]), ...(hi === undefined ? [] : [sql`k.hour < ${hi}`]))
      // a range over most of the enterprise's hours (open at one end, say: a year of them at 1M
      // calls is ~100k rows) is summed as all its calls less the hours outside it
      const all = sql`(SELECT coalesce(sum(k.n), 0) FROM cdr_talk_counts k WHERE ${sql.and([sql`k.comp_number = ${filter.compNumber}`, ...peer, ...talk])})`
      const outside = sql`${all}${lo === undefined ? sql`` : sql` - ${hoursSum(sql`k.hour < ${lo}`)}`}${hi === undefined ? sql`` : sql` - ${hoursSum(sql`k.hour >= ${hi}`)}`}`
      const edge = (...time: ReadonlyArray<Fragment>) => {
        const where = [sql`c.comp_number = ${filter.compNumber}`, ...time]
        if (filter.talk) where.push(filter.talk.op === ">" ? sql`c.talk_secs > ${filter.talk.secs}` : sql`c.talk_secs < ${filter.talk.secs}`)
        if (filter.peer !== undefined) where.push(sql`c.peer = ${filter.peer}`)
        return sql` + (SELECT count(*) FROM cdrs c WHERE ${sql.and(where)})`
      }
      const head = fromMs !== undefined && lo !== undefined && fromMs < lo * HOUR ? edge(sql`c.start_ms >= ${fromMs}`, sql`c.start_ms < ${lo * HOUR}`) : sql``
      const tail = toMs !== undefined && hi !== undefined && hi * HOUR <= toMs ? edge(sql`c.start_ms >= ${hi * HOUR}`, sql`c.start_ms <= ${toMs}`) : sql``
      // span: the enterprise's first and last hour (ends of the key's range); CASE runs only the sum it picks
      return sql<{ n: number }>`SELECT CASE WHEN s.first IS NOT NULL
          AND 2 * (${hi === undefined ? sql`s.last + 1` : sql`CASE WHEN ${hi} < s.last + 1 THEN ${hi} ELSE s.last + 1 END`}
            - ${lo === undefined ? sql`s.first` : sql`CASE WHEN ${lo} > s.first THEN ${lo} ELSE s.first END`}) > s.last + 1 - s.first
        THEN ${outside} ELSE ${inside} END${head}${tail} AS n
        FROM (SELECT (SELECT min(hour) FROM cdr_hour_talk_counts WHERE comp_number = ${filter.compNumber}) AS first,
          (SELECT max(hour) FROM cdr_hour_talk_counts WHERE comp_number = ${filter.compNumber}) AS last) s`
    }

    /** findDialrecord: total and one page, newest first (ties by id), every filter optional. */
    const search = (filter: CdrFilter) =>
      Effect.gen(function* () {
        const where: Array<Fragment> = [sql`c.comp_number = ${filter.compNumber}`]
        if (filter.phone !== undefined) where.push(sql`c.last_phone = ${lastPhoneOf(filter.phone)}`)
        if (filter.talk) where.push(filter.talk.op === ">" ? sql`c.talk_secs > ${filter.talk.secs}` : sql`c.talk_secs < ${filter.talk.secs}`)
        if (filter.fromMs !== undefined) where.push(sql`c.start_ms >= ${filter.fromMs}`)
        if (filter.toMs !== undefined) where.push(sql`c.start_ms <= ${filter.toMs}`)
        if (filter.peer !== undefined) where.push(sql`c.peer = ${filter.peer}`)
        if (filter.cdrId !== undefined) {
          const asNumber = Number(filter.cdrId)
          where.push(Number.isSafeInteger(asNumber) ? sql`(c.cdr_id = ${asNumber} OR c.platform_cdr_id = ${filter.cdrId})` : sql`c.platform_cdr_id = ${filter.cdrId}`)
        }
        const others = [...where]
        if (filter.extensions) where.push(filter.extensions.length === 1 ? sql`c.extension = ${filter.extensions[0]!}` : sql.in("c.extension", filter.extensions))
        const condition = sql.and(where)
        const counted = yield* totalOf(filter, condition)
        const n = counted[0]?.n ?? 0
        // merging reads extensions × (start + limit) index entries; the IN list's walk of cdrs_newest
        // reads about (start + limit) × (all calls / matching calls) rows. Merge only when that is
        // less: a list covering most calls ("select all agents") walks (50 of 50 at start 10000:
        // 2.7 ms walking against 85 ms merging)
        const many = filter.extensions !== undefined && filter.extensions.length >= 2 && filter.extensions.length <= MERGED_EXTENSIONS_MAX
        const all = many && n > 0 ? ((yield* enterpriseCount(filter.compNumber))[0]?.n ?? 0) : 0
        const merged = many && filter.extensions!.length * n < all
        const rows =
          filter.limit === 0 || filter.start >= n
            ? []
            : yield* sql<Joined>`${joined(filter.viewer)} WHERE c.cdr_id IN (${pageIds(condition, filter, others, merged)}) ORDER BY ${sql.literal(NEWEST_FIRST)}`
        return { total: n, rows: yield* rowsOf(rows) }
      })

    /** The record of a box's call, if that callid was stored already (an upload sent again). On the caller's connection. */
    const boxCallIn = (prepared: Prepared, compNumber: string, callid: string) =>
      (prepared(SELECT_BOX).get(compNumber, callid) as { cdr_id: number } | undefined)?.cdr_id

    /** Stores a box's call once; on the caller's connection, inside its transaction. Answers its cdr_id. */
    const insertFromBoxIn = (prepared: Prepared, compNumber: string, cdr: BoxCdr) => {
      const now = Date.now()
      const cdrId = ids.nextSync()
      prepared(INSERT_BOX).run(cdrId, compNumber, cdr.callid, compNumber, cdr.callid, cdr.callid, now, cdr.extension, cdr.phone, lastPhoneOf(cdr.phone), cdr.startMs, cdr.hangupMs, cdr.talkSecs, cdr.peer, cdr.recordFile, JSON.stringify(cdr.fields), now)
      return cdrId
    }

    return { boxCallIn, insertFromBoxIn, upsertFromClient, upsertFromPlatformIn, updateFromPlatformIn, findRow, search } as const
  })
}) {}
