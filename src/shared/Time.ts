/**
 * The contract writes times as `yyyy-mm-dd hh:nn:ss` in local time; we store instants
 * (Unix ms) and convert at the edges with the configured zone (BRIDGE_TZ).
 */
const formatters = new Map<string, Intl.DateTimeFormat>()
const formatterFor = (tz: string) => {
  let f = formatters.get(tz)
  if (!f) {
    f = new Intl.DateTimeFormat("en-CA", {
      timeZone: tz,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit"
    })
    formatters.set(tz, f)
  }
  return f
}

const partsOf = (ms: number, tz: string) => {
  const out: Record<string, string> = {}
  for (const p of formatterFor(tz).formatToParts(new Date(ms))) out[p.type] = p.value
  return out
}


const QUARTER_HOUR = 15 * 60_000
const offsets = new Map<string, number>()

/**
 * The zone's offset from UTC at instant `ms`, in ms. Intl is slow (~10 µs a call) and every
 * pushed call record has two times, so offsets are remembered per quarter-hour: zones change
 * their offset only on quarter-hour boundaries of UTC.
 */
const offsetAt = (ms: number, tz: string): number => {
  const key = `${tz}|${Math.floor(ms / QUARTER_HOUR)}`
  const known = offsets.get(key)
  if (known !== undefined) return known
  const p = partsOf(ms, tz)
  const asUtc = Date.UTC(+p.year!, +p.month! - 1, +p.day!, +p.hour!, +p.minute!, +p.second!)
  const offset = asUtc - Math.floor(ms / 1000) * 1000
  if (offsets.size >= 10_000) offsets.clear()
  offsets.set(key, offset)
  return offset
}

const two = (n: number) => (n < 10 ? `0${n}` : String(n))

/** Unix ms → `yyyy-mm-dd hh:nn:ss` in `tz`. */
export const formatLocal = (ms: number, tz: string): string => {
  const d = new Date(ms + offsetAt(ms, tz))
  return `${String(d.getUTCFullYear()).padStart(4, "0")}-${two(d.getUTCMonth() + 1)}-${two(d.getUTCDate())} ${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())}`
}

/** A normalised `yyyy-mm-dd hh:nn:ss` in `tz` → Unix ms. */
export const parseLocal = (local: string, tz: string): number => {
  const [d, t] = local.split(" ")
  const [y, mo, da] = d!.split("-").map(Number) as [number, number, number]
  const [h, mi, s] = (t ?? "00:00:00").split(":").map(Number) as [number, number, number]
  return localMs(y, mo, da, h, mi, s, tz)
}

/**
 * A time the platform writes in a push's memo, `yyyy-MM-dd HH:mm[:ss[.S…]]` (Java writes `.0`),
 * in `tz` → Unix ms. A date alone, or one that does not exist (Feb 30, 25:61), is no time: the
 * call record and the customer's last call both read a pushed time by this one rule.
 */
export const pushedInstant = (text: string, tz: string): number | undefined => {
  const m = /^(\d{4})-(\d{1,2})-(\d{1,2})[ T](\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.\d+)?)?$/.exec(text.trim())
  if (!m) return undefined
  const [y, mo, d, h, mi, sec] = m.slice(1).map((x) => Number(x ?? 0)) as [number, number, number, number, number, number]
  const probe = new Date(Date.UTC(y, mo - 1, d, h, mi, sec))
  if (probe.getUTCFullYear() !== y || probe.getUTCMonth() !== mo - 1 || probe.getUTCDate() !== d || probe.getUTCHours() !== h || probe.getUTCMinutes() !== mi || probe.getUTCSeconds() !== sec)
    return undefined
  return localMs(y, mo, d, h, mi, sec, tz)
}

/** A wall-clock time in `tz` (month 1–12) → Unix ms. */
export const localMs = (y: number, mo: number, da: number, h: number, mi: number, s: number, tz: string): number => {
  const wall = Date.UTC(y, mo - 1, da, h, mi, s)
  // Two passes settle the offset across a DST change (none in Asia/Shanghai, but zones are configurable).
  let ms = wall - offsetAt(wall, tz)
  ms = wall - offsetAt(ms, tz)
  return ms
}

/** Whether `tz` is a zone this runtime knows. */
export const isValidZone = (tz: string): boolean => {
  try {
    new Intl.DateTimeFormat("en", { timeZone: tz })
    return true
  } catch {
    return false
  }
}
