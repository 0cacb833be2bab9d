/**
 * A recording box's MAC as boxes and people write it — any case, bytes separated by `:` or
 * `-` or nothing — in the one spelling stored: `00:1A:2B:3C:4D:5E`. The contract's own example
 * device number has five bytes (`00:00:00:00:01`): device numbers of four to eight bytes are
 * taken, so traffic written after the contract is not refused as "no satellite".
 */
const MAC = /^[0-9a-f]{2}(?:([:-]?)[0-9a-f]{2})(?:\1[0-9a-f]{2}){2,6}$/i

/** The stored spelling, or undefined when `text` is not a MAC (mixed separators included). */
export const normalizeMac = (text: string): string | undefined => {
  const t = text.trim()
  if (!MAC.test(t)) return undefined
  const hex = t.replace(/[:-]/g, "").toUpperCase()
  return hex.match(/../g)!.join(":")
}
