/** Requests exactly as written — no URL normalisation, raw bytes — over a plain socket. */
import * as net from "node:net"

export interface RawResponse {
  readonly status: number
  readonly headers: string
  readonly body: Buffer
}

export const rawRequest = (base: string, method: string, pathAndQuery: string, headers: Record<string, string> = {}, body?: Buffer) =>
  new Promise<RawResponse>((resolve, reject) => {
    const url = new URL(base)
    const socket = net.connect(Number(url.port), url.hostname, () => {
      const head = Object.entries({ Host: url.host, Connection: "close", ...(body ? { "Content-Length": String(body.length) } : {}), ...headers })
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join("")
      socket.write(Buffer.concat([Buffer.from(`${method} `), Buffer.from(pathAndQuery, "utf8"), Buffer.from(` HTTP/1.1\r\n${head}\r\n`), body ?? Buffer.alloc(0)]))
    })
    const chunks: Array<Buffer> = []
    socket.on("data", (c: Buffer) => chunks.push(c))
    socket.on("end", () => {
      const all = Buffer.concat(chunks)
      const split = all.indexOf("\r\n\r\n")
      const head = all.subarray(0, split).toString("latin1")
      resolve({ status: Number(head.split(" ")[1]), headers: head, body: all.subarray(split + 4) })
    })
    socket.on("error", reject)
  })
