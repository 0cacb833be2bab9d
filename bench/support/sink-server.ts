/**
 * A fast receiver for delivery benchmarks, in its own process so its work does not slow the
 * load generator: answers 204 at once; `GET /count` tells how many deliveries arrived,
 * `GET /stats` also when the first and the last arrived. `SINK_PORT` listens on a given port
 * (a target can point at it before it is up: the receiver down); `SINK_ORDER=1` reads each body's
 * `data.cdrId` and `data.seq` and counts deliveries of a call that arrive out of order.
 */
import * as http from "node:http"

const checkOrder = process.env.SINK_ORDER === "1"
let received = 0
let firstAt = 0
let lastAt = 0
let outOfOrder = 0
let repeated = 0
const lastSeq = new Map<string, number>()

const check = (body: string) => {
  const { data } = JSON.parse(body) as { data: { cdrId: string; seq: number } }
  const last = lastSeq.get(data.cdrId) ?? -1
  if (data.seq === last) repeated++
  else if (data.seq !== last + 1) outOfOrder++
  lastSeq.set(data.cdrId, Math.max(last, data.seq))
}

const server = http.createServer((req, res) => {
  if (req.method === "GET" && req.url === "/count") return void res.writeHead(200, { "content-type": "text/plain" }).end(String(received))
  if (req.method === "GET" && req.url === "/stats")
    return void res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ received, firstAt, lastAt, outOfOrder, repeated, calls: lastSeq.size }))
  const chunks: Array<Buffer> = []
  if (checkOrder) req.on("data", (c: Buffer) => chunks.push(c))
  else req.resume()
  req.on("end", () => {
    lastAt = Date.now()
    if (received++ === 0) firstAt = lastAt
    if (checkOrder) check(Buffer.concat(chunks).toString())
    res.writeHead(204).end()
  })
})
server.keepAliveTimeout = 60_000
server.listen(Number(process.env.SINK_PORT ?? 0), "127.0.0.1", () => {
  const address = server.address()
  process.stdout.write(`listening ${typeof address === "object" && address ? address.port : 0}\n`)
})
process.on("SIGTERM", () => {
  server.closeAllConnections()
  server.close(() => process.exit(0))
})
