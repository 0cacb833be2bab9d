/**
 * Deliveries with every attempt, and dead letters: redrive one, the selected ones, or all the
 * filter matches (the confirmation says how many), or delete them.
 */
import type { ComponentChildren } from "preact"
import { useState } from "preact/hooks"
import { api, query } from "../api"
import { ConfirmDialog, Field, messageOf, type Notice, NoticeBar, type Question, StatusBadge, Table, time, usePoll } from "../components"
import { t } from "../i18n"
import type { Attempt, DeliveryItem, Page, Target } from "../types"
import { iso } from "./Events"

const POLL_MS = 2000

export const Attempts = ({ attempts }: { readonly attempts: ReadonlyArray<Attempt> }) =>
  attempts.length === 0 ? (
    <p class="hint">{t("attempts.none")}</p>
  ) : (
    <Table label={t("attempts.title")}>
      <thead>
        <tr>
          <th>#</th>
          <th>{t("col.time")}</th>
          <th>{t("col.httpStatus")}</th>
          <th>{t("col.latency")}</th>
          <th>{t("col.error")}</th>
          <th>{t("col.response")}</th>
        </tr>
      </thead>
      <tbody>
        {attempts.map((a) => (
          <tr key={a.n}>
            <td>{a.n}</td>
            <td class="nowrap">{time(a.at)}</td>
            <td>{a.status ?? "—"}</td>
            <td>{a.latencyMs} ms</td>
            <td class="excerpt">{a.error ?? ""}</td>
            <td class="excerpt">
              <code>{a.response ?? ""}</code>
            </td>
          </tr>
        ))}
      </tbody>
    </Table>
  )

/** the targets to filter by (a new one shows within a minute) */
const useTargets = (onError: (e: unknown) => void) => {
  const [targets, setTargets] = useState<ReadonlyArray<Target>>([])
  usePoll(async () => setTargets((await api<{ items: ReadonlyArray<Target> }>("GET", "/targets")).items), 60_000, [], onError)
  return targets
}

const TargetSelect = ({ value, onChange, targets }: { readonly value: string; readonly onChange: (v: string) => void; readonly targets: ReadonlyArray<Target> }) => (
  <select name="target" value={value} onChange={(e) => onChange((e.currentTarget as HTMLSelectElement).value)}>
    <option value="">{t("filter.any")}</option>
    {targets.map((tg) => (
      <option key={tg.name} value={tg.name}>
        {tg.name}
      </option>
    ))}
  </select>
)

const Row = ({ d, selectable, selected, onSelect, actions }: {
  readonly d: DeliveryItem
  readonly selectable: boolean
  readonly selected: boolean
  readonly onSelect: (on: boolean) => void
  readonly actions?: ComponentChildren
}) => {
  const [open, setOpen] = useState(false)
  return (
    <>
      <tr data-delivery={d.id} class={open ? "open" : undefined}>
        {selectable ? (
          <td>
            <input type="checkbox" checked={selected} aria-label={t("select", { id: d.id })} onChange={(e) => onSelect((e.currentTarget as HTMLInputElement).checked)} />
          </td>
        ) : null}
        <td>{d.id}</td>
        <td>
          <a href={`#/events/${d.event.id}`}>
            <code>{d.event.type}</code> #{d.event.id}
          </a>
        </td>
        <td>{d.target}</td>
        <td>
          <StatusBadge status={d.status} />
          {d.held ? <span class="badge held">{t("held")}</span> : null}
        </td>
        <td class="excerpt">{d.reason ?? d.lastError ?? ""}</td>
        <td class="nowrap">{d.status === "pending" && d.nextAttemptAt ? t("nextAt", { at: time(d.nextAttemptAt) }) : time(d.updatedAt)}</td>
        <td class="nowrap">
          <button type="button" class="link" aria-expanded={open} onClick={() => setOpen(!open)}>
            {t("attempts.count", { n: d.attempts.length })}
          </button>
          {actions}
        </td>
      </tr>
      {open ? (
        <tr class="attempts">
          <td colSpan={selectable ? 8 : 7}>
            {d.url ? (
              <p class="hint">
                URL: <code>{d.url}</code>
              </p>
            ) : null}
            <Attempts attempts={d.attempts} />
          </td>
        </tr>
      ) : null}
    </>
  )
}

