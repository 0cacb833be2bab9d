/**
 * A fast receiver for delivery benchmarks, in its own process so its work does not slow the
 * load generator: answers 204 at once; `GET /count` tells how many deliveries arrived.
 */
import * as http from "node:http"

let received = 0
const server = http.createServer((req, res) => {
  if (req.method === "GET" && req.url === "/count") return void res.writeHead(200, { "content-type": "text/plain" }).end(String(received))
  req.resume()
  req.on("end", () => {
    received++
    res.writeHead(204).end()
  })
})
server.keepAliveTimeout = 60_000
server.listen(0, "127.0.0.1", () => {
  const address = server.address()
  process.stdout.write(`listening ${typeof address === "object" && address ? address.port : 0}\n`)
})
process.on("SIGTERM", () => {
  server.closeAllConnections()
  server.close(() => process.exit(0))
})
