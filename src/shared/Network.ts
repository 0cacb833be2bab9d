/** Address allow-lists (`10.0.0.0/8`, `192.168.1.20`, `::1`) with Node's own BlockList. */
import * as net from "node:net"

const parse = (entry: string): { address: string; prefix?: number; family: "ipv4" | "ipv6" } | undefined => {
  const [address, prefix] = entry.trim().split("/")
  const family = net.isIPv4(address ?? "") ? "ipv4" : net.isIPv6(address ?? "") ? "ipv6" : undefined
  if (!address || !family) return undefined
  if (prefix === undefined) return { address, family }
  const bits = Number(prefix)
  const max = family === "ipv4" ? 32 : 128
  return /^\d+$/.test(prefix) && bits <= max ? { address, prefix: bits, family } : undefined
}

export const isAddressOrRange = (entry: string): boolean => parse(entry) !== undefined

/** A matcher for a list of addresses and ranges; IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) count as IPv4. */
export const allowList = (entries: ReadonlyArray<string>) => {
  const list = new net.BlockList()
  for (const e of entries) {
    const p = parse(e)
    if (!p) continue
    if (p.prefix === undefined) list.addAddress(p.address, p.family)
    else list.addSubnet(p.address, p.prefix, p.family)
  }
  return (address: string | undefined): boolean => {
    if (!address || entries.length === 0) return false
    const v4 = address.startsWith("::ffff:") ? address.slice(7) : address
    return net.isIPv4(v4) ? list.check(v4, "ipv4") : net.isIPv6(address) ? list.check(address, "ipv6") : false
  }
}
