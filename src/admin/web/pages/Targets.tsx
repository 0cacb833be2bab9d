/**
 * Targets: create, edit, enable / disable, delete, send a sample event (when the bridge has
 * the endpoint), and each one's circuit and dead letters.
 */
import { useState } from "preact/hooks"
import { api } from "../api"
import { ConfirmDialog, Field, messageOf, type Notice, NoticeBar, type Question, Table, time, usePoll } from "../components"
import { t } from "../i18n"
import type { Page, DeliveryItem, Target } from "../types"

interface Draft {
  readonly name: string
  readonly url: string
  readonly events: string
  readonly format: Target["format"]
  readonly enabled: boolean
  readonly timeoutMs: string
  readonly schedule: string
  readonly concurrency: string
  readonly secret: string
  readonly headers: string
  readonly transform: string
}

const EMPTY: Draft = { name: "", url: "", events: "*", format: "json", enabled: true, timeoutMs: "10000", schedule: "", concurrency: "4", secret: "", headers: "{}", transform: "" }

const draftOf = (tg: Target): Draft => ({
  name: tg.name,
  url: tg.url,
  events: tg.events.join(", "),
  format: tg.format,
  enabled: tg.enabled,
  timeoutMs: String(tg.timeoutMs),
  schedule: tg.retry.scheduleMs.join(", "),
  concurrency: String(tg.concurrency),
  secret: tg.secret ?? "",
  headers: JSON.stringify(tg.headers),
  transform: tg.transform ?? ""
})

const list = (s: string) =>
  s
    .split(",")
    .map((x) => x.trim())
    .filter((x) => x !== "")

/** The body to send: a new target whole; an edit only what differs, null clearing what was emptied. */
const bodyOf = (d: Draft, before: Target | null): Record<string, unknown> => {
  const headers = d.headers.trim() === "" ? {} : (JSON.parse(d.headers) as unknown)
  const full: Record<string, unknown> = {
    name: d.name,
    url: d.url,
    events: list(d.events),
    format: d.format,
    enabled: d.enabled,
    timeoutMs: Number(d.timeoutMs),
    concurrency: Number(d.concurrency),
    headers,
    ...(d.schedule.trim() === "" ? {} : { retry: { scheduleMs: list(d.schedule).map(Number) } }),
    ...(d.secret === "" ? {} : { secret: d.secret }),
    ...(d.transform === "" ? {} : { transform: d.transform })
  }
  if (before === null) return full
  const was = draftOf(before)
  const changed: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(full)) if (JSON.stringify(v) !== JSON.stringify(bodyOf(was, null)[k])) changed[k] = v
  if (d.secret === "" && before.secret !== undefined) changed.secret = null
  if (d.transform === "" && before.transform !== undefined) changed.transform = null
  return changed
}

