/** The baseline: a bare express endpoint that parses the same body and answers the push ack. */
import express from "express"

const app = express()
app.disable("x-powered-by")
app.use(express.urlencoded({ extended: false, limit: "1mb" }))
app.all("/api/voip.json", (_req, res) => {
  res.json({ code: 0, message: "OK" })
})
const server = app.listen(0, "127.0.0.1", () => {
  const address = server.address()
  process.stdout.write(`listening ${typeof address === "object" && address ? address.port : 0}\n`)
})
process.on("SIGTERM", () => server.close(() => process.exit(0)))
