/**
 * Events, newest first, with new ones added every 2 s. The API filters by type and start time;
 * enterprise, end time and the free text (phone, cdrId, anything in the data) filter the loaded
 * events here in the browser — the page says so.
 */
import { useState } from "preact/hooks"
import { api, query } from "../api"
import { ConfirmDialog, Field, Json, messageOf, type Notice, NoticeBar, type Question, StatusBadge, Table, time, usePoll } from "../components"
import { t } from "../i18n"
import type { DeliveryItem, EventItem, Page, Target } from "../types"
import { Attempts } from "./Deliveries"

const PAGE = 100
const POLL_MS = 2000

interface Filters {
  readonly type: string
  readonly since: string
  readonly until: string
  readonly enterprise: string
  readonly text: string
}
const NO_FILTERS: Filters = { type: "", since: "", until: "", enterprise: "", text: "" }

/** a datetime-local value as the API's ISO time */
export const iso = (local: string) => (local === "" ? undefined : new Date(local).toISOString())

const summary = (data: unknown) => {
  const text = JSON.stringify(data) ?? ""
  return text.length > 140 ? `${text.slice(0, 140)}…` : text
}

/**
 * The request as it arrived, as an operator reads one: the request line, its content type and
 * its body — a form body one field a line, decoded (the stored text keeps it encoded).
 */
const rawView = (raw: string) => {
  let request: { method?: unknown; query?: unknown; contentType?: unknown; body?: unknown }
  try {
    request = JSON.parse(raw) as typeof request
  } catch {
    return raw
  }
  if (typeof request !== "object" || request === null || typeof request.method !== "string") return raw
  const query = typeof request.query === "string" && request.query !== "" ? `?${request.query}` : ""
  const type = typeof request.contentType === "string" ? request.contentType : ""
  const body = typeof request.body === "string" ? request.body : request.body === undefined ? "" : JSON.stringify(request.body)
  const form = type.startsWith("application/x-www-form-urlencoded") ? [...new URLSearchParams(body)].map(([k, v]) => `${k} = ${v}`).join("\n") : undefined
  return [`${request.method} ${query}`.trim(), type === "" ? "" : `Content-Type: ${type}`, "", form ?? body].filter((line, i) => i > 1 || line !== "").join("\n")
}

const shown = (f: Filters) => (e: EventItem) => {
  if (f.enterprise !== "" && !(e.enterprise ?? "").includes(f.enterprise)) return false
  if (f.until !== "" && Date.parse(e.occurredAt) > Date.parse(f.until)) return false
  if (f.text !== "" && !(JSON.stringify(e.data) ?? "").includes(f.text) && !(e.raw ?? "").includes(f.text)) return false
  return true
}

export const Events = () => {
  const [form, setForm] = useState<Filters>(NO_FILTERS)
  const [applied, setApplied] = useState<Filters>(NO_FILTERS)
  const [items, setItems] = useState<ReadonlyArray<EventItem>>([])
  const [next, setNext] = useState<number | undefined>(undefined)
  const [fresh, setFresh] = useState<ReadonlySet<number>>(new Set())
  const [notice, setNotice] = useState<Notice>(null)
  const serverQuery = (before?: number) => query({ type: applied.type, since: iso(applied.since), limit: PAGE, before })

  // the first page on a filter change, then only what is newer than the newest shown
  usePoll(
    async () => {
      const page = await api<Page<EventItem>>("GET", `/events${serverQuery()}`)
      if (items.length === 0) {
        setItems(page.items)
        setNext(page.next)
        return
      }
      const added = page.items.filter((e) => e.id > items[0]!.id)
      if (added.length === 0) return
      setFresh(new Set(added.map((e) => e.id)))
      // against the latest list: a "load more" may have landed meanwhile
      setItems((prev) => [...added.filter((e) => e.id > (prev[0]?.id ?? 0)), ...prev])
    },
    POLL_MS,
    [applied.type, applied.since],
    (e) => setNotice({ kind: "error", text: messageOf(e) })
  )

  const apply = (e: Event) => {
    e.preventDefault()
    const serverSide = form.type !== applied.type || form.since !== applied.since
    if (serverSide) {
      setItems([])
      setNext(undefined)
    }
    setApplied(form)
  }
  const more = async () => {
    try {
      const page = await api<Page<EventItem>>("GET", `/events${serverQuery(next)}`)
      setItems((prev) => [...prev, ...page.items])
      setNext(page.next)
    } catch (e) {
      setNotice({ kind: "error", text: messageOf(e) })
    }
  }
  const set = (k: keyof Filters) => (e: Event) => setForm({ ...form, [k]: (e.currentTarget as HTMLInputElement).value })
  const visible = items.filter(shown(applied))

  return (
    <section>
      <h2>{t("events.title")}</h2>
      <NoticeBar notice={notice} onClose={() => setNotice(null)} />
      <form class="filters" onSubmit={apply}>
        <Field label={t("filter.type")}>
          <input name="type" value={form.type} onInput={set("type")} placeholder="call.*" />
        </Field>
        <Field label={t("filter.since")}>
          <input name="since" type="datetime-local" value={form.since} onInput={set("since")} />
        </Field>
        <Field label={t("filter.until")}>
          <input name="until" type="datetime-local" value={form.until} onInput={set("until")} />
        </Field>
        <Field label={t("filter.enterprise")}>
          <input name="enterprise" value={form.enterprise} onInput={set("enterprise")} inputMode="numeric" />
        </Field>
        <Field label={t("filter.text")}>
          <input name="text" value={form.text} onInput={set("text")} placeholder={t("filter.textHint")} />
        </Field>
        <div class="actions">
          <button type="submit" class="primary">
            {t("filter.apply")}
          </button>
        </div>
      </form>
      <p class="hint">{t("events.clientSide")}</p>
      <p class="live" aria-live="polite">
        {t("events.live", { n: visible.length })}
      </p>
      <Table label={t("events.title")}>
        <thead>
          <tr>
            <th>{t("col.id")}</th>
            <th>{t("col.time")}</th>
            <th>{t("col.type")}</th>
            <th>{t("col.enterprise")}</th>
            <th>{t("col.source")}</th>
            <th>{t("col.data")}</th>
          </tr>
        </thead>
        <tbody>
          {visible.map((e) => (
            <tr key={e.id} class={fresh.has(e.id) ? "fresh" : undefined} data-event={e.id}>
              <td>
                <a href={`#/events/${e.id}`}>{e.id}</a>
              </td>
              <td class="nowrap">{time(e.occurredAt)}</td>
              <td>
                <code>{e.type}</code>
              </td>
              <td>{e.enterprise ?? "—"}</td>
              <td>{e.source}</td>
              <td class="excerpt">{summary(e.data)}</td>
            </tr>
          ))}
        </tbody>
      </Table>
      {visible.length === 0 ? <p class="empty">{t("events.none")}</p> : null}
      {next !== undefined ? (
        <button type="button" onClick={more}>
          {t("more")}
        </button>
      ) : null}
    </section>
  )
}

