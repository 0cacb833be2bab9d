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
 * The contract's own examples push by GET, the memo in the query string: a work order with its
 * fifty free fields can pass Node's 16 KiB default for the request line and headers.
 */
export const MAX_HEADER_BYTES = 64 * 1024

const TIMED_OUT = { code: -1, message: "the request did not arrive in time" }

/** Writes a whole answer straight onto the connection, for requests HTTP never handed to us. */
const answerRaw = (socket: stream.Duplex, status: string, body: { code: number; message: string }, close: "end" | "destroy") => {
  const text = JSON.stringify(body)
  const answer = `HTTP/1.1 ${status}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`
  // "destroy": a client that stalls would also never close its end; it gets the answer, then the connection goes
  if (close === "destroy") socket.end(answer, () => socket.destroy())
  else socket.end(answer)
}

// an answer already under way on this connection must not be cut into (Node's own check)
const answering = (socket: stream.Duplex) =>
  (socket as stream.Duplex & { _httpMessage?: { _headerSent?: boolean } })._httpMessage?._headerSent === true

/** A request HTTP itself cannot read still gets the coded JSON answer every other failure gets. */
const clientError = (err: NodeJS.ErrnoException, socket: stream.Duplex) => {
  if (!socket.writable || answering(socket) || err.code === "ECONNRESET") return socket.destroy()
  if (err.code === "ERR_HTTP_REQUEST_TIMEOUT") return answerRaw(socket, "408 Request Timeout", TIMED_OUT, "destroy")
  const [status, body] =
    err.code === "HPE_HEADER_OVERFLOW"
      ? ["431 Request Header Fields Too Large", { code: -12, message: `request line and headers are larger than ${MAX_HEADER_BYTES} bytes` }]
      : ["400 Bad Request", { code: -14, message: `malformed HTTP request: ${err.code ?? err.message}` }]
  answerRaw(socket, status, body, "end")
}

export interface Timeouts {
  /** the request line and headers must have arrived this long after the connection opened or the previous answer went */
  readonly headersMs: number
  /** the whole request, body included, counted from the same moment */
  readonly requestMs: number
  /** an idle keep-alive connection is closed after this long */
  readonly keepAliveMs: number
}

/** What a connection is waiting for, for its timeouts and for `close`. */
interface Connection {
  handedOver: boolean
  /** when it started waiting for its current request */
  since: number
  /** the headers timer, while a request's headers are awaited */
  timer: NodeJS.Timeout | undefined
  requests: number
  answers: number
}

/**
 * An HTTP server whose connections first pass the request-line repair. The HTTP server
 * never listens itself, so it cannot track its connections, and Node's `headersTimeout` and
 * `requestTimeout` (checked by a timer that `listen` starts) never apply: this front does
 * both. `close` ends idle connections at once and busy ones after their answer.
 */
export const createServer = (handler: http.RequestListener, timeouts: Timeouts) => {
  const server = http.createServer({ maxHeaderSize: MAX_HEADER_BYTES }, handler)
  // Node's own: an idle keep-alive connection times out on the socket, which needs no listen
  server.keepAliveTimeout = timeouts.keepAliveMs
  server.on("clientError", clientError)
  const connections = new Map<net.Socket, Connection>()
  let closing = false

  const awaitRequest = (socket: net.Socket, conn: Connection) => {
    conn.since = performance.now()
    const seen = socket.bytesRead
    conn.timer = setTimeout(() => {
      conn.timer = undefined
      // nothing sent since: an idle connection, not a slow request. Before a first byte there is
      // nothing to answer; after an answer, the keep-alive timeout is the one that ends it
      if (socket.bytesRead === seen) return void (conn.handedOver ? awaitRequest(socket, conn) : socket.destroy())
      if (socket.writable && !answering(socket)) answerRaw(socket, "408 Request Timeout", TIMED_OUT, "destroy")
      else socket.destroy()
    }, timeouts.headersMs).unref()
  }

  server.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => {
    const socket = req.socket as net.Socket
    const conn = connections.get(socket)
    if (closing) res.setHeader("Connection", "close")
    if (!conn) return
    clearTimeout(conn.timer)
    conn.timer = undefined
    conn.requests++
    // a request without a body is complete with its headers
    const bodyTimer =
      req.headers["content-length"] === undefined && req.headers["transfer-encoding"] === undefined
        ? undefined
        : setTimeout(
            () => {
              if (req.complete) return
              if (res.headersSent) return void socket.destroy()
              // answered through the response, so the handler still waiting for the body is stopped (see Server)
              const text = JSON.stringify(TIMED_OUT)
              res.writeHead(408, { "Content-Type": "application/json; charset=utf-8", "Content-Length": Buffer.byteLength(text), Connection: "close" })
              res.end(text)
            },
            Math.max(0, conn.since + timeouts.requestMs - performance.now())
          ).unref()
    // a request pipelined behind this one counts from here
    conn.since = performance.now()
    res.once("close", () => {
      clearTimeout(bodyTimer)
      conn.answers++
      if (conn.answers < conn.requests || socket.destroyed) return
      if (closing) socket.end()
      else awaitRequest(socket, conn)
    })
  })
  // noDelay as http.createServer does by default: with Nagle on, small answers wait for delayed ACKs (~40 ms)
  const front = net.createServer({ pauseOnConnect: true, noDelay: true }, (socket) => {
    const conn: Connection = { handedOver: false, since: 0, timer: undefined, requests: 0, answers: 0 }
    connections.set(socket, conn)
    socket.setNoDelay(true)
    socket.once("close", () => {
      clearTimeout(conn.timer)
      connections.delete(socket)
    })
    awaitRequest(socket, conn)
    socket.once("data", (first: Buffer) => {
      socket.pause()
      const fixed = repairRequestLine(first)
      if (fixed) repaired.add(socket)
      socket.unshift(fixed ?? first)
      conn.handedOver = true
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
      for (const [socket, conn] of connections) if (conn.answers === conn.requests) socket.end()
    })
  return { server, front, close }
}
