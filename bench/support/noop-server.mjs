/** The baseline: bare express endpoints that parse the same bodies and answer the push ack / the box's empty poll. */
import express from "express"

const app = express()
app.disable("x-powered-by")
app.use(express.urlencoded({ extended: false, limit: "1mb" }))
app.all("/api/voip.json", (_req, res) => {
  res.json({ code: 0, message: "OK" })
})
// the recording box's poll (§2.1.10), answered "nothing to hand out" as the bridge mostly does
app.post("/voip/upload_record", (_req, res) => {
  res.json({ time: String(Date.now()), status: 3003, message: "no message to process" })
})
const server = app.listen(0, "127.0.0.1", () => {
  const address = server.address()
  process.stdout.write(`listening ${typeof address === "object" && address ? address.port : 0}\n`)
})
process.on("SIGTERM", () => server.close(() => process.exit(0)))
