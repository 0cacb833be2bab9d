/** A real HTTP receiver on loopback standing in for a CRM: records every request and answers as told. */
import * as http from "node:http"

export interface Received {
  readonly method: string
  readonly url: string
  readonly headers: http.IncomingHttpHeaders
  readonly body: string
  readonly at: number
}

export type Answer = { readonly status: number; readonly headers?: Record<string, string>; readonly body?: string; readonly delayMs?: number }

export const startReceiver = (answer: (req: Received, n: number) => Answer = () => ({ status: 200 })) =>
  new Promise<{ url: string; received: Array<Received>; close: () => Promise<void>; setAnswer: (a: (req: Received, n: number) => Answer) => void; maxInFlight: () => number }>((resolve) => {
    const received: Array<Received> = []
    let respond = answer
    let inFlight = 0
    let maxInFlight = 0
    const server = http.createServer((req, res) => {
      let body = ""
      req.on("data", (c: Buffer) => (body += c.toString("utf8")))
      req.on("end", () => {
        const r = { method: req.method ?? "", url: req.url ?? "", headers: req.headers, body, at: Date.now() }
        received.push(r)
        const a = respond(r, received.length)
        inFlight++
        maxInFlight = Math.max(maxInFlight, inFlight)
        setTimeout(() => {
          inFlight--
          res.writeHead(a.status, a.headers ?? {}).end(a.body ?? "")
        }, a.delayMs ?? 0)
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number }
      resolve({
        url: `http://127.0.0.1:${port}/hook`,
        received,
        close: () => new Promise((done) => { server.closeAllConnections(); server.close(() => done()) }),
        setAnswer: (a) => (respond = a),
        maxInFlight: () => maxInFlight
      })
    })
  })

export const eventually = async <A>(check: () => A | undefined | false | Promise<A | undefined | false>, timeoutMs = 10_000, show?: () => unknown): Promise<A> => {
  const until = Date.now() + timeoutMs
  for (;;) {
    const v = await check()
    if (v) return v
    if (Date.now() > until) throw new Error(`condition not reached in time${show ? `: ${JSON.stringify(await show())}` : ""}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}