/** One event: its data, the request as it arrived, and its deliveries (with resend to any target). */
export const EventDetail = ({ id }: { readonly id: number }) => {
  const [event, setEvent] = useState<EventItem | null | undefined>(undefined)
  const [deliveries, setDeliveries] = useState<ReadonlyArray<DeliveryItem>>([])
  const [targets, setTargets] = useState<ReadonlyArray<Target>>([])
  const [target, setTarget] = useState("")
  const [notice, setNotice] = useState<Notice>(null)
  const [question, setQuestion] = useState<Question | null>(null)

  usePoll(
    async () => {
      // the listing's page before id + 1 starts with the event itself, if it exists
      const page = await api<Page<EventItem>>("GET", `/events${query({ before: id + 1, limit: 1 })}`)
      const found = page.items[0]?.id === id ? page.items[0] : null
      setEvent(found)
      if (!found) return
      // the API filters deliveries by type, not by event: the rest is done here
      const ds = await api<Page<DeliveryItem>>("GET", `/deliveries${query({ type: found.type, limit: 1000 })}`)
      setDeliveries(ds.items.filter((d) => d.event.id === id))
      if (targets.length === 0) {
        const ts = await api<{ items: ReadonlyArray<Target> }>("GET", "/targets")
        setTargets(ts.items)
        if (target === "" && ts.items[0]) setTarget(ts.items[0].name)
      }
    },
    POLL_MS,
    [id],
    (e) => setNotice({ kind: "error", text: messageOf(e) })
  )

  const resend = () =>
    setQuestion({
      text: t("resend.confirm", { id, target }),
      confirm: t("resend.action"),
      run: async () => {
        try {
          const r = await api<{ deliveryId: number }>("POST", `/events/${id}/resend`, { target })
          setNotice({ kind: "ok", text: t("resend.done", { delivery: r.deliveryId }) })
        } catch (e) {
          setNotice({ kind: "error", text: messageOf(e) })
        }
      }
    })

  if (event === undefined) return <p>{t("loading")}</p>
  if (event === null)
    return (
      <section>
        <p class="empty">{t("events.missing", { id })}</p>
        <a href="#/events">{t("back")}</a>
      </section>
    )
  return (
    <section>
      <a href="#/events">{t("back")}</a>
      <h2>
        {t("event.title", { id })} <code>{event.type}</code>
      </h2>
      <NoticeBar notice={notice} onClose={() => setNotice(null)} />
      <dl class="facts">
        <dt>{t("col.time")}</dt>
        <dd>{time(event.occurredAt)}</dd>
        <dt>{t("col.enterprise")}</dt>
        <dd>{event.enterprise ?? "—"}</dd>
        <dt>{t("col.source")}</dt>
        <dd>{event.source}</dd>
      </dl>
      <div class="columns">
        <div>
          <h3>{t("event.data")}</h3>
          {event.unreadable ? <p class="hint">{t("event.unreadable")}</p> : <Json value={event.data} />}
        </div>
        <div>
          <h3>{t("event.raw")}</h3>
          {event.raw ? <pre class="json raw">{rawView(event.raw)}</pre> : <p class="hint">{t("event.noRaw")}</p>}
        </div>
      </div>
      <h3>{t("event.deliveries")}</h3>
      <p class="hint">{t("event.deliveriesHint")}</p>
      {deliveries.length === 0 ? <p class="empty">{t("deliveries.none")}</p> : null}
      {deliveries.map((d) => (
        <article class="card" key={d.id} data-delivery={d.id}>
          <header>
            <strong>{d.target}</strong> <StatusBadge status={d.status} /> {d.reason ? <span class="hint">{d.reason}</span> : null}
          </header>
          <Attempts attempts={d.attempts} />
        </article>
      ))}
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault()
          resend()
        }}
      >
        <Field label={t("resend.target")}>
          <select name="target" value={target} onChange={(e) => setTarget((e.currentTarget as HTMLSelectElement).value)}>
            {targets.map((tg) => (
              <option key={tg.name} value={tg.name}>
                {tg.name}
              </option>
            ))}
          </select>
        </Field>
        <div class="actions">
          <button type="submit" disabled={target === ""}>
            {t("resend.action")}
          </button>
        </div>
      </form>
      <ConfirmDialog question={question} onDone={() => setQuestion(null)} />
    </section>
  )
}