const Head = ({ selectable, all, onAll }: { readonly selectable: boolean; readonly all?: boolean; readonly onAll?: (on: boolean) => void }) => (
  <thead>
    <tr>
      {selectable ? (
        <th>
          <input type="checkbox" checked={all} aria-label={t("selectAll")} onChange={(e) => onAll?.((e.currentTarget as HTMLInputElement).checked)} />
        </th>
      ) : null}
      <th>{t("col.id")}</th>
      <th>{t("col.event")}</th>
      <th>{t("col.target")}</th>
      <th>{t("col.status")}</th>
      <th>{t("col.why")}</th>
      <th>{t("col.updated")}</th>
      <th>{t("col.attempts")}</th>
    </tr>
  </thead>
)

export const Deliveries = () => {
  const [notice, setNotice] = useState<Notice>(null)
  const targets = useTargets((e) => setNotice({ kind: "error", text: messageOf(e) }))
  const [form, setForm] = useState({ target: "", type: "", status: "" })
  const [applied, setApplied] = useState(form)
  const [items, setItems] = useState<ReadonlyArray<DeliveryItem>>([])
  usePoll(
    async () => setItems((await api<Page<DeliveryItem>>("GET", `/deliveries${query({ ...applied, limit: 200 })}`)).items),
    POLL_MS,
    [applied],
    (e) => setNotice({ kind: "error", text: messageOf(e) })
  )
  return (
    <section>
      <h2>{t("deliveries.title")}</h2>
      <NoticeBar notice={notice} onClose={() => setNotice(null)} />
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault()
          setApplied(form)
        }}
      >
        <Field label={t("filter.target")}>
          <TargetSelect value={form.target} targets={targets} onChange={(target) => setForm({ ...form, target })} />
        </Field>
        <Field label={t("filter.type")}>
          <input name="type" value={form.type} placeholder="call.*" onInput={(e) => setForm({ ...form, type: (e.currentTarget as HTMLInputElement).value })} />
        </Field>
        <Field label={t("filter.status")}>
          <select name="status" value={form.status} onChange={(e) => setForm({ ...form, status: (e.currentTarget as HTMLSelectElement).value })}>
            <option value="">{t("filter.any")}</option>
            {["pending", "in_flight", "delivered", "dead"].map((s) => (
              <option key={s} value={s}>
                {t(`status.${s}` as "status.pending")}
              </option>
            ))}
          </select>
        </Field>
        <div class="actions">
          <button type="submit" class="primary">
            {t("filter.apply")}
          </button>
        </div>
      </form>
      <Table label={t("deliveries.title")}>
        <Head selectable={false} />
        <tbody>
          {items.map((d) => (
            <Row key={d.id} d={d} selectable={false} selected={false} onSelect={() => undefined} />
          ))}
        </tbody>
      </Table>
      {items.length === 0 ? <p class="empty">{t("deliveries.none")}</p> : null}
    </section>
  )
}

interface DeadFilter {
  readonly target: string
  readonly type: string
  readonly since: string
  readonly until: string
}

/** the redrive / purge body of a filter: only what is set (an empty value would be refused) */
const bodyOf = (f: DeadFilter) => ({
  ...(f.target ? { target: f.target } : {}),
  ...(f.type ? { type: f.type } : {}),
  ...(f.since ? { since: iso(f.since) } : {}),
  ...(f.until ? { until: iso(f.until) } : {})
})

