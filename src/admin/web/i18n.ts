/**
 * The page's two languages, one dictionary file each (i18n/en.ts, i18n/zh.ts). The browser's
 * language chooses at first; the operator's choice is remembered in this browser.
 */
import { en, type Key } from "./i18n/en"
import { zh } from "./i18n/zh"

export type Lang = "en" | "zh"
const dictionaries: Readonly<Record<Lang, Readonly<Record<Key, string>>>> = { en, zh }
const STORED = "voip-bridge.admin-lang"

const initial = (): Lang => {
  const stored = localStorage.getItem(STORED)
  if (stored === "en" || stored === "zh") return stored
  return navigator.language.toLowerCase().startsWith("zh") ? "zh" : "en"
}

let current: Lang = initial()

export const lang = () => current
export const locale = () => (current === "zh" ? "zh-CN" : "en")

export const setLang = (l: Lang) => {
  current = l
  localStorage.setItem(STORED, l)
  document.documentElement.lang = locale()
}

/** The text of `key` in the current language, `{name}` replaced by `vars.name`. */
export const t = (key: Key, vars?: Readonly<Record<string, string | number>>) =>
  dictionaries[current][key].replace(/\{(\w+)\}/g, (whole, name: string) => (vars && name in vars ? String(vars[name]) : whole))

export type { Key }
