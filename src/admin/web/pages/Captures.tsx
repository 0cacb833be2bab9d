/** Capturing every request (for `npm start -- replay`): start, stop, download the file. */
import { useState } from "preact/hooks"
import { api, download } from "../api"
import { messageOf, type Notice, NoticeBar, usePoll } from "../components"
import { t } from "../i18n"
import type { CaptureStatus } from "../types"

export const Captures = () => {
  const [status, setStatus] = useState<CaptureStatus | null>(null)
  const [notice, setNotice] = useState<Notice>(null)
  // the line count grows while capturing
  usePoll(async () => setStatus((await api<{ capture: CaptureStatus }>("GET", "/capture/status")).capture), 2000, [], (e) => setNotice({ kind: "error", text: messageOf(e) }))
  const set = async (enabled: boolean) => {
    try {
      setStatus((await api<{ capture: CaptureStatus }>("POST", "/capture", { enabled })).capture)
      setNotice({ kind: "ok", text: enabled ? t("capture.started") : t("capture.stopped") })
    } catch (e) {
      setNotice({ kind: "error", text: messageOf(e) })
    }
  }
  const save = async () => {
    try {
      await download("/capture", "capture.jsonl")
    } catch (e) {
      setNotice({ kind: "error", text: messageOf(e) })
    }
  }
  return (
    <section>
      <h2>{t("capture.title")}</h2>
      <NoticeBar notice={notice} onClose={() => setNotice(null)} />
      <p class="hint">{t("capture.about")}</p>
      {status ? (
        <dl class="facts">
          <dt>{t("capture.state")}</dt>
          <dd>
            <span class={`badge ${status.enabled ? "delivered" : "pending"}`}>{status.enabled ? t("capture.on") : t("capture.off")}</span>
          </dd>
          <dt>{t("capture.file")}</dt>
          <dd>
            <code>{status.file}</code>
          </dd>
          <dt>{t("capture.records")}</dt>
          <dd>{status.records}</dd>
          <dt>{t("capture.failures")}</dt>
          <dd>{status.failures}</dd>
        </dl>
      ) : (
        <p class="hint">{t("loading")}</p>
      )}
      <div class="toolbar">
        <button type="button" class="primary" disabled={status?.enabled === true} onClick={() => set(true)}>
          {t("capture.start")}
        </button>
        <button type="button" disabled={status?.enabled !== true} onClick={() => set(false)}>
          {t("capture.stop")}
        </button>
        <button type="button" onClick={save}>
          {t("capture.download")}
        </button>
      </div>
    </section>
  )
}
