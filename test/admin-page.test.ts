/**
 * The admin page (/admin) in a real browser: Debian's Chromium, headless, driven by
 * playwright-core, against a real bridge and real receivers. An operator logs in, watches a
 * pushed call arrive, finds its dead letter, fixes the target from the page, redrives it and
 * sees it delivered; edits targets, watches a box's lines, switches the language — and the page
 * logs no error. UPDATE_SCREENSHOTS=1 saves each page to docs/screenshots/ (for the README).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { CONTENT_SECURITY_POLICY } from "../src/admin/Web.js"
import { adminApi, adminToken } from "./support/AdminApi.js"
import { eventually, startReceiver } from "./support/Receiver.js"
import { startTestServer, type TestServer } from "./support/TestServer.js"

const CHROMIUM = "/usr/bin/chromium"
const haveChromium = fs.existsSync(CHROMIUM)
const SCREENSHOTS = process.env.UPDATE_SCREENSHOTS === "1" ? fileURLToPath(new URL("../docs/screenshots/", import.meta.url)) : undefined
const MAC = "00-1A-2B-3C-4D-5E"
const PHONE = "13688880001"
const CDR_ID = 770001

type Rx = Awaited<ReturnType<typeof startReceiver>>
let server: TestServer
let failing: Rx
let fixed: Rx
let browser: Browser
let context: BrowserContext
let page: Page
/** what the page reported as errors: console errors, uncaught exceptions, refused requests */
const problems: Array<string> = []

const shot = async (name: string, fullPage = true) => {
  if (SCREENSHOTS) await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage })
}
const go = async (hash: string) => {
  // the page's own navigation (its links change the hash): a string, as the test has no DOM types
  await page.evaluate(`location.hash = ${JSON.stringify(hash)}`)
}
const adminApiOf = async (s: TestServer, p: string) => (await fetch(`${s.url}/admin/api${p}`, { headers: { authorization: `Bearer ${adminToken(s)}` } })).json()
const boxStatus = (channels: ReadonlyArray<Record<string, string | number>>) =>
  fetch(`${server.url}/voip/upload_record`, {
    method: "POST",
    body: new URLSearchParams({ cmd: "channelstatus", satellite: MAC, status: JSON.stringify({ diskUsagePercent: 5, diskStatus: 0, channels }) })
  }).then((r) => r.json() as Promise<{ status: number }>)