const TargetForm = ({ initial, editing, onSaved, onCancel }: { readonly initial: Target | null; readonly editing: boolean; readonly onSaved: (name: string) => void; readonly onCancel: () => void }) => {
  const [d, setD] = useState<Draft>(initial ? draftOf(initial) : EMPTY)
  const [error, setError] = useState<string | null>(null)
  const text = (k: keyof Draft) => (e: Event) => setD({ ...d, [k]: (e.currentTarget as HTMLInputElement).value })
  const save = async (e: Event) => {
    e.preventDefault()
    let body: Record<string, unknown>
    try {
      body = bodyOf(d, editing ? initial : null)
    } catch {
      return setError(t("target.badHeaders"))
    }
    try {
      if (editing) await api("PATCH", `/targets/${encodeURIComponent(d.name)}`, body)
      else await api("POST", "/targets", body)
      onSaved(d.name)
    } catch (err) {
      setError(messageOf(err))
    }
  }
  return (
    <form class="card form" onSubmit={save} aria-label={editing ? t("target.edit", { name: d.name }) : t("target.new")}>
      <h3>{editing ? t("target.edit", { name: d.name }) : t("target.new")}</h3>
      {error ? (
        <p class="notice error" role="alert">
          {error}
        </p>
      ) : null}
      <div class="grid">
        <Field label={t("target.name")}>
          <input name="name" value={d.name} onInput={text("name")} disabled={editing} required pattern="[A-Za-z0-9_.\-]{1,64}" />
        </Field>
        <Field label={t("target.url")} wide>
          <input name="url" type="url" value={d.url} onInput={text("url")} required placeholder="https://crm.example/hooks/voip" />
        </Field>
        <Field label={t("target.events")}>
          <input name="events" value={d.events} onInput={text("events")} placeholder="call.*, workorder.*" />
        </Field>
        <Field label={t("target.format")}>
          <select name="format" value={d.format} onChange={(e) => setD({ ...d, format: (e.currentTarget as HTMLSelectElement).value as Target["format"] })}>
            <option value="json">json</option>
            <option value="800ing">800ing</option>
            <option value="form">form</option>
          </select>
        </Field>
        <Field label={t("target.timeout")}>
          <input name="timeoutMs" type="number" min={100} max={300000} value={d.timeoutMs} onInput={text("timeoutMs")} />
        </Field>
        <Field label={t("target.concurrency")}>
          <input name="concurrency" type="number" min={1} max={256} value={d.concurrency} onInput={text("concurrency")} />
        </Field>
        <Field label={t("target.schedule")} wide>
          <input name="schedule" value={d.schedule} onInput={text("schedule")} placeholder={t("target.scheduleHint")} />
        </Field>
        <Field label={t("target.secret")} wide>
          <input name="secret" value={d.secret} onInput={text("secret")} placeholder="whsec_…" autoComplete="off" />
        </Field>
        <Field label={t("target.headers")} wide>
          <input name="headers" value={d.headers} onInput={text("headers")} placeholder='{"X-Api-Key": "…"}' />
        </Field>
        <Field label={t("target.transform")} wide>
          <textarea name="transform" rows={3} value={d.transform} onInput={text("transform")} placeholder="JSONata" />
        </Field>
        <label class="check">
          <input name="enabled" type="checkbox" checked={d.enabled} onChange={(e) => setD({ ...d, enabled: (e.currentTarget as HTMLInputElement).checked })} />
          {t("target.enabled")}
        </label>
      </div>
      <div class="actions">
        <button type="button" onClick={onCancel}>
          {t("cancel")}
        </button>
        <button type="submit" class="primary">
          {t("save")}
        </button>
      </div>
    </form>
  )
}

interface Counts {
  pending: number
  held: number
  dead: number
  attempts: number
  answered: number
}

const rate = (c: Counts | undefined) => (c && c.attempts > 0 ? `${Math.round((100 * c.answered) / c.attempts)}%` : "—")

const Circuit = ({ tg }: { readonly tg: Target }) => {
  const c = tg.circuit
  if (!c) return <span class="hint">—</span>
  // half-open, or whatever the bridge calls a probe: one request is let through
  const state = c.state === "open" || c.state === "closed" ? c.state : "probing"
  const label = state === "open" && c.openUntil ? t("circuit.openUntil", { at: time(c.openUntil) }) : t(`circuit.${state}`)
  return (
    <span class={`badge circuit-${state}`}>
      {label}
      {c.failures ? ` · ${t("circuit.failures", { n: c.failures })}` : ""}
    </span>
  )
}

/** whether this bridge serves POST /admin/api/targets/{name}/test (read from its OpenAPI document) */
const useTestSend = () => {
  const [available, setAvailable] = useState(false)
  usePoll(
    async () => {
      const doc = (await (await fetch("/openapi.json")).json()) as { paths?: Record<string, unknown> }
      setAvailable(doc.paths?.["/admin/api/targets/{name}/test"] !== undefined)
    },
    3_600_000,
    [],
    () => setAvailable(false)
  )
  return available
}

