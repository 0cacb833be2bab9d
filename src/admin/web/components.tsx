/** Pieces every page uses: times, JSON, notices, the confirmation dialog, polling. */
import type { ComponentChildren } from "preact"
import { useEffect, useRef, useState } from "preact/hooks"
import { ApiError } from "./api"
import { type Key, locale, t } from "./i18n"

export const time = (at: string | number | null | undefined) => (at === null || at === undefined || at === "" ? "—" : new Date(at).toLocaleString(locale()))

export const Json = ({ value }: { readonly value: unknown }) => <pre class="json">{JSON.stringify(value, null, 2)}</pre>

/** What a failed call says to the operator. */
export const messageOf = (e: unknown) => (e instanceof ApiError ? (e.code === undefined ? e.message : `${e.message} (${e.code})`) : e instanceof Error ? e.message : String(e))

export type Notice = { readonly kind: "ok" | "error"; readonly text: string } | null

export const NoticeBar = ({ notice, onClose }: { readonly notice: Notice; readonly onClose: () => void }) =>
  notice === null ? null : (
    <div class={`notice ${notice.kind}`} role={notice.kind === "error" ? "alert" : "status"}>
      <span>{notice.text}</span>
      <button type="button" class="link" onClick={onClose} aria-label={t("close")}>
        ×
      </button>
    </div>
  )

export interface Question {
  readonly text: string
  readonly confirm: string
  readonly danger?: boolean
  readonly run: () => Promise<void> | void
}

/** Asks before an action that changes many things at once; the question says how many. */
export const ConfirmDialog = ({ question, onDone }: { readonly question: Question | null; readonly onDone: () => void }) => {
  const [busy, setBusy] = useState(false)
  if (question === null) return null
  const yes = async () => {
    setBusy(true)
    try {
      await question.run()
    } finally {
      setBusy(false)
      onDone()
    }
  }
  return (
    <div class="overlay">
      <div class="dialog" role="dialog" aria-modal="true" aria-labelledby="confirm-text">
        <p id="confirm-text">{question.text}</p>
        <div class="actions">
          <button type="button" onClick={onDone} disabled={busy}>
            {t("cancel")}
          </button>
          <button type="button" class={question.danger ? "danger" : "primary"} onClick={yes} disabled={busy}>
            {question.confirm}
          </button>
        </div>
      </div>
    </div>
  )
}

/** Calls `tick` now and every `ms` while the page shows, one call at a time. */
export const usePoll = (tick: () => Promise<void>, ms: number, deps: ReadonlyArray<unknown>, onError: (e: unknown) => void) => {
  const latest = useRef({ tick, onError })
  latest.current = { tick, onError }
  useEffect(() => {
    let stopped = false
    let timer: ReturnType<typeof setTimeout> | undefined
    const run = async () => {
      try {
        await latest.current.tick()
      } catch (e) {
        latest.current.onError(e)
      } finally {
        if (!stopped) timer = setTimeout(run, ms)
      }
    }
    void run()
    return () => {
      stopped = true
      if (timer !== undefined) clearTimeout(timer)
    }
    // the caller names what restarts the polling
  }, deps)
}

export const Field = ({ label, children, wide }: { readonly label: string; readonly children: ComponentChildren; readonly wide?: boolean }) => (
  <label class={wide ? "field wide" : "field"}>
    <span>{label}</span>
    {children}
  </label>
)

/** A table that scrolls sideways on a narrow screen rather than squeezing its columns. */
export const Table = ({ children, label }: { readonly children: ComponentChildren; readonly label: string }) => (
  <div class="table-wrap" role="region" aria-label={label} tabIndex={0}>
    <table>{children}</table>
  </div>
)

const STATUSES: ReadonlyArray<string> = ["pending", "in_flight", "delivered", "dead"]
export const statusText = (status: string) => (STATUSES.includes(status) ? t(`status.${status}` as Key) : status)
export const StatusBadge = ({ status }: { readonly status: string }) => <span class={`badge ${status}`}>{statusText(status)}</span>
