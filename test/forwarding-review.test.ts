/**
 * Review of the plain deliveries (964e822, 3987b8e): what a plain target's delivery must still do
 * as the slow path (`attempt`/`post` before the change) did, and what an in-flight plain delivery
 * must not undo of an operator's change to its target.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startTestServer, type TestServer } from "./support/TestServer.js"
import { eventually, startReceiver } from "./support/Receiver.js"

type Rx = Awaited<ReturnType<typeof startReceiver>>
let server: TestServer
let failing: Rx, fixed: Rx, userinfo: Rx

const PASSWORD = "hunter2secret"

const callback = (cbkId: number) =>
  fetch(`${server.url}/api/callback.json`, { method: "POST", body: new URLSearchParams({ cbkId: String(cbkId), cbkStatus: "1" }) }).then((r) => r.json() as Promise<{ code: number }>)
const admin = async (method: string, p: string, body?: unknown) => {
  const token = fs.readFileSync(path.join(server.dataDir, "admin-token"), "utf8").trim()
  const res = await fetch(`${server.url}/admin/api${p}`, { method, headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) })
  return { status: res.status, body: (await res.json()) as Record<string, unknown> & { items?: Array<Record<string, unknown>> } }
}
const healthy = async () => expect((await fetch(`${server.url}/healthz`)).status).toBe(200)

beforeAll(async () => {
  // answers 503 slowly: the operator acts while the request is out
  failing = await startReceiver(() => ({ status: 503, delayMs: 800 }))
  fixed = await startReceiver(() => ({ status: 200 }))
  userinfo = await startReceiver(() => ({ status: 200 }))
  server = await startTestServer({
    forwarding: { pollIntervalMs: 50, circuitThreshold: 1, circuitCooldownMs: 60_000 },
    targets: [
      // a malformed percent-escape in the userinfo: new URL accepts it, Node cannot decode it
      { name: "userinfo", url: userinfo.url.replace("http://", `http://a%zz:${PASSWORD}@`), events: ["callback.*"], retry: { scheduleMs: [0, 20, 20, 20] } }
    ]
  })
})
afterAll(async () => {
  await server.close()
  for (const rx of [failing, fixed, userinfo]) await rx.close()
})

describe("a plain target whose URL Node cannot make a request of (userinfo with a malformed %-escape)", () => {
  it("is a dead letter at once (unsendable) as the slow path made it, not a retry counted against the circuit, and its error does not carry the password", async () => {
    // before the change `post` gave "the request could not be sent: URI malformed" (permanent);
    // Send.ts `parse` now answers "invalid URL <the whole URL>", not permanent
    expect((await callback(9001)).code).toBe(0)
    const tried = async () => ((await admin("GET", "/deliveries?target=userinfo&limit=10")).body.items ?? [])[0]
    await eventually(async () => ((await tried())?.attempts as Array<unknown> | undefined)?.length === 1)
    await new Promise((r) => setTimeout(r, 300))
    const d = (await tried())!
    expect(d).toMatchObject({ status: "dead", reason: "unsendable" })
    expect(d.attempts).toHaveLength(1)
    // stored as the attempt's error and the dead letter's lastError, and carried by the delivery.exhausted / target.failing events other targets receive
    expect(JSON.stringify(d)).not.toContain(PASSWORD)
    const t = (await admin("GET", "/targets/userinfo")).body as { circuit?: { failures: number; state: string } }
    expect(t.circuit).toMatchObject({ state: "closed", failures: 0 })
    expect(userinfo.received).toHaveLength(0)
    await healthy()
  })
})

describe("autoDisable while a plain delivery is in flight (also so on the slow path: not new with this change)", () => {
  it("a target deleted under the send stays deleted when that send's failure opens the circuit", async () => {
    expect((await admin("POST", "/targets", { name: "doomed", url: failing.url, events: ["callback.*"], autoDisable: true, retry: { scheduleMs: [0, 60_000] } })).body).toMatchObject({ code: 0 })
    const before = failing.received.length
    expect((await callback(9101)).code).toBe(0)
    await eventually(() => failing.received.length > before)
    expect((await admin("DELETE", "/targets/doomed")).body).toMatchObject({ code: 0, deadLettered: 1 })
    // the 503 arrives (800 ms), opens the circuit (threshold 1), its outcome is written
    await eventually(async () => ((await admin("GET", "/dead-letters?target=doomed")).body.items?.[0]?.attempts as Array<unknown> | undefined)?.length === 1)
    await new Promise((r) => setTimeout(r, 300))
    // autoDisable saves the snapshot taken before the send: the deleted target is back (disabled)
    expect((await admin("GET", "/targets/doomed")).status).toBe(404)
    expect(((await admin("GET", "/targets")).body.items ?? []).map((t) => t.name)).not.toContain("doomed")
    await healthy()
  })

  it("an edit made under the send (the URL fixed) is kept when that send's failure opens the circuit", async () => {
    expect((await admin("POST", "/targets", { name: "mended", url: failing.url, events: ["callback.*"], autoDisable: true, retry: { scheduleMs: [0, 60_000] } })).body).toMatchObject({ code: 0 })
    const before = failing.received.length
    expect((await callback(9201)).code).toBe(0)
    await eventually(() => failing.received.length > before)
    // the operator points the target at a receiver that works, while the old one's 503 is on its way
    expect((await admin("PATCH", "/targets/mended", { url: fixed.url })).body).toMatchObject({ code: 0 })
    await eventually(async () => ((await admin("GET", "/deliveries?target=mended&limit=10")).body.items ?? []).some((d) => d.status === "pending" && (d.attempts as Array<unknown>).length === 1))
    await new Promise((r) => setTimeout(r, 300))
    // autoDisable saves the snapshot taken before the send: the operator's URL is reverted
    expect((await admin("GET", "/targets/mended")).body).toMatchObject({ url: fixed.url })
    await healthy()
  })
})
