/**
 * Real senders (the platform's own pushes, the contract's examples) put raw UTF-8 bytes in
 * the query string — `memo={"exteName":"张三"}` unencoded. Node's HTTP parser refuses any
 * byte above 0x7f in the request line with a bare 400, before any code of ours runs. So
 * connections pass through here first: when the first bytes of a connection carry such a
 * request line, those bytes are percent-encoded (exactly what a careful client would have
 * sent) and the connection is handed to the HTTP server; all other connections are handed
 * over untouched. A repaired connection is closed after its first answer, so a later
 * request on it gets the same repair on a new connection.
 */
import * as http from "node:http"
import * as net from "node:net"
import type * as stream from "node:stream"

const repaired = new WeakSet<net.Socket>()
const FIRST_BYTES_TIMEOUT_MS = 30_000

/** Whether this connection's request line was repaired (the answer then closes the connection). */
export const wasRepaired = (socket: net.Socket): boolean => repaired.has(socket)

/** Percent-encodes bytes above 0x7f in the first line of `chunk`; null when there are none. */
export const repairRequestLine = (chunk: Buffer): Buffer | null => {
  let end = chunk.indexOf(0x0a)
  if (end < 0) end = chunk.length
  let high = false
  for (let i = 0; i < end; i++) if (chunk[i]! > 0x7f) { high = true; break }
  if (!high) return null
  const parts: Array<Buffer> = []
  let from = 0
  for (let i = 0; i < end; i++) {
    const b = chunk[i]!
    if (b > 0x7f) {
      parts.push(chunk.subarray(from, i), Buffer.from(`%${b.toString(16).toUpperCase()}`))
      from = i + 1
    }
  }
  parts.push(chunk.subarray(from))
  return Buffer.concat(parts)
}

/**
 * An HTTP server whose connections first pass the request-line repair. The HTTP server
 * never listens itself, so it cannot track its connections: `close` does, ending idle
 * connections at once and busy ones after their answer.
 */
/**
 * The contract's own examples push by GET, the memo in the query string: a work order with its
 * fifty free fields can pass Node's 16 KiB default for the request line and headers.
 */
export const MAX_HEADER_BYTES = 64 * 1024

/** A request HTTP itself cannot read still gets the coded JSON answer every other failure gets. */
const clientError = (err: NodeJS.ErrnoException, socket: stream.Duplex) => {
  // an answer already under way on this connection must not be cut into (Node's own check)
  const answering = (socket as stream.Duplex & { _httpMessage?: { _headerSent?: boolean } })._httpMessage?._headerSent === true
  if (!socket.writable || answering || err.code === "ECONNRESET") return socket.destroy()
  const [status, body] =
    err.code === "HPE_HEADER_OVERFLOW"
      ? ["431 Request Header Fields Too Large", { code: -12, message: `request line and headers are larger than ${MAX_HEADER_BYTES} bytes` }]
      : err.code === "ERR_HTTP_REQUEST_TIMEOUT"
        ? ["408 Request Timeout", { code: -1, message: "the request did not arrive in time" }]
        : ["400 Bad Request", { code: -14, message: `malformed HTTP request: ${err.code ?? err.message}` }]
  const text = JSON.stringify(body)
  socket.end(`HTTP/1.1 ${status}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`)
}

export const createServer = (handler: http.RequestListener) => {
  const server = http.createServer({ maxHeaderSize: MAX_HEADER_BYTES }, handler)
  server.on("clientError", clientError)
  const sockets = new Set<net.Socket>()
  const busy = new Set<net.Socket>()
  let closing = false
  server.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => {
    const socket = req.socket
    busy.add(socket)
    if (closing) res.setHeader("Connection", "close")
    res.once("close", () => {
      busy.delete(socket)
      if (closing) socket.end()
    })
  })
  // noDelay as http.createServer does by default: with Nagle on, small answers wait for delayed ACKs (~40 ms)
  const front = net.createServer({ pauseOnConnect: true, noDelay: true }, (socket) => {
    sockets.add(socket)
    socket.setNoDelay(true)
    socket.once("close", () => {
      sockets.delete(socket)
      busy.delete(socket)
    })
    // a connection that never says anything is not kept forever (the HTTP server's own timeouts start only after hand-over)
    socket.setTimeout(FIRST_BYTES_TIMEOUT_MS, () => socket.destroy())
    socket.once("data", (first: Buffer) => {
      socket.setTimeout(0)
      socket.pause()
      const fixed = repairRequestLine(first)
      if (fixed) repaired.add(socket)
      socket.unshift(fixed ?? first)
      server.emit("connection", socket)
      socket.resume()
    })
    socket.once("error", () => socket.destroy())
    socket.resume()
  })
  /** Stops accepting; resolves once every connection has ended. */
  const close = () =>
    new Promise<void>((resolve) => {
      closing = true
      front.close(() => resolve())
      for (const socket of sockets) if (!busy.has(socket)) socket.end()
    })
  return { server, front, close }
}