export const DeadLetters = () => {
  const [notice, setNotice] = useState<Notice>(null)
  const targets = useTargets((e) => setNotice({ kind: "error", text: messageOf(e) }))
  const [form, setForm] = useState<DeadFilter>({ target: "", type: "", since: "", until: "" })
  const [applied, setApplied] = useState(form)
  const [items, setItems] = useState<ReadonlyArray<DeliveryItem>>([])
  const [more, setMore] = useState(false)
  const [selected, setSelected] = useState<ReadonlySet<number>>(new Set())
  const [question, setQuestion] = useState<Question | null>(null)
  const listQuery = query({ target: applied.target, type: applied.type, since: iso(applied.since), until: iso(applied.until), limit: 1000 })

  const load = async () => {
    const page = await api<Page<DeliveryItem>>("GET", `/dead-letters${listQuery}`)
    setItems(page.items)
    setMore(page.next !== undefined)
    // a redriven or deleted one is no longer selectable
    setSelected((prev) => new Set(page.items.filter((d) => prev.has(d.id)).map((d) => d.id)))
  }
  usePoll(load, POLL_MS, [listQuery], (e) => setNotice({ kind: "error", text: messageOf(e) }))

  const redrive = (body: object, n: number | string) =>
    setQuestion({
      text: t("redrive.confirm", { n }),
      confirm: t("redrive.action"),
      run: async () => {
        try {
          const r = await api<{ redriven: number; skipped?: number }>("POST", "/dead-letters/redrive", body)
          setNotice({ kind: "ok", text: t("redrive.done", { n: r.redriven, skipped: r.skipped ?? 0 }) })
          await load()
        } catch (e) {
          setNotice({ kind: "error", text: messageOf(e) })
        }
      }
    })
  const filtered = Object.keys(bodyOf(applied)).length > 0
  const count = more ? `${items.length}+` : items.length
  const purge = () =>
    setQuestion({
      text: t("purge.confirm", { n: count }),
      confirm: t("purge.action"),
      danger: true,
      run: async () => {
        try {
          // no filter names every dead letter, which the API takes as since=0
          const r = await api<{ deleted: number }>("DELETE", "/dead-letters", filtered ? bodyOf(applied) : { since: 0 })
          setNotice({ kind: "ok", text: t("purge.done", { n: r.deleted }) })
          await load()
        } catch (e) {
          setNotice({ kind: "error", text: messageOf(e) })
        }
      }
    })

  const toggle = (id: number, on: boolean) =>
    setSelected((prev) => {
      const s = new Set(prev)
      if (on) s.add(id)
      else s.delete(id)
      return s
    })

  return (
    <section>
      <h2>{t("dead.title")}</h2>
      <NoticeBar notice={notice} onClose={() => setNotice(null)} />
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault()
          setApplied(form)
        }}
      >
        <Field label={t("filter.target")}>
          <TargetSelect value={form.target} targets={targets} onChange={(target) => setForm({ ...form, target })} />
        </Field>
        <Field label={t("filter.type")}>
          <input name="type" value={form.type} placeholder="call.*" onInput={(e) => setForm({ ...form, type: (e.currentTarget as HTMLInputElement).value })} />
        </Field>
        <Field label={t("filter.since")}>
          <input name="since" type="datetime-local" value={form.since} onInput={(e) => setForm({ ...form, since: (e.currentTarget as HTMLInputElement).value })} />
        </Field>
        <Field label={t("filter.until")}>
          <input name="until" type="datetime-local" value={form.until} onInput={(e) => setForm({ ...form, until: (e.currentTarget as HTMLInputElement).value })} />
        </Field>
        <div class="actions">
          <button type="submit" class="primary">
            {t("filter.apply")}
          </button>
        </div>
      </form>
      <div class="toolbar">
        <span aria-live="polite">{t("dead.count", { n: count })}</span>
        <button type="button" disabled={selected.size === 0} onClick={() => redrive({ ids: [...selected] }, selected.size)}>
          {t("redrive.selected", { n: selected.size })}
        </button>
        <button type="button" class="primary" disabled={items.length === 0} onClick={() => redrive(filtered ? bodyOf(applied) : { since: 0 }, count)}>
          {t("redrive.all")}
        </button>
        <button type="button" class="danger" disabled={items.length === 0} onClick={purge}>
          {t("purge.all")}
        </button>
      </div>
      <Table label={t("dead.title")}>
        <Head selectable all={items.length > 0 && selected.size === items.length} onAll={(on) => setSelected(new Set(on ? items.map((d) => d.id) : []))} />
        <tbody>
          {items.map((d) => (
            <Row
              key={d.id}
              d={d}
              selectable
              selected={selected.has(d.id)}
              onSelect={(on) => toggle(d.id, on)}
              actions={
                <button type="button" class="small" onClick={() => redrive({ ids: [d.id] }, 1)}>
                  {t("redrive.one")}
                </button>
              }
            />
          ))}
        </tbody>
      </Table>
      {items.length === 0 ? <p class="empty">{t("dead.none")}</p> : null}
      <ConfirmDialog question={question} onDone={() => setQuestion(null)} />
    </section>
  )
}
