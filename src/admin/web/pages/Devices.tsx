/** Recording boxes and their channels' line states, refreshed every 2 s. */
import { useState } from "preact/hooks"
import { api } from "../api"
import { messageOf, type Notice, NoticeBar, Table, time, usePoll } from "../components"
import { t } from "../i18n"
import type { Device } from "../types"

const LINE_STATES = ["line.0", "line.1", "line.2", "line.3", "line.4", "line.5"] as const

export const Devices = () => {
  const [devices, setDevices] = useState<ReadonlyArray<Device> | null>(null)
  const [notice, setNotice] = useState<Notice>(null)
  usePoll(async () => setDevices((await api<{ items: ReadonlyArray<Device> }>("GET", "/devices")).items), 2000, [], (e) => setNotice({ kind: "error", text: messageOf(e) }))
  return (
    <section>
      <h2>{t("devices.title")}</h2>
      <NoticeBar notice={notice} onClose={() => setNotice(null)} />
      {devices !== null && devices.length === 0 ? <p class="empty">{t("devices.none")}</p> : null}
      {(devices ?? []).map((d) => (
        <article class="card" key={d.mac} data-device={d.mac}>
          <header>
            <strong>
              <code>{d.mac}</code>
            </strong>{" "}
            <span class={`badge presence-${d.presence}`}>{t(`presence.${d.presence}`)}</span>
            {d.pending ? <span class="badge held">{t("devices.pending")}</span> : null}
          </header>
          <dl class="facts">
            <dt>{t("col.enterprise")}</dt>
            <dd>{d.enterprise ?? "—"}</dd>
            <dt>{t("devices.lastSeen")}</dt>
            <dd>
              {time(d.lastSeenAt)} {d.lastAddress ? <code>{d.lastAddress}</code> : null}
            </dd>
            {d.alert ? (
              <>
                <dt>{t("devices.alert")}</dt>
                <dd class="error-text">{d.alert}</dd>
              </>
            ) : null}
          </dl>
          <Table label={t("devices.channels")}>
            <thead>
              <tr>
                <th>{t("devices.channel")}</th>
                <th>{t("devices.extension")}</th>
                <th>{t("devices.line")}</th>
                <th>{t("devices.phone")}</th>
                <th>{t("devices.since")}</th>
              </tr>
            </thead>
            <tbody>
              {d.live.map((c) => (
                <tr key={c.ch}>
                  <td>{c.ch}</td>
                  <td>{c.extension ?? "—"}</td>
                  <td>
                    <span class={`badge line-${c.state}`}>{LINE_STATES[c.state] ? t(LINE_STATES[c.state]!) : c.stateText}</span>
                  </td>
                  <td>{c.phone || "—"}</td>
                  <td class="nowrap">{time(c.changedAt)}</td>
                </tr>
              ))}
            </tbody>
          </Table>
          {d.live.length === 0 ? <p class="hint">{t("devices.noChannels")}</p> : null}
        </article>
      ))}
    </section>
  )
}
