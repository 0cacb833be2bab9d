/**
 * The schema, as numbered migrations run at every start (and by `npm start -- migrate`).
 * A migration once released is never edited: later changes get a new number.
 */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { lastPhoneOf } from "../records/CdrStore.js"
import { talkBucketSql } from "../records/TalkBuckets.js"

const run = (...statements: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    for (const s of statements) yield* sql.unsafe(s)
  })

/** The hour a call started in, floor(start_ms / 1 h) for times before 1970 too (SQLite's integer division truncates). */
const HOUR_OF = (row: string) => `((${row}.start_ms - ((${row}.start_ms % 3600000) + 3600000) % 3600000) / 3600000)`
/** One call added to (+) or taken from (-) its count in cdr_talk_counts / cdr_hour_counts (0028). */
const COUNT_TALK = (row: string, sign: "+" | "-") =>
  `INSERT INTO cdr_talk_counts (comp_number, peer, talk_secs, n) VALUES (${row}.comp_number, coalesce(${row}.peer, 0), ${row}.talk_secs, ${sign}1)
     ON CONFLICT (comp_number, peer, talk_secs) DO UPDATE SET n = n ${sign} 1`
const COUNT_HOUR = (row: string, sign: "+" | "-") =>
  `INSERT INTO cdr_hour_counts (comp_number, hour, peer, n) VALUES (${row}.comp_number, ${HOUR_OF(row)}, coalesce(${row}.peer, 0), ${sign}1)
     ON CONFLICT (comp_number, hour, peer) DO UPDATE SET n = n ${sign} 1`
/**
 * The hour a call started in, from 0031 on: HOUR_OF's `%` truncates a REAL start to an integer
 * first, so a start before 1970 with a fraction of a millisecond (written by hand) fell in the
 * next hour. floor of the real quotient is exact for every integer start (a multiple of the hour
 * divides exactly) and right for fractional ones; PostgreSQL has floor too.
 */
const HOUR_FLOOR = (row: string) => `CAST(floor(${row}.start_ms / 3600000.0) AS INTEGER)`
/** One call added to (+) or taken from (-) its count in cdr_hour_talk_counts (0030; its hour as `hourOf` says). */
const COUNT_HOUR_TALK = (row: string, sign: "+" | "-", hourOf = HOUR_OF) =>
  `INSERT INTO cdr_hour_talk_counts (comp_number, hour, peer, talk_bucket, n)
     VALUES (${row}.comp_number, ${hourOf(row)}, coalesce(${row}.peer, 0), ${talkBucketSql(`${row}.talk_secs`)}, ${sign}1)
     ON CONFLICT (comp_number, hour, peer, talk_bucket) DO UPDATE SET n = n ${sign} 1`
/** The per-enterprise count of 0003 (one upsert since 0028). */
const COUNT_ALL = (row: string, sign: "+" | "-") =>
  `INSERT INTO cdr_counts (comp_number, n) VALUES (${row}.comp_number, ${sign}1) ON CONFLICT (comp_number) DO UPDATE SET n = n ${sign} 1`

