/** The admin page: log in with the admin token, then one page per hash route (#/events, …). */
import "./style.css"
import { render } from "preact"
import { useEffect, useState } from "preact/hooks"
import { api, onSignedOut, session } from "./api"
import { messageOf } from "./components"
import { type Key, type Lang, lang, locale, setLang, t } from "./i18n"
import { Captures } from "./pages/Captures"
import { Deliveries, DeadLetters } from "./pages/Deliveries"
import { Devices } from "./pages/Devices"
import { EventDetail, Events } from "./pages/Events"
import { Targets } from "./pages/Targets"

const PAGES: ReadonlyArray<{ readonly path: string; readonly label: Key }> = [
  { path: "events", label: "nav.events" },
  { path: "deliveries", label: "nav.deliveries" },
  { path: "dead-letters", label: "nav.dead" },
  { path: "targets", label: "nav.targets" },
  { path: "devices", label: "nav.devices" },
  { path: "capture", label: "nav.capture" }
]

const routeOf = (hash: string) => hash.replace(/^#\/?/, "").split("/").filter((s) => s !== "")

const Login = ({ onIn }: { readonly onIn: () => void }) => {
  const [token, setToken] = useState("")
  const [error, setError] = useState<string | null>(null)
  const submit = async (e: Event) => {
    e.preventDefault()
    try {
      // any call proves the token; the targets are the smallest answer
      await api("GET", "/targets", undefined, token)
      session.set(token)
      onIn()
    } catch (err) {
      setError(messageOf(err))
    }
  }
  return (
    <form class="login card" onSubmit={submit}>
      <h1>{t("app.title")}</h1>
      <p class="hint">{t("login.about")}</p>
      <label class="field">
        <span>{t("login.token")}</span>
        <input name="token" type="password" autoComplete="current-password" value={token} onInput={(e) => setToken((e.currentTarget as HTMLInputElement).value)} required />
      </label>
      {error ? (
        <p class="notice error" role="alert">
          {error}
        </p>
      ) : null}
      <button type="submit" class="primary">
        {t("login.action")}
      </button>
    </form>
  )
}

const LangSwitch = ({ onChange }: { readonly onChange: (l: Lang) => void }) => (
  <select class="lang" aria-label={t("lang.label")} value={lang()} onChange={(e) => onChange((e.currentTarget as HTMLSelectElement).value as Lang)}>
    <option value="en">English</option>
    <option value="zh">中文</option>
  </select>
)

const Page = ({ route }: { readonly route: ReadonlyArray<string> }) => {
  const [first, second] = route
  switch (first) {
    case "events":
      return second !== undefined && /^\d+$/.test(second) ? <EventDetail id={Number(second)} key={second} /> : <Events />
    case "deliveries":
      return <Deliveries />
    case "dead-letters":
      return <DeadLetters />
    case "targets":
      return <Targets />
    case "devices":
      return <Devices />
    case "capture":
      return <Captures />
    default:
      return <Events />
  }
}

const App = () => {
  const [signedIn, setSignedIn] = useState(session.token() !== null)
  const [route, setRoute] = useState(routeOf(location.hash))
  const [, setShownLang] = useState(lang())
  useEffect(() => {
    const onHash = () => setRoute(routeOf(location.hash))
    addEventListener("hashchange", onHash)
    onSignedOut(() => {
      session.clear()
      setSignedIn(false)
    })
    return () => removeEventListener("hashchange", onHash)
  }, [])
  useEffect(() => {
    document.title = t("app.title")
  })
  const changeLang = (l: Lang) => {
    setLang(l)
    setShownLang(l)
  }
  if (!signedIn)
    return (
      <main class="narrow">
        <div class="corner">
          <LangSwitch onChange={changeLang} />
        </div>
        <Login onIn={() => setSignedIn(true)} />
      </main>
    )
  const current = route[0] ?? "events"
  return (
    <>
      <header class="top">
        <strong class="brand">{t("app.title")}</strong>
        <nav aria-label={t("nav.label")}>
          {PAGES.map((p) => (
            <a key={p.path} href={`#/${p.path}`} aria-current={current === p.path ? "page" : undefined}>
              {t(p.label)}
            </a>
          ))}
        </nav>
        <div class="end">
          <LangSwitch onChange={changeLang} />
          <button
            type="button"
            class="link"
            onClick={() => {
              session.clear()
              setSignedIn(false)
            }}
          >
            {t("logout")}
          </button>
        </div>
      </header>
      <main>
        <Page route={route} />
      </main>
    </>
  )
}

document.documentElement.lang = locale()
render(<App />, document.getElementById("app")!)