export const Targets = () => {
  const [targets, setTargets] = useState<ReadonlyArray<Target>>([])
  const [{ counts, more }, setCounts] = useState<{ readonly counts: Readonly<Record<string, Counts>>; readonly more: boolean }>({ counts: {}, more: false })
  const [editing, setEditing] = useState<Target | "new" | null>(null)
  const [notice, setNotice] = useState<Notice>(null)
  const [question, setQuestion] = useState<Question | null>(null)
  const testSend = useTestSend()

  // the API has no counts: the latest 1000 waiting and 1000 dead are counted here ("1000+" past that)
  const load = async () => {
    setTargets((await api<{ items: ReadonlyArray<Target> }>("GET", "/targets")).items)
    const [pending, dead, latest] = await Promise.all([
      api<Page<DeliveryItem>>("GET", "/deliveries?status=pending&limit=1000"),
      api<Page<DeliveryItem>>("GET", "/dead-letters?limit=1000"),
      api<Page<DeliveryItem>>("GET", "/deliveries?limit=1000")
    ])
    const next: Record<string, Counts> = {}
    const of = (target: string) => (next[target] ??= { pending: 0, held: 0, dead: 0, attempts: 0, answered: 0 })
    for (const d of pending.items) of(d.target)[d.held ? "held" : "pending"]++
    for (const d of dead.items) of(d.target).dead++
    // the success rate: of the attempts of the latest deliveries, those answered 2xx
    for (const d of latest.items) {
      const c = of(d.target)
      c.attempts += d.attempts.length
      c.answered += d.attempts.filter((a) => a.status !== null && a.status >= 200 && a.status < 300).length
    }
    setCounts({ counts: next, more: pending.next !== undefined || dead.next !== undefined })
  }
  usePoll(load, 5000, [], (e) => setNotice({ kind: "error", text: messageOf(e) }))

  const act = async (run: () => Promise<unknown>, done: string) => {
    try {
      await run()
      setNotice({ kind: "ok", text: done })
      await load()
    } catch (e) {
      setNotice({ kind: "error", text: messageOf(e) })
    }
  }
  const path = (tg: Target) => `/targets/${encodeURIComponent(tg.name)}`
  const remove = (tg: Target) =>
    setQuestion({
      text: t("target.deleteConfirm", { name: tg.name }),
      confirm: t("delete"),
      danger: true,
      run: () => act(() => api("DELETE", path(tg)), t("target.deleted", { name: tg.name }))
    })

  return (
    <section>
      <h2>{t("targets.title")}</h2>
      <NoticeBar notice={notice} onClose={() => setNotice(null)} />
      {editing === null ? (
        <div class="toolbar">
          <button type="button" class="primary" onClick={() => setEditing("new")}>
            {t("target.new")}
          </button>
        </div>
      ) : (
        <TargetForm
          key={editing === "new" ? "" : editing.name}
          initial={editing === "new" ? null : editing}
          editing={editing !== "new"}
          onCancel={() => setEditing(null)}
          onSaved={(name) => {
            setEditing(null)
            void act(async () => undefined, t("target.saved", { name }))
          }}
        />
      )}
      <Table label={t("targets.title")}>
        <thead>
          <tr>
            <th>{t("target.name")}</th>
            <th>{t("target.url")}</th>
            <th>{t("target.events")}</th>
            <th>{t("target.state")}</th>
            <th>{t("target.circuit")}</th>
            <th>{t("target.queue")}</th>
            <th title={t("target.successHint")}>{t("target.success")}</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {targets.map((tg) => (
            <tr key={tg.name} data-target={tg.name}>
              <td>
                <strong>{tg.name}</strong>
                <div class="hint">{tg.format}</div>
                {tg.origin === "config" ? (
                  <span class="badge" title={t("target.fromConfigHint")}>
                    {t("target.fromConfig")}
                  </span>
                ) : null}
              </td>
              <td class="excerpt">
                <code>{tg.url}</code>
              </td>
              <td>{tg.events.join(", ")}</td>
              <td>
                <span class={`badge ${tg.enabled ? "delivered" : "dead"}`}>{tg.enabled ? t("target.on") : t("target.off")}</span>
              </td>
              <td>
                <Circuit tg={tg} />
              </td>
              <td class="nowrap">
                {t("target.counts", { pending: counts[tg.name]?.pending ?? 0, held: counts[tg.name]?.held ?? 0 })}
                {" · "}
                <a href="#/dead-letters">{t("target.deadCount", { n: counts[tg.name]?.dead ?? 0 })}</a>
                {more ? "+" : ""}
              </td>
              <td>{rate(counts[tg.name])}</td>
              <td>
                <div class="row-actions">
                  {tg.origin === "config" ? null : (
                    <button type="button" class="small" onClick={() => setEditing(tg)}>
                      {t("edit")}
                    </button>
                  )}
                  <button
                    type="button"
                    class="small"
                    onClick={() => act(() => api("PATCH", path(tg), { enabled: !tg.enabled }), tg.enabled ? t("target.disabled", { name: tg.name }) : t("target.enabledDone", { name: tg.name }))}
                  >
                    {tg.enabled ? t("target.disable") : t("target.enable")}
                  </button>
                  {testSend ? (
                    <button type="button" class="small" onClick={() => act(() => api("POST", `${path(tg)}/test`, {}), t("target.tested", { name: tg.name }))}>
                      {t("target.test")}
                    </button>
                  ) : null}
                  {tg.origin === "config" ? null : (
                    <button type="button" class="small danger" onClick={() => remove(tg)}>
                      {t("delete")}
                    </button>
                  )}
                </div>
              </td>
            </tr>
          ))}
        </tbody>
      </Table>
      {targets.length === 0 ? <p class="empty">{t("targets.none")}</p> : null}
      <ConfirmDialog question={question} onDone={() => setQuestion(null)} />
    </section>
  )
}