export const migrations: Record<string, Effect.Effect<void, unknown, SqlClient.SqlClient>> = {
  "0001_foundation": run(
    `CREATE TABLE enterprises (
      comp_number TEXT PRIMARY KEY,
      comp_name TEXT NOT NULL,
      disable_phone_num INTEGER NOT NULL DEFAULT 0,
      created_at INTEGER NOT NULL
    )`,
    // suffix is the contract's 400–899 tail; extension = comp_number || suffix
    `CREATE TABLE extensions (
      exte_id INTEGER PRIMARY KEY,
      comp_number TEXT NOT NULL REFERENCES enterprises(comp_number),
      suffix INTEGER NOT NULL,
      extension TEXT NOT NULL UNIQUE,
      name TEXT NOT NULL DEFAULT '',
      password_hash TEXT NOT NULL,
      mobile TEXT NOT NULL DEFAULT '',
      in_mobile_rule INTEGER NOT NULL DEFAULT 0,
      status INTEGER NOT NULL DEFAULT 0,
      is_record INTEGER NOT NULL DEFAULT 1,
      memo1 TEXT NOT NULL DEFAULT '',
      memo2 TEXT NOT NULL DEFAULT '',
      memo3 TEXT NOT NULL DEFAULT '',
      memo4 TEXT NOT NULL DEFAULT '',
      memo5 TEXT NOT NULL DEFAULT '',
      login_name TEXT NOT NULL DEFAULT '',
      login_type INTEGER NOT NULL DEFAULT 0,
      is_app INTEGER NOT NULL DEFAULT 1,
      dept_id INTEGER,
      shp_id INTEGER,
      transfer_shp_id INTEGER,
      show_phone TEXT NOT NULL DEFAULT '',
      check_in INTEGER NOT NULL DEFAULT 0,
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL,
      UNIQUE (comp_number, suffix)
    )`,
    // only a hash of the session token is stored: the token itself is a credential
    `CREATE TABLE sessions (
      token_hash TEXT PRIMARY KEY,
      exte_id INTEGER NOT NULL REFERENCES extensions(exte_id) ON DELETE CASCADE,
      expires_at INTEGER NOT NULL,
      created_at INTEGER NOT NULL
    )`,
    `CREATE INDEX sessions_exte ON sessions(exte_id)`,
    `CREATE INDEX sessions_expiry ON sessions(expires_at)`,
    `CREATE TABLE blacklist (
      comp_number TEXT NOT NULL,
      phone TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      created_by INTEGER,
      PRIMARY KEY (comp_number, phone)
    ) WITHOUT ROWID`,
    // the transactional outbox: written in the same transaction as the change it describes
    `CREATE TABLE events (
      id INTEGER PRIMARY KEY,
      type TEXT NOT NULL,
      occurred_at INTEGER NOT NULL,
      enterprise TEXT,
      source TEXT NOT NULL,
      data TEXT NOT NULL,
      raw TEXT,
      dedup_key TEXT UNIQUE
    )`,
    `CREATE INDEX events_type_time ON events(type, occurred_at)`,
    `CREATE INDEX events_time ON events(occurred_at)`
  ),
  // Recording files (§2.1.5 uploads, box recordings): the file lives under <dataDir>/record/<rel_path>.
  // A CDR names its file by file_name (dialRecordFile); either may arrive first.
  "0002_recordings": run(
    `CREATE TABLE recordings (
      id INTEGER PRIMARY KEY,
      comp_number TEXT NOT NULL,
      file_name TEXT NOT NULL,
      rel_path TEXT NOT NULL UNIQUE,
      md5 TEXT NOT NULL,
      size INTEGER NOT NULL,
      content_type TEXT NOT NULL DEFAULT 'application/octet-stream',
      uploaded_by INTEGER,
      created_at INTEGER NOT NULL,
      UNIQUE (comp_number, file_name)
    )`
  ),
  // Call records from clients (addCdrRecord, keyed by the client's dialId), the platform's
  // pushes (keyed by its cdrId) and the box. Indexed for findDialrecord's filters at 1M rows:
  // every query is scoped to an enterprise and ordered newest first.
  "0003_records": run(
    `CREATE TABLE cdrs (
      cdr_id INTEGER PRIMARY KEY,
      comp_number TEXT NOT NULL,
      extension TEXT NOT NULL DEFAULT '',
      dial_id TEXT,
      platform_cdr_id TEXT,
      phone TEXT NOT NULL DEFAULT '',
      last_phone TEXT NOT NULL DEFAULT '',
      start_ms INTEGER NOT NULL,
      hangup_ms INTEGER,
      talk_secs INTEGER NOT NULL DEFAULT 0,
      peer INTEGER,
      record_file TEXT NOT NULL DEFAULT '',
      fields TEXT NOT NULL DEFAULT '{}',
      source TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL
    )`,
    `CREATE UNIQUE INDEX cdrs_dial ON cdrs(comp_number, extension, dial_id) WHERE dial_id IS NOT NULL`,
    `CREATE UNIQUE INDEX cdrs_platform ON cdrs(comp_number, platform_cdr_id) WHERE platform_cdr_id IS NOT NULL`,
    `CREATE INDEX cdrs_newest ON cdrs(comp_number, start_ms DESC, cdr_id DESC)`,
    `CREATE INDEX cdrs_extension ON cdrs(comp_number, extension, start_ms DESC, cdr_id DESC)`,
    `CREATE INDEX cdrs_phone ON cdrs(comp_number, last_phone, start_ms DESC, cdr_id DESC)`,
    `CREATE INDEX cdrs_record_file ON cdrs(comp_number, record_file) WHERE record_file <> ''`,
    // an unfiltered findDialrecord's total would otherwise count a million index entries per call
    `CREATE TABLE cdr_counts (comp_number TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID`,
    `CREATE TRIGGER cdrs_counted AFTER INSERT ON cdrs BEGIN
       INSERT OR IGNORE INTO cdr_counts (comp_number, n) VALUES (NEW.comp_number, 0);
       UPDATE cdr_counts SET n = n + 1 WHERE comp_number = NEW.comp_number;
     END`,
    `CREATE TRIGGER cdrs_uncounted AFTER DELETE ON cdrs BEGIN
       UPDATE cdr_counts SET n = n - 1 WHERE comp_number = OLD.comp_number;
     END`,
    `CREATE TABLE sms_records (
      sms_id INTEGER PRIMARY KEY,
      comp_number TEXT NOT NULL,
      extension TEXT NOT NULL,
      local_id TEXT,
      kind INTEGER,
      phone TEXT NOT NULL,
      content TEXT NOT NULL DEFAULT '',
      time_ms INTEGER NOT NULL,
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL
    )`,
    `CREATE UNIQUE INDEX sms_local ON sms_records(comp_number, extension, local_id) WHERE local_id IS NOT NULL`,
    `CREATE INDEX sms_newest ON sms_records(comp_number, time_ms DESC)`
  ),
  // Messages between the desktop client and the mobile app of one extension (§2.1.3–2.1.4).
  // water_line is the server's storage stamp: strictly increasing per extension.
  "0004_messages": run(
    `CREATE TABLE messages (
      water_line INTEGER NOT NULL,
      comp_number TEXT NOT NULL,
      extension TEXT NOT NULL,
      from_client INTEGER NOT NULL,
      to_client INTEGER NOT NULL,
      kind INTEGER NOT NULL,
      phone TEXT NOT NULL,
      content TEXT NOT NULL,
      lon REAL,
      lat REAL,
      time_ms INTEGER NOT NULL,
      expires_at INTEGER,
      PRIMARY KEY (comp_number, extension, water_line)
    ) WITHOUT ROWID`,
    `CREATE INDEX messages_inbox ON messages(comp_number, extension, to_client, water_line)`,
    `CREATE INDEX messages_expiry ON messages(expires_at) WHERE expires_at IS NOT NULL`
  ),
  // Forwarding (an outbox modelled on @effect/sql's SqlPersistedQueue): one delivery per event
  // and matching target, written with the event; attempts kept for every try.
  "0005_forwarding": run(
    `CREATE TABLE targets (
      name TEXT PRIMARY KEY,
      config TEXT NOT NULL,
      origin TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL
    )`,
    `CREATE TABLE deliveries (
      id INTEGER PRIMARY KEY,
      event_id INTEGER NOT NULL REFERENCES events(id),
      target TEXT NOT NULL,
      status TEXT NOT NULL,
      attempts INTEGER NOT NULL DEFAULT 0,
      next_attempt_at INTEGER NOT NULL,
      lock_expires_at INTEGER,
      order_key TEXT,
      webhook_id TEXT NOT NULL,
      last_error TEXT,
      dead_reason TEXT,
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL
    )`,
    `CREATE INDEX deliveries_due ON deliveries(target, next_attempt_at) WHERE status = 'pending'`,
    `CREATE INDEX deliveries_status ON deliveries(status, target, id)`,
    `CREATE INDEX deliveries_event ON deliveries(event_id)`,
    `CREATE INDEX deliveries_order ON deliveries(target, order_key, id) WHERE order_key IS NOT NULL AND status IN ('pending', 'in_flight')`,
    `CREATE TABLE attempts (
      delivery_id INTEGER NOT NULL,
      n INTEGER NOT NULL,
      started_at INTEGER NOT NULL,
      status INTEGER,
      latency_ms INTEGER NOT NULL,
      error TEXT,
      response TEXT,
      PRIMARY KEY (delivery_id, n)
    ) WITHOUT ROWID`
  ),
  // Indexes every push paid for and no query read: recordings are found from the call record
  // (cdrs → recordings by file name, the recordings' own unique index), and the admin event
  // listing narrows by time (events_time) before it filters by type.
  "0006_leaner_writes": run(`DROP INDEX IF EXISTS cdrs_record_file`, `DROP INDEX IF EXISTS events_type_time`),
  // A call's delivery that exhausted its retries (the target was unreachable) holds the call's
  // later deliveries to that target until it is redriven or purged, so a redrive after an
  // outage still sends the call in order; the index covers those dead letters too.
  "0007_order_behind_exhausted": run(
    `DROP INDEX IF EXISTS deliveries_order`,
    `CREATE INDEX deliveries_order ON deliveries(target, order_key, id)
       WHERE order_key IS NOT NULL AND (status IN ('pending', 'in_flight') OR (status = 'dead' AND dead_reason = 'exhausted'))`
  ),
  // A target whose circuit is open, kept across restarts: after one, it is probed first, and
  // its recovery still raises the `target.recovered` that closes the operator's alert.
  "0008_failing_targets": run(
    `CREATE TABLE failing_targets (target TEXT PRIMARY KEY, since INTEGER NOT NULL, failures INTEGER NOT NULL) WITHOUT ROWID`
  ),
  // Counts the events that end an extension's sessions (a password change, being disabled):
  // a session held in memory while the disk refused writes — or by a running bridge when the
  // CLI changes a password — remembers the count it began with and ends when it moved.
  "0009_session_epoch": run(`ALTER TABLE extensions ADD COLUMN session_epoch INTEGER NOT NULL DEFAULT 0`),
  // Recording boxes (§2.1.10). A box that calls in unregistered is kept with no enterprise
  // (pending) and its last address, so an operator can assign it. Its last status report and
  // each channel's live state are kept, so a change of state is told from a heartbeat.
  "0010_box_devices": run(
    `CREATE TABLE box_devices (
      mac TEXT PRIMARY KEY,
      enterprise TEXT,
      channels TEXT NOT NULL DEFAULT '{}',
      origin TEXT NOT NULL,
      last_address TEXT,
      last_seen_at INTEGER,
      status TEXT,
      status_at INTEGER,
      alert TEXT,
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL
    ) WITHOUT ROWID`,
    `CREATE TABLE box_channels (
      mac TEXT NOT NULL,
      ch INTEGER NOT NULL,
      state INTEGER NOT NULL,
      phone TEXT NOT NULL DEFAULT '',
      timelen INTEGER,
      peer INTEGER,
      serial TEXT,
      changed_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL,
      PRIMARY KEY (mac, ch)
    ) WITHOUT ROWID`
  ),
  // findDialrecord's talk-time and direction filters are answered from the index that orders
  // the page: without the two columns every matching index entry cost a random read of its
  // row (counting the outbound calls of 1M took ~2.4 s with the one thread held). Widened in
  // place, not added: a push writes as many index entries as before, each a few bytes longer.
  "0011_covering_call_filters": run(
    `DROP INDEX IF EXISTS cdrs_newest`,
    `CREATE INDEX cdrs_newest ON cdrs(comp_number, start_ms DESC, cdr_id DESC, talk_secs, peer)`,
    `DROP INDEX IF EXISTS cdrs_extension`,
    `CREATE INDEX cdrs_extension ON cdrs(comp_number, extension, start_ms DESC, cdr_id DESC, talk_secs, peer)`
  ),
  // A box's callid is its own key: the box and the platform number calls independently, so a
  // callid may equal a platform cdrId of the enterprise (the call records' id index refused the
  // box's call then, and its upload was retried forever). The callid is also the record's
  // platform id when that is free, so findDialrecord and downloads name it as before.
  "0012_box_callid": run(
    `ALTER TABLE cdrs ADD COLUMN box_callid TEXT`,
    `UPDATE cdrs SET box_callid = platform_cdr_id WHERE source = 'box'`,
    `CREATE UNIQUE INDEX cdrs_box ON cdrs(comp_number, box_callid) WHERE box_callid IS NOT NULL`
  ),
  // Dials queued for a box's channel (§2.5.1 sendTelCall), handed out by its getCallList poll
  // (§2.1.10). taken_at marks a dial handed out, so no second poll hands it out again; a dial
  // not taken by expires_at is never handed out (nobody is waiting at the phone any more).
  "0013_box_dials": run(
    `CREATE TABLE box_dials (
      id INTEGER PRIMARY KEY,
      mac TEXT NOT NULL,
      channel INTEGER NOT NULL,
      phone TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      expires_at INTEGER NOT NULL,
      taken_at INTEGER
    )`,
    `CREATE INDEX box_dials_waiting ON box_dials(mac, channel, id) WHERE taken_at IS NULL`
  ),
  // What a box is handed is not only dials: getMessageList (§2.1.10, old firmware) hands out
  // web messages too (status 51 with a memo). One queue, so a dial is handed out once whichever
  // of the two polls asks first. offline_at marks a registered box that went silent (set by the
  // presence sweep, cleared when it calls in again): box.offline and box.online are raised once.
  "0014_box_messages_presence": run(
    `ALTER TABLE box_dials RENAME TO box_messages`,
    `DROP INDEX box_dials_waiting`,
    `ALTER TABLE box_messages ADD COLUMN status TEXT NOT NULL DEFAULT '0'`,
    `ALTER TABLE box_messages ADD COLUMN memo TEXT`,
    `CREATE INDEX box_messages_waiting ON box_messages(mac, channel, id) WHERE taken_at IS NULL`,
    `ALTER TABLE box_devices ADD COLUMN offline_at INTEGER`,
    `CREATE INDEX box_devices_online ON box_devices(last_seen_at) WHERE offline_at IS NULL AND enterprise IS NOT NULL`
  ),
  // CRM code lists (§2.6.6), field labels (§2.6.3) and follow-up memos (§2.9). A code list is
  // copied from the configuration into the enterprise's rows (so codes keep their ids) and kept
  // in step with it while no administrator has edited it (owner 'config'); crm_code_seeds holds
  // the hash of the configuration the enterprise's lists were last synced with. A memo's
  // reminder is pending while hint_at is set and fired_at is not: claiming it sets fired_at.
  "0016_crm_codes_memos": run(
    `CREATE TABLE crm_code_seeds (
      comp_number TEXT PRIMARY KEY,
      config_hash TEXT NOT NULL
    )`,
    `CREATE TABLE crm_code_lists (
      comp_number TEXT NOT NULL,
      code_type TEXT NOT NULL,
      owner TEXT NOT NULL,
      PRIMARY KEY (comp_number, code_type)
    )`,
    `CREATE TABLE crm_codes (
      code_id INTEGER PRIMARY KEY,
      comp_number TEXT NOT NULL,
      code_type TEXT NOT NULL,
      code_code TEXT NOT NULL,
      code_name TEXT NOT NULL,
      parent_id INTEGER,
      position INTEGER NOT NULL,
      UNIQUE (comp_number, code_type, code_code)
    )`,
    `CREATE TABLE crm_field_labels (
      comp_number TEXT NOT NULL,
      field_name TEXT NOT NULL,
      label TEXT NOT NULL,
      PRIMARY KEY (comp_number, field_name)
    )`,
    `CREATE TABLE crm_memos (
      cmm_id INTEGER PRIMARY KEY,
      comp_number TEXT NOT NULL,
      extension TEXT NOT NULL,
      phone TEXT NOT NULL,
      phone_key TEXT NOT NULL,
      memo TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      hint_at INTEGER,
      hint_phone TEXT,
      fired_at INTEGER
    )`,
    `CREATE INDEX crm_memos_phone ON crm_memos(comp_number, phone_key, cmm_id DESC)`,
    `CREATE INDEX crm_memos_newest ON crm_memos(comp_number, cmm_id DESC)`,
    `CREATE INDEX crm_memos_due ON crm_memos(hint_at) WHERE hint_at IS NOT NULL AND fired_at IS NULL`
  ),
  // Customers (§2.6), their phones and sales (§2.8). Every getCustomersPage filter and sort has an
  // index led by the enterprise and ending in cust_id (the page order's tie-break): a page is an
  // index range, and a count an index-only scan of the matches.
  "0017_customers": run(
    `CREATE TABLE customers (
      cust_id INTEGER PRIMARY KEY,
      comp_number TEXT NOT NULL REFERENCES enterprises(comp_number),
      name TEXT NOT NULL DEFAULT '',
      corp_name TEXT NOT NULL DEFAULT '',
      status TEXT NOT NULL DEFAULT '',
      qq TEXT NOT NULL DEFAULT '',
      addr TEXT NOT NULL DEFAULT '',
      birthday_type INTEGER NOT NULL DEFAULT 0,
      birthday TEXT NOT NULL DEFAULT '',
      source TEXT NOT NULL DEFAULT '',
      age INTEGER,
      area TEXT NOT NULL DEFAULT '',
      sex TEXT NOT NULL DEFAULT '',
      memo TEXT NOT NULL DEFAULT '',
      type TEXT NOT NULL DEFAULT '',
      other1 TEXT NOT NULL DEFAULT '',
      other2 TEXT NOT NULL DEFAULT '',
      other3 TEXT NOT NULL DEFAULT '',
      is_lock INTEGER NOT NULL DEFAULT 0,
      locked_by INTEGER,
      created_by INTEGER,
      created_ms INTEGER NOT NULL,
      updated_ms INTEGER NOT NULL,
      last_call_ms INTEGER
    )`,
    `CREATE INDEX customers_newest ON customers(comp_number, cust_id)`,
    // status alone, and status with type (the two lists a screen filters on together)
    `CREATE INDEX customers_status ON customers(comp_number, status, type, cust_id)`,
    `CREATE INDEX customers_type ON customers(comp_number, type, cust_id)`,
    `CREATE INDEX customers_lock ON customers(comp_number, is_lock, cust_id)`,
    `CREATE INDEX customers_name ON customers(comp_number, name, cust_id)`,
    `CREATE INDEX customers_corp ON customers(comp_number, corp_name, cust_id)`,
    `CREATE INDEX customers_created ON customers(comp_number, created_ms, cust_id)`,
    `CREATE INDEX customers_last_call ON customers(comp_number, last_call_ms, cust_id)`,
    `CREATE INDEX customers_birthday ON customers(comp_number, birthday, cust_id)`,
    // an unfiltered getCustomersPage's total would otherwise count a million index entries per call
    `CREATE TABLE customer_counts (comp_number TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID`,
    `CREATE TRIGGER customers_counted AFTER INSERT ON customers BEGIN
       INSERT OR IGNORE INTO customer_counts (comp_number, n) VALUES (NEW.comp_number, 0);
       UPDATE customer_counts SET n = n + 1 WHERE comp_number = NEW.comp_number;
     END`,
    `CREATE TRIGGER customers_uncounted AFTER DELETE ON customers BEGIN
       UPDATE customer_counts SET n = n - 1 WHERE comp_number = OLD.comp_number;
     END`,
    // a phone as given (phone) and as matched (norm: no formatting, country prefix or leading zeros)
    `CREATE TABLE customer_phones (
      cp_id INTEGER PRIMARY KEY,
      cust_id INTEGER NOT NULL REFERENCES customers(cust_id) ON DELETE CASCADE,
      comp_number TEXT NOT NULL,
      seq INTEGER NOT NULL,
      phone TEXT NOT NULL,
      norm TEXT NOT NULL,
      type TEXT NOT NULL DEFAULT '',
      link_man TEXT NOT NULL DEFAULT ''
    )`,
    `CREATE INDEX customer_phones_norm ON customer_phones(comp_number, norm, cust_id)`,
    `CREATE INDEX customer_phones_customer ON customer_phones(cust_id, seq)`,
    `CREATE TABLE customer_sales (
      cs_id INTEGER PRIMARY KEY,
      cust_id INTEGER NOT NULL REFERENCES customers(cust_id) ON DELETE CASCADE,
      comp_number TEXT NOT NULL,
      extension TEXT NOT NULL DEFAULT '',
      cust_type TEXT NOT NULL DEFAULT '',
      status INTEGER NOT NULL,
      phone TEXT NOT NULL DEFAULT '',
      created_ms INTEGER NOT NULL,
      updated_ms INTEGER NOT NULL
    )`,
    `CREATE INDEX customer_sales_customer ON customer_sales(cust_id, cs_id)`
  ),
  // A box that polls getCallList (new firmware) dials through it, as the seed recommends: from its
  // first such poll on, its getMessageList_1125 long poll is handed web messages only
  // (call_list_at). The queue is pruned by MAC: its only index was partial (untaken entries).
  "0018_box_call_list": run(
    `ALTER TABLE box_devices ADD COLUMN call_list_at INTEGER`,
    `CREATE INDEX box_messages_mac ON box_messages(mac, id)`
  ),
  // SMS sent through smsSend (§2.2.3) are SMS records like the clients' (§2.1.7) with their batch
  // (list_id). Verification codes (§2.11.6–2.11.7) are kept as hashes, one pending per number,
  // with their expiry and the wrong guesses so far. Proxy dialling (§2.2.5): what to dial when a
  // source calls a destination, until it expires; numbers matched by their normal form.
  "0021_sms_verification_ivr": run(
    `ALTER TABLE sms_records ADD COLUMN list_id INTEGER`,
    `CREATE INDEX sms_list ON sms_records(comp_number, list_id) WHERE list_id IS NOT NULL`,
    `CREATE TABLE verification_codes (
      comp_number TEXT NOT NULL,
      phone_key TEXT NOT NULL,
      code_hash TEXT NOT NULL,
      sent_at INTEGER NOT NULL,
      expires_at INTEGER NOT NULL,
      attempts INTEGER NOT NULL DEFAULT 0,
      PRIMARY KEY (comp_number, phone_key)
    )`,
    `CREATE TABLE ivr_dialing (
      comp_number TEXT NOT NULL,
      source_key TEXT NOT NULL,
      desc_key TEXT NOT NULL,
      source_phone TEXT NOT NULL,
      desc_phone TEXT NOT NULL,
      dial_phone TEXT NOT NULL,
      expires_at INTEGER NOT NULL,
      set_by TEXT NOT NULL,
      updated_at INTEGER NOT NULL,
      PRIMARY KEY (comp_number, source_key, desc_key)
    )`
  ),
  // Call flows (§2.10.1): what an automatic call plays (a sound under <dataDir>/sound/<enterprise>/),
  // transfers, records and texts. Unique by name per enterprise (config flows are keyed by it);
  // call_flow_seeds marks an enterprise given the example flow, so one deleted stays deleted.
  "0022_call_flows": run(
    `CREATE TABLE call_flows (
      cfl_id INTEGER PRIMARY KEY,
      comp_number TEXT NOT NULL,
      name TEXT NOT NULL,
      sound TEXT NOT NULL DEFAULT '',
      transfer_mode INTEGER NOT NULL,
      transfer_times INTEGER NOT NULL,
      is_record INTEGER NOT NULL,
      send_interval INTEGER NOT NULL,
      sms_status INTEGER NOT NULL,
      sms_times INTEGER NOT NULL,
      sms_content TEXT NOT NULL,
      group_call_times INTEGER NOT NULL,
      origin TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL,
      UNIQUE (comp_number, name)
    )`,
    `CREATE TABLE call_flow_seeds (comp_number TEXT PRIMARY KEY)`
  ),
  // Telephony actions (src/telephony, src/callbacks). A delivery may name its own URL: a callback's
  // status pushes go to the callbackUrl the request gave, through the same queue, retries and
  // dead letters as a target's (the built-in target CALLBACK_TARGET supplies the policy).
  "0023_telephony": run(
    `ALTER TABLE deliveries ADD COLUMN url TEXT`,
    `CREATE TABLE callbacks (
      cbk_id INTEGER PRIMARY KEY,
      comp_number TEXT NOT NULL,
      exte_id INTEGER NOT NULL,
      extension TEXT NOT NULL,
      source_phone TEXT NOT NULL,
      desc_phone TEXT NOT NULL,
      status INTEGER NOT NULL DEFAULT 0,
      created_ms INTEGER NOT NULL,
      begin_ms INTEGER,
      success_ms INTEGER,
      end_ms INTEGER,
      transfer_success_ms INTEGER,
      transfer_end_ms INTEGER,
      times INTEGER NOT NULL DEFAULT 0,
      transfer_times INTEGER NOT NULL DEFAULT 0,
      result_code TEXT NOT NULL DEFAULT '',
      error_code TEXT NOT NULL DEFAULT '',
      wav_file TEXT NOT NULL DEFAULT '',
      type INTEGER NOT NULL DEFAULT 0,
      url TEXT NOT NULL DEFAULT '',
      driver TEXT NOT NULL,
      upstream_answer TEXT,
      cdr_id TEXT,
      seq INTEGER NOT NULL DEFAULT 0
    )`,
    `CREATE INDEX callbacks_created ON callbacks(comp_number, created_ms, cbk_id)`,
    `CREATE INDEX callbacks_extension ON callbacks(comp_number, extension, created_ms)`,
    `CREATE TABLE phone_audits (
      ws_id INTEGER PRIMARY KEY,
      comp_number TEXT NOT NULL,
      exte_id INTEGER NOT NULL,
      extension TEXT NOT NULL,
      login_id TEXT NOT NULL,
      phone TEXT NOT NULL,
      value TEXT NOT NULL,
      type INTEGER NOT NULL,
      is_record INTEGER NOT NULL DEFAULT 0,
      command_no TEXT NOT NULL DEFAULT '',
      connect_id TEXT,
      status INTEGER NOT NULL DEFAULT 0,
      created_ms INTEGER NOT NULL,
      begin_ms INTEGER,
      success_ms INTEGER,
      end_ms INTEGER,
      talk_secs INTEGER NOT NULL DEFAULT 0,
      record_path TEXT NOT NULL DEFAULT '',
      result_key TEXT NOT NULL DEFAULT '',
      sip_round TEXT NOT NULL DEFAULT '',
      show_phone TEXT NOT NULL DEFAULT '',
      driver TEXT NOT NULL,
      upstream_answer TEXT,
      cdr_id TEXT
    )`,
    `CREATE INDEX phone_audits_created ON phone_audits(comp_number, created_ms, ws_id)`
  ),
  // Work orders (§2.12): types with their steps, the people of each step (none listed: every
  // extension of the enterprise), field labels and code trees per field, the work orders and their
  // attachments. A work order's many contract fields (woOtherN, woStepN*, woMoney*) are one JSON
  // object; what GetWorkList filters on has its own column, led by the enterprise and type.
  "0024_workorders": run(
    `CREATE TABLE wo_types (
      wot_id INTEGER PRIMARY KEY,
      comp_number TEXT NOT NULL REFERENCES enterprises(comp_number),
      name TEXT NOT NULL,
      push_url TEXT,
      created_ms INTEGER NOT NULL,
      UNIQUE (comp_number, name)
    )`,
    `CREATE TABLE wo_steps (
      wos_id INTEGER PRIMARY KEY,
      wot_id INTEGER NOT NULL REFERENCES wo_types(wot_id) ON DELETE CASCADE,
      idx INTEGER NOT NULL,
      name TEXT NOT NULL,
      is_end INTEGER NOT NULL DEFAULT 0,
      push_save INTEGER NOT NULL DEFAULT 0,
      push_submit INTEGER NOT NULL DEFAULT 0,
      push_return INTEGER NOT NULL DEFAULT 0,
      UNIQUE (wot_id, idx)
    )`,
    `CREATE TABLE wo_step_people (
      wot_id INTEGER NOT NULL REFERENCES wo_types(wot_id) ON DELETE CASCADE,
      idx INTEGER NOT NULL,
      exte_id INTEGER NOT NULL REFERENCES extensions(exte_id) ON DELETE CASCADE,
      PRIMARY KEY (wot_id, idx, exte_id)
    ) WITHOUT ROWID`,
    `CREATE TABLE wo_fields (
      wot_id INTEGER NOT NULL REFERENCES wo_types(wot_id) ON DELETE CASCADE,
      field TEXT NOT NULL,
      label TEXT NOT NULL,
      kind TEXT NOT NULL DEFAULT 'text',
      PRIMARY KEY (wot_id, field)
    ) WITHOUT ROWID`,
    `CREATE TABLE wo_codes (
      code_id INTEGER PRIMARY KEY,
      wot_id INTEGER NOT NULL REFERENCES wo_types(wot_id) ON DELETE CASCADE,
      field TEXT NOT NULL,
      code_code TEXT NOT NULL,
      code_name TEXT NOT NULL,
      parent_id INTEGER,
      position INTEGER NOT NULL
    )`,
    `CREATE INDEX wo_codes_field ON wo_codes(wot_id, field, position)`,
    `CREATE TABLE work_orders (
      wo_id INTEGER PRIMARY KEY,
      comp_number TEXT NOT NULL,
      wot_id INTEGER NOT NULL REFERENCES wo_types(wot_id),
      cust_id INTEGER,
      code TEXT NOT NULL,
      phone TEXT NOT NULL DEFAULT '',
      phone_norm TEXT NOT NULL DEFAULT '',
      step INTEGER NOT NULL,
      question TEXT NOT NULL DEFAULT '',
      create_exte_id INTEGER,
      create_exte_name TEXT NOT NULL DEFAULT '',
      assignee INTEGER,
      fields TEXT NOT NULL,
      created_ms INTEGER NOT NULL,
      updated_ms INTEGER NOT NULL,
      end_ms INTEGER
    )`,
    `CREATE INDEX work_orders_list ON work_orders(comp_number, wot_id, created_ms, wo_id)`,
    // GetWorkList by step (stepindex): counted and paged within the step's own range
    `CREATE INDEX work_orders_step ON work_orders(comp_number, wot_id, step, created_ms, wo_id)`,
    `CREATE INDEX work_orders_phone ON work_orders(comp_number, phone_norm, wo_id)`,
    `CREATE INDEX work_orders_customer ON work_orders(comp_number, cust_id, wo_id) WHERE cust_id IS NOT NULL`,
    `CREATE TABLE wo_attachments (
      wa_id INTEGER PRIMARY KEY,
      wo_id INTEGER NOT NULL REFERENCES work_orders(wo_id) ON DELETE CASCADE,
      comp_number TEXT NOT NULL,
      name TEXT NOT NULL,
      rel_path TEXT NOT NULL UNIQUE,
      size INTEGER NOT NULL,
      md5 TEXT NOT NULL,
      uploaded_by INTEGER,
      created_ms INTEGER NOT NULL
    )`,
    `CREATE INDEX wo_attachments_order ON wo_attachments(wo_id, wa_id)`
  ),
  // the blacklist is looked up by the number's one normal form (lastPhoneOf), whichever way an
  // entry was written (+86…, 0086…, spaces); and a verification call's pushes are numbered
  "0025_telephony_review": Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    yield* sql.unsafe(`ALTER TABLE blacklist ADD COLUMN phone_key TEXT NOT NULL DEFAULT ''`)
    const rows = yield* sql<{ comp_number: string; phone: string }>`SELECT comp_number, phone FROM blacklist`
    for (const r of rows) yield* sql`UPDATE blacklist SET phone_key = ${lastPhoneOf(r.phone)} WHERE comp_number = ${r.comp_number} AND phone = ${r.phone}`
    yield* sql.unsafe(`CREATE INDEX blacklist_key ON blacklist(comp_number, phone_key)`)
    yield* sql.unsafe(`ALTER TABLE phone_audits ADD COLUMN seq INTEGER NOT NULL DEFAULT 0`)
  }),
  // Outbound call tasks (src/tasks, §2.10.2–2.10.3, §2.1.8): a task and its numbers. A number's
  // status is the contract's ctdStatus; `claimed_by` says which agent getTaskDetailPhone handed
  // a manual number to. The agents a task is allotted to are rows, so the next number for an
  // agent is found by index.
  "0026_tasks": run(
    `CREATE TABLE call_tasks (
      ctk_id INTEGER PRIMARY KEY,
      comp_number TEXT NOT NULL,
      name TEXT NOT NULL,
      add_type INTEGER NOT NULL,
      cfl_id INTEGER,
      cfl_name TEXT NOT NULL DEFAULT '',
      send_ms INTEGER NOT NULL,
      repeat_send INTEGER NOT NULL DEFAULT 0,
      send_interval INTEGER NOT NULL DEFAULT 0,
      attri_exte TEXT NOT NULL,
      wot_name TEXT NOT NULL DEFAULT '',
      creator_exte_id INTEGER NOT NULL,
      driver TEXT NOT NULL,
      total INTEGER NOT NULL,
      next_dial_ms INTEGER NOT NULL DEFAULT 0,
      created_ms INTEGER NOT NULL,
      finished_ms INTEGER
    )`,
    `CREATE INDEX call_tasks_list ON call_tasks(comp_number, created_ms)`,
    `CREATE INDEX call_tasks_due ON call_tasks(finished_ms, add_type, send_ms)`,
    `CREATE TABLE call_task_agents (
      extension TEXT NOT NULL,
      ctk_id INTEGER NOT NULL REFERENCES call_tasks(ctk_id) ON DELETE CASCADE,
      PRIMARY KEY (extension, ctk_id)
    ) WITHOUT ROWID`,
    `CREATE TABLE call_task_numbers (
      ctd_id INTEGER PRIMARY KEY,
      ctk_id INTEGER NOT NULL REFERENCES call_tasks(ctk_id) ON DELETE CASCADE,
      seq INTEGER NOT NULL,
      phone TEXT NOT NULL,
      key TEXT NOT NULL DEFAULT '',
      memo TEXT NOT NULL DEFAULT '',
      wo_other TEXT NOT NULL DEFAULT '{}',
      status INTEGER NOT NULL DEFAULT 0,
      claimed_by TEXT,
      call_ms INTEGER,
      begin_ms INTEGER,
      success_ms INTEGER,
      end_ms INTEGER,
      transfer_success_ms INTEGER,
      transfer_end_ms INTEGER,
      talk_secs INTEGER NOT NULL DEFAULT 0,
      transfer_secs INTEGER NOT NULL DEFAULT 0,
      result_code TEXT NOT NULL DEFAULT '',
      wav_file TEXT NOT NULL DEFAULT '',
      cdr_id TEXT,
      re_num INTEGER NOT NULL DEFAULT 0
    )`,
    // the next number of a task: untouched ones first, a repeat round after them, in the order given
    `CREATE INDEX call_task_numbers_next ON call_task_numbers(ctk_id, status, re_num, seq)`,
    // is anything of an automatic task still going? asked at every call's end
    `CREATE INDEX call_task_numbers_open ON call_task_numbers(ctk_id) WHERE end_ms IS NULL`
  ),
  // A call placed through the box driver (a callback, verification or task call queued for
  // getCallList) until its end is handed to its requester: the box reports it only by uploading
  // the call record, matched here by box, channel and normal form of the number (src/box/BoxQueue.ts).
  // `due_ms`: when it ends unreported (the dial's expiry until handed out, then the report window);
  // `ended`: the end state (JSON) once known, delivered to the requester and then deleted. It holds
  // only dials not yet delivered (16 waiting a channel at most, each gone minutes after hand-out):
  // read whole, it needs no index of its own.
  // upstream_id: the platform's own id of a request relayed to it, to link its pushes back
  // (src/callbacks/routes.ts) and to relay what is asked of it later (a task's details).
  "0027_box_call_reports_upstream_ids": run(
    `CREATE TABLE box_dial_calls (
      msg_id INTEGER PRIMARY KEY,
      mac TEXT NOT NULL,
      channel INTEGER NOT NULL,
      phone_key TEXT NOT NULL,
      kind TEXT NOT NULL,
      req_id INTEGER NOT NULL,
      queued_ms INTEGER NOT NULL,
      taken_ms INTEGER,
      due_ms INTEGER NOT NULL,
      callid TEXT,
      ended TEXT
    )`,
    `ALTER TABLE callbacks ADD COLUMN upstream_id TEXT`,
    // the secret in the callbackUrl the platform was given: its pushes prove they are for this row
    `ALTER TABLE callbacks ADD COLUMN upstream_key TEXT`,
    `CREATE INDEX callbacks_upstream ON callbacks(upstream_id) WHERE upstream_id IS NOT NULL`,
    `ALTER TABLE call_tasks ADD COLUMN upstream_id TEXT`
  ),
  // findDialrecord's total for a talk-time, direction or time filter with nothing narrower (no
  // extension, phone or id) counted every matching index entry: ~70 ms at 1M calls, ten times
  // that at 10M. Counted here instead, per enterprise × direction × talk time and per enterprise
  // × hour × direction (a few thousand rows, a few dozen thousand a year, however many calls),
  // kept by triggers so every writer of cdrs (pushes, box, clients, the simulator, a row edited
  // by hand) keeps them in the call's own transaction. A call without a direction counts under
  // 0, which no filter asks for (cdrPeer is 1–5). The hour is floor(start_ms / 3,600,000).
  "0028_call_counts": run(
    `CREATE TABLE cdr_talk_counts (
      comp_number TEXT NOT NULL,
      peer INTEGER NOT NULL,
      talk_secs INTEGER NOT NULL,
      n INTEGER NOT NULL,
      PRIMARY KEY (comp_number, peer, talk_secs)
    ) WITHOUT ROWID`,
    `CREATE TABLE cdr_hour_counts (
      comp_number TEXT NOT NULL,
      hour INTEGER NOT NULL,
      peer INTEGER NOT NULL,
      n INTEGER NOT NULL,
      PRIMARY KEY (comp_number, hour, peer)
    ) WITHOUT ROWID`,
    // one trigger for the three counts (0003's per-enterprise one too, now one upsert instead of
    // two statements): the write pays one trigger and three statements where it paid one and two
    `DROP TRIGGER cdrs_counted`,
    `DROP TRIGGER cdrs_uncounted`,
    `CREATE TRIGGER cdrs_summed AFTER INSERT ON cdrs BEGIN
       INSERT INTO cdr_counts (comp_number, n) VALUES (NEW.comp_number, 1) ON CONFLICT (comp_number) DO UPDATE SET n = n + 1;
       ${COUNT_TALK("NEW", "+")};
       ${COUNT_HOUR("NEW", "+")};
     END`,
    `CREATE TRIGGER cdrs_unsummed AFTER DELETE ON cdrs BEGIN
       UPDATE cdr_counts SET n = n - 1 WHERE comp_number = OLD.comp_number;
       ${COUNT_TALK("OLD", "-")};
       ${COUNT_HOUR("OLD", "-")};
     END`,
    // a push's update rewrites every column: only a changed key moves the call between counts
    `CREATE TRIGGER cdrs_talk_resummed AFTER UPDATE OF comp_number, peer, talk_secs ON cdrs
       WHEN OLD.comp_number IS NOT NEW.comp_number OR OLD.peer IS NOT NEW.peer OR OLD.talk_secs IS NOT NEW.talk_secs BEGIN
       ${COUNT_TALK("OLD", "-")};
       ${COUNT_TALK("NEW", "+")};
     END`,
    `CREATE TRIGGER cdrs_hour_resummed AFTER UPDATE OF comp_number, peer, start_ms ON cdrs
       WHEN OLD.comp_number IS NOT NEW.comp_number OR OLD.peer IS NOT NEW.peer OR ${HOUR_OF("OLD")} IS NOT ${HOUR_OF("NEW")} BEGIN
       ${COUNT_HOUR("OLD", "-")};
       ${COUNT_HOUR("NEW", "+")};
     END`,
    `INSERT INTO cdr_talk_counts (comp_number, peer, talk_secs, n)
       SELECT comp_number, coalesce(peer, 0), talk_secs, count(*) FROM cdrs GROUP BY 1, 2, 3`,
    `INSERT INTO cdr_hour_counts (comp_number, hour, peer, n)
       SELECT comp_number, ${HOUR_OF("cdrs")}, coalesce(peer, 0), count(*) FROM cdrs GROUP BY 1, 2, 3`
  ),
  // a box-driver dial is its enterprise's: an upload (by the box's owner at the time) ends only
  // that enterprise's dials. Dials from before have none and match by box alone, as they did.
  // behind: handed out while an earlier dial on its channel was still open, so its report window
  // (due_ms) opens only once that one has ended (src/box/BoxQueue.ts).
  "0029_box_dials_enterprise_order": run(
    `ALTER TABLE box_dial_calls ADD COLUMN comp_number TEXT`,
    `ALTER TABLE box_dial_calls ADD COLUMN behind INTEGER NOT NULL DEFAULT 0`
  ),
  // findDialrecord's total for talk time and a time range together still walked the range's index
  // entries testing each talk time (a month at 1M calls: ~42k entries, 7.6 ms; 136 ms at 10M). 0028's
  // hour counts get a talk-time bucket (src/records/TalkBuckets.ts: each bound its own bucket, so
  // a filter on a bound sums whole buckets): a month is ~8k rows at 1M, ~20k at 10M. Replaced, not
  // added: a call is still one row of hour counts, so an insert writes what it wrote; an update
  // that moves the talk time to another bucket now moves that row too.
  "0030_talk_hour_counts": run(
    `CREATE TABLE cdr_hour_talk_counts (
      comp_number TEXT NOT NULL,
      hour INTEGER NOT NULL,
      peer INTEGER NOT NULL,
      talk_bucket INTEGER NOT NULL,
      n INTEGER NOT NULL,
      PRIMARY KEY (comp_number, hour, peer, talk_bucket)
    ) WITHOUT ROWID`,
    `DROP TRIGGER cdrs_summed`,
    `DROP TRIGGER cdrs_unsummed`,
    `DROP TRIGGER cdrs_hour_resummed`,
    `CREATE TRIGGER cdrs_summed AFTER INSERT ON cdrs BEGIN
       INSERT INTO cdr_counts (comp_number, n) VALUES (NEW.comp_number, 1) ON CONFLICT (comp_number) DO UPDATE SET n = n + 1;
       ${COUNT_TALK("NEW", "+")};
       ${COUNT_HOUR_TALK("NEW", "+")};
     END`,
    `CREATE TRIGGER cdrs_unsummed AFTER DELETE ON cdrs BEGIN
       UPDATE cdr_counts SET n = n - 1 WHERE comp_number = OLD.comp_number;
       ${COUNT_TALK("OLD", "-")};
       ${COUNT_HOUR_TALK("OLD", "-")};
     END`,
    `CREATE TRIGGER cdrs_hour_resummed AFTER UPDATE OF comp_number, peer, start_ms, talk_secs ON cdrs
       WHEN OLD.comp_number IS NOT NEW.comp_number OR OLD.peer IS NOT NEW.peer OR ${HOUR_OF("OLD")} IS NOT ${HOUR_OF("NEW")}
         OR ${talkBucketSql("OLD.talk_secs")} IS NOT ${talkBucketSql("NEW.talk_secs")} BEGIN
       ${COUNT_HOUR_TALK("OLD", "-")};
       ${COUNT_HOUR_TALK("NEW", "+")};
     END`,
    `INSERT INTO cdr_hour_talk_counts (comp_number, hour, peer, talk_bucket, n)
       SELECT comp_number, ${HOUR_OF("cdrs")}, coalesce(peer, 0), ${talkBucketSql("talk_secs")}, count(*) FROM cdrs GROUP BY 1, 2, 3, 4`,
    `DROP TABLE cdr_hour_counts`
  ),
  // After review of 0030, the counts kept exact for what a hand edit can do: an UPDATE of a call's
  // enterprise moved it in the talk and hour counts but not in cdr_counts (unfiltered totals were
  // off for both enterprises), and a fractional start before 1970 fell in the next hour
  // (HOUR_FLOOR). The triggers are made again and every count is recounted from the calls, so a
  // count that drifted before (an INSERT OR REPLACE of a call, which fires no delete trigger until
  // Sqlite.ts turned recursive_triggers on) is right again.
  "0031_counts_exact": run(
    `DROP TRIGGER cdrs_summed`,
    `DROP TRIGGER cdrs_unsummed`,
    `DROP TRIGGER cdrs_talk_resummed`,
    `DROP TRIGGER cdrs_hour_resummed`,
    `CREATE TRIGGER cdrs_summed AFTER INSERT ON cdrs BEGIN
       ${COUNT_ALL("NEW", "+")};
       ${COUNT_TALK("NEW", "+")};
       ${COUNT_HOUR_TALK("NEW", "+", HOUR_FLOOR)};
     END`,
    `CREATE TRIGGER cdrs_unsummed AFTER DELETE ON cdrs BEGIN
       ${COUNT_ALL("OLD", "-")};
       ${COUNT_TALK("OLD", "-")};
       ${COUNT_HOUR_TALK("OLD", "-", HOUR_FLOOR)};
     END`,
    `CREATE TRIGGER cdrs_enterprise_moved AFTER UPDATE OF comp_number ON cdrs WHEN OLD.comp_number IS NOT NEW.comp_number BEGIN
       ${COUNT_ALL("OLD", "-")};
       ${COUNT_ALL("NEW", "+")};
     END`,
    `CREATE TRIGGER cdrs_talk_resummed AFTER UPDATE OF comp_number, peer, talk_secs ON cdrs
       WHEN OLD.comp_number IS NOT NEW.comp_number OR OLD.peer IS NOT NEW.peer OR OLD.talk_secs IS NOT NEW.talk_secs BEGIN
       ${COUNT_TALK("OLD", "-")};
       ${COUNT_TALK("NEW", "+")};
     END`,
    `CREATE TRIGGER cdrs_hour_resummed AFTER UPDATE OF comp_number, peer, start_ms, talk_secs ON cdrs
       WHEN OLD.comp_number IS NOT NEW.comp_number OR OLD.peer IS NOT NEW.peer OR ${HOUR_FLOOR("OLD")} IS NOT ${HOUR_FLOOR("NEW")}
         OR ${talkBucketSql("OLD.talk_secs")} IS NOT ${talkBucketSql("NEW.talk_secs")} BEGIN
       ${COUNT_HOUR_TALK("OLD", "-", HOUR_FLOOR)};
       ${COUNT_HOUR_TALK("NEW", "+", HOUR_FLOOR)};
     END`,
    `DELETE FROM cdr_counts`,
    `INSERT INTO cdr_counts (comp_number, n) SELECT comp_number, count(*) FROM cdrs GROUP BY 1`,
    `DELETE FROM cdr_talk_counts`,
    `INSERT INTO cdr_talk_counts (comp_number, peer, talk_secs, n) SELECT comp_number, coalesce(peer, 0), talk_secs, count(*) FROM cdrs GROUP BY 1, 2, 3`,
    `DELETE FROM cdr_hour_talk_counts`,
    `INSERT INTO cdr_hour_talk_counts (comp_number, hour, peer, talk_bucket, n)
       SELECT comp_number, ${HOUR_FLOOR("cdrs")}, coalesce(peer, 0), ${talkBucketSql("talk_secs")}, count(*) FROM cdrs GROUP BY 1, 2, 3, 4`
  )
}
