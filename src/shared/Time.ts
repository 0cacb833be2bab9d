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

/** Unix ms → `yyyy-mm-dd hh:nn:ss` in `tz`. */
export const formatLocal = (ms: number, tz: string): string => {
  const p = partsOf(ms, tz)
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`
}

/** The zone's offset from UTC at instant `ms`, in ms. */
const offsetAt = (ms: number, tz: string): number => {
  const p = partsOf(ms, tz)
  const asUtc = Date.UTC(+p.year!, +p.month! - 1, +p.day!, +p.hour!, +p.minute!, +p.second!)
  return asUtc - Math.floor(ms / 1000) * 1000
}

/** A normalised `yyyy-mm-dd hh:nn:ss` in `tz` → Unix ms. */
export const parseLocal = (local: string, tz: string): number => {
  const [d, t] = local.split(" ")
  const [y, mo, da] = d!.split("-").map(Number) as [number, number, number]
  const [h, mi, s] = (t ?? "00:00:00").split(":").map(Number) as [number, number, number]
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