describe.skipIf(!haveChromium)(`the admin page in headless Chromium${haveChromium ? "" : ` (skipped: ${CHROMIUM} is not installed — apt-get install chromium)`}`, () => {
  beforeAll(async () => {
    failing = await startReceiver(() => ({ status: 500, body: "crm is down" }))
    fixed = await startReceiver(() => ({ status: 200, body: "ok" }))
    server = await startTestServer({
      // a short cooldown: the redrive below is not held back by the circuit its failures opened
      forwarding: { pollIntervalMs: 50, circuitThreshold: 5, circuitCooldownMs: 300 },
      devices: [{ mac: MAC, enterprise: "100008", channels: { "1": "100008800" } }]
    })
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    })
    // a fresh profile each run (launch's own temporary user data directory); English to begin with
    context = await browser.newContext({ locale: "en-US", viewport: { width: 1280, height: 800 } })
    page = await context.newPage()
    page.on("console", (m) => {
      if (m.type() === "error") problems.push(`console: ${m.text()}`)
    })
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`))
    page.on("requestfailed", (r) => {
      // a reload cancels the poll in flight: that is the browser, not the page
      if (r.failure()?.errorText !== "net::ERR_ABORTED") problems.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ""}`)
    })
    if (SCREENSHOTS) fs.mkdirSync(SCREENSHOTS, { recursive: true })
  })
  afterAll(async () => {
    await browser?.close()
    await server?.close()
    await failing?.close()
    await fixed?.close()
  })

  it("serves the page and its files under a strict Content-Security-Policy, with no token needed", async () => {
    const res = await fetch(`${server.url}/admin`)
    expect(res.status).toBe(200)
    expect(res.headers.get("content-type")).toMatch(/^text\/html/)
    expect(res.headers.get("content-security-policy")).toBe(CONTENT_SECURITY_POLICY)
    expect(CONTENT_SECURITY_POLICY).toContain("script-src 'self'")
    expect(CONTENT_SECURITY_POLICY).not.toMatch(/unsafe|https?:/)
    const html = await res.text()
    // nothing from elsewhere: the page works offline
    expect(html).not.toMatch(/https?:\/\//)
    expect(html).not.toMatch(/<script>|style=/)
    const js = await fetch(`${server.url}/admin/assets/app.js`)
    expect(js.status).toBe(200)
    expect(js.headers.get("content-type")).toMatch(/^text\/javascript/)
    expect(js.headers.get("x-content-type-options")).toBe("nosniff")
    expect((await fetch(`${server.url}/admin/assets/app.css`)).headers.get("content-type")).toMatch(/^text\/css/)
    for (const p of ["/admin/assets/../main.mjs", "/admin/assets/%2e%2e%2fmain.mjs", "/admin/assets/main.mjs", "/admin/assets/app.js/x"]) {
      const refused = await fetch(`${server.url}${p}`)
      expect(refused.status, p).toBe(404)
      expect(((await refused.json()) as { code: number }).code, p).toBe(-11)
    }
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
  })

  it("logs in with the admin token (a wrong one is refused), kept for the tab's session", async () => {
    await page.goto(`${server.url}/admin`)
    const token = page.locator("input[name=token]")
    await expect.poll(() => token.getAttribute("type")).toBe("password")
    await shot("login")
    await token.fill("not-the-token-at-all")
    await page.locator("button[type=submit]").click()
    await page.getByRole("alert").waitFor()
    expect(await page.getByRole("alert").textContent()).toContain("-2")
    // the refused login is an answer (401), which Chromium reports as a failed resource: not the page's error
    problems.length = 0
    await token.fill(adminToken(server))
    await page.locator("button[type=submit]").click()
    await page.locator("nav a[href='#/events']").waitFor()
    await page.reload()
    await page.locator("nav a[href='#/events']").waitFor()
  })

  it("creates a target from the page", async () => {
    await go("#/targets")
    await page.getByRole("button", { name: "New target" }).click()
    const form = page.locator("form.form")
    await form.locator("input[name=name]").fill("crm")
    await form.locator("input[name=url]").fill(failing.url)
    await form.locator("input[name=events]").fill("call.*")
    await form.locator("input[name=schedule]").fill("0, 50, 100")
    await form.locator("button[type=submit]").click()
    await page.locator("tr[data-target=crm]").waitFor()
    const stored = (await adminApi(server, "GET", "/targets/crm")).body
    expect(stored).toMatchObject({ name: "crm", url: failing.url, events: ["call.*"], retry: { scheduleMs: [0, 50, 100] }, enabled: true })
  })

  it("shows a pushed call's event as it arrives, with its data, raw request and deliveries", async () => {
    await go("#/events")
    await page.locator("p.live").waitFor()
    const memo = JSON.stringify({ cdrId: CDR_ID, cdrExtension: "100008800", cdrTalktime: 35 })
    const res = await fetch(`${server.url}/api/voip.json`, { method: "POST", body: new URLSearchParams({ type: "3", phone: PHONE, peer: "1", memo }) })
    expect(await res.json()).toEqual({ code: 0, message: "OK" })
    // no reload: the page polls
    const row = page.locator("tr[data-event]", { hasText: PHONE })
    await row.waitFor({ timeout: 10_000 })
    expect(await row.textContent()).toContain("call.hangup")
    // the free-text filter (in the browser) keeps it and drops the rest
    await page.locator("input[name=text]").fill(String(CDR_ID))
    await page.getByRole("button", { name: "Apply" }).click()
    await expect.poll(() => page.locator("tr[data-event]").count()).toBe(1)
    await shot("events")
    await row.locator("a").click()
    await page.getByRole("heading", { name: /Event \d+/ }).waitFor()
    await page.locator("pre.raw").waitFor()
    expect(await page.locator("pre.raw").textContent()).toContain(PHONE)
    await page.locator("article[data-delivery]", { hasText: "crm" }).waitFor({ timeout: 10_000 })
    // decoded, one form field a line
    expect(await page.locator("pre.raw").textContent()).toContain(`phone = ${PHONE}`)
    await shot("event")

    // resent to another target from the event's page
    expect((await adminApi(server, "POST", "/targets", { name: "archive", url: fixed.url, events: ["workorder.*"] })).status).toBe(201)
    await page.reload()
    await page.locator("select[name=target]").selectOption("archive")
    await page.getByRole("button", { name: "Resend" }).click()
    await page.getByRole("dialog").getByRole("button", { name: "Resend" }).click()
    await page.getByRole("status").filter({ hasText: /Queued as delivery \d+/ }).waitFor()
    await eventually(() => fixed.received.some((r) => r.body.includes(String(CDR_ID))), 10_000)
    await page.locator("article[data-delivery]", { hasText: "archive" }).waitFor({ timeout: 10_000 })
    fixed.received.length = 0
  })

  it("finds the dead letter with every attempt, fixes the target from the page, redrives it and sees it delivered", async () => {
    await go("#/dead-letters")
    const row = page.locator("tr[data-delivery]", { hasText: "crm" })
    await row.waitFor({ timeout: 15_000 })
    await row.getByRole("button", { name: "3 attempts" }).click()
    const attempts = page.locator("tr.attempts tbody tr")
    await expect.poll(() => attempts.count()).toBe(3)
    expect(await attempts.first().textContent()).toContain("500")
    expect(await page.locator("tr.attempts").textContent()).toContain("crm is down")
    await shot("dead-letters")

    // the fix: the target's URL, edited on the Targets page
    await go("#/targets")
    await page.locator("tr[data-target=crm]").getByRole("button", { name: "Edit" }).click()
    const url = page.locator("form.form input[name=url]")
    expect(await url.inputValue()).toBe(failing.url)
    await url.fill(fixed.url)
    await shot("target-edit")
    await page.locator("form.form button[type=submit]").click()
    await page.getByRole("status").filter({ hasText: "Target crm saved." }).waitFor()
    expect((await adminApi(server, "GET", "/targets/crm")).body).toMatchObject({ url: fixed.url, retry: { scheduleMs: [0, 50, 100] } })

    await go("#/dead-letters")
    await row.waitFor()
    await row.getByRole("button", { name: "Redrive" }).click()
    const dialog = page.getByRole("dialog")
    expect(await dialog.textContent()).toContain("Redrive 1 dead letter(s)?")
    await shot("redrive-confirm", false)
    await dialog.getByRole("button", { name: "Redrive" }).click()
    await page.getByRole("status").filter({ hasText: "Redriven: 1" }).waitFor()
    const got = await eventually(() => fixed.received.find((r) => r.body.includes(String(CDR_ID))), 10_000)
    expect(JSON.parse(got.body)).toMatchObject({ type: "call.hangup", data: { phone: PHONE } })
    await page.locator("p.empty", { hasText: "No dead letters." }).waitFor()

    await go("#/deliveries")
    await page.locator("select[name=status]").selectOption("delivered")
    await page.getByRole("button", { name: "Apply" }).click()
    const delivered = page.locator("tr[data-delivery]", { hasText: "crm" })
    await delivered.waitFor()
    expect(await delivered.textContent()).toContain("delivered")
    await delivered.getByRole("button", { name: "4 attempts" }).click()
    await expect.poll(() => page.locator("tr.attempts tbody tr").count()).toBe(4)
    await shot("deliveries")
  })

  it("redrives all that match a filter after a confirmation that says how many", async () => {
    await adminApi(server, "PATCH", "/targets/crm", { url: failing.url })
    for (const n of [1, 2]) {
      const memo = JSON.stringify({ cdrId: CDR_ID + n, cdrExtension: "100008800" })
      await fetch(`${server.url}/api/voip.json`, { method: "POST", body: new URLSearchParams({ type: "3", phone: PHONE, peer: "1", memo }) })
    }
    await go("#/dead-letters")
    await expect.poll(() => page.locator("tr[data-delivery]").count(), { timeout: 15_000 }).toBe(2)
    await page.locator("select[name=target]").selectOption("crm")
    await page.getByRole("button", { name: "Apply" }).click()
    await adminApi(server, "PATCH", "/targets/crm", { url: fixed.url })
    await page.getByRole("button", { name: "Redrive all matching" }).click()
    expect(await page.getByRole("dialog").textContent()).toContain("Redrive 2 dead letter(s)?")
    await page.getByRole("dialog").getByRole("button", { name: "Redrive" }).click()
    await page.getByRole("status").filter({ hasText: "Redriven: 2" }).waitFor()
    await eventually(() => [1, 2].every((n) => fixed.received.some((r) => r.body.includes(String(CDR_ID + n)))), 10_000)
  })

  it("disables and enables a target from the page", async () => {
    await go("#/targets")
    const row = page.locator("tr[data-target=crm]")
    await row.getByRole("button", { name: "Disable" }).click()
    await row.getByRole("button", { name: "Enable" }).waitFor()
    expect((await adminApi(server, "GET", "/targets/crm")).body).toMatchObject({ enabled: false })
    // its queue and its success rate, from the latest deliveries' attempts (failures and successes both seen above)
    await expect.poll(() => row.textContent()).toMatch(/0 pending · 0 held · 0 dead\s*\d{1,2}%/)
    await shot("targets")
    await row.getByRole("button", { name: "Enable" }).click()
    await row.getByRole("button", { name: "Disable" }).waitFor()
    expect((await adminApi(server, "GET", "/targets/crm")).body).toMatchObject({ enabled: true })
  })

  it("shows a box's lines as they change, without a reload", async () => {
    await go("#/devices")
    const card = page.locator("article[data-device]")
    await card.waitFor()
    expect(await boxStatus([{ ch: 1, state: 2, phone: "13800138000", timelen: 3, peer: 2, serial: 1 }])).toMatchObject({ status: 0 })
    await card.locator("tbody tr", { hasText: "ringing" }).waitFor({ timeout: 10_000 })
    expect(await card.textContent()).toContain("13800138000")
    expect(await boxStatus([{ ch: 1, state: 4, phone: "13800138000", timelen: 9, peer: 2, serial: 1 }])).toMatchObject({ status: 0 })
    await card.locator("tbody tr", { hasText: "talking" }).waitFor({ timeout: 10_000 })
    await shot("devices")
  })

  it("turns capture on and off and downloads the file", async () => {
    await go("#/capture")
    // the state as the page opens: stopped
    await page.locator("dd", { hasText: "stopped" }).waitFor()
    expect((await adminApi(server, "GET", "/capture/status")).body).toMatchObject({ code: 0, capture: { enabled: false, records: 0 } })
    await page.getByRole("button", { name: "Start capturing" }).click()
    await page.getByRole("status").filter({ hasText: "Capturing every request." }).waitFor()
    await fetch(`${server.url}/healthz`)
    const download = page.waitForEvent("download")
    await page.getByRole("button", { name: "Download" }).click()
    const file = await (await download).path()
    expect((await adminApi(server, "GET", "/capture/status")).body).toMatchObject({ code: 0, capture: { enabled: true, records: expect.any(Number) } })
    expect(fs.readFileSync(file, "utf8")).toContain("/healthz")
    await shot("capture")
    await page.getByRole("button", { name: "Stop" }).click()
    await page.getByRole("status").filter({ hasText: "Capture stopped." }).waitFor()
    expect((await adminApi(server, "GET", "/capture/status")).body).toMatchObject({ code: 0, capture: { enabled: false } })
  })

  it("switches to Chinese and back, and fits a phone's screen", async () => {
    await go("#/events")
    await page.locator("select.lang").selectOption("zh")
    await page.locator("nav a[href='#/events']", { hasText: "事件" }).waitFor()
    expect(await page.locator("html").getAttribute("lang")).toBe("zh-CN")
    expect(await page.locator("h2").first().textContent()).toBe("事件")
    // the choice outlives a reload
    await page.reload()
    await page.locator("nav a[href='#/dead-letters']", { hasText: "死信" }).waitFor()
    await page.setViewportSize({ width: 390, height: 844 })
    // nothing wider than the screen but the tables, which scroll inside their own box
    const overflow = await page.evaluate<number>("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    expect(overflow).toBeLessThanOrEqual(0)
    await shot("events-phone-zh", false)
    await page.setViewportSize({ width: 1280, height: 800 })
    await page.locator("select.lang").selectOption("en")
    await page.locator("nav a[href='#/events']", { hasText: "Events" }).waitFor()
  })

  it("a browser whose language is Chinese starts in Chinese", async () => {
    const zh = await browser.newContext({ locale: "zh-CN" })
    const other = await zh.newPage()
    other.on("pageerror", (e) => problems.push(`page error: ${e.message}`))
    await other.goto(`${server.url}/admin`)
    await other.getByRole("button", { name: "登录" }).waitFor()
    await zh.close()
  })

  it("marks a target of the config file, and offers only pausing it (no edit, no delete)", async () => {
    const configured = await startTestServer({ targets: [{ name: "from-file", url: fixed.url, events: ["call.*"] }] })
    const ctx = await browser.newContext({ locale: "en-US" })
    const p = await ctx.newPage()
    p.on("pageerror", (e) => problems.push(`page error: ${e.message}`))
    try {
      await p.goto(`${configured.url}/admin`)
      await p.locator("input[name=token]").fill(adminToken(configured))
      await p.locator("button[type=submit]").click()
      await p.locator("nav a[href='#/events']").waitFor()
      await p.evaluate(`location.hash = "#/targets"`)
      const row = p.locator("tr[data-target='from-file']")
      await row.waitFor()
      expect(await row.locator(".badge", { hasText: "config file" }).count()).toBe(1)
      expect(await row.getByRole("button", { name: "Edit" }).count()).toBe(0)
      expect(await row.getByRole("button", { name: "Delete" }).count()).toBe(0)
      await row.getByRole("button", { name: "Disable" }).click()
      await expect.poll(async () => ((await adminApiOf(configured, "/targets/from-file")) as { enabled: boolean }).enabled).toBe(false)
    } finally {
      await ctx.close()
      await configured.close()
    }
  })

  it("logged no error in the console, threw nothing, and the bridge still serves", async () => {
    expect(problems).toEqual([])
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
  })
}, 120_000)
