import * as fs from "node:fs"
import * as path from "node:path"
import { Effect, Either } from "effect"
import { describe, expect, it } from "vitest"
import { loadConfig } from "../src/config/AppConfig.js"
import { tempDir } from "./support/TestServer.js"

const load = (env: Record<string, string>, cwd = tempDir()) => Effect.runSync(Effect.either(loadConfig({ env, cwd })))

describe("configuration", () => {
  it("has the documented defaults", () => {
    const c = Either.getOrThrow(load({}))
    expect(c).toMatchObject({ port: 8080, host: "0.0.0.0", dataDir: "./data", tz: "Asia/Shanghai", logLevel: "info" })
    expect(c.bootstrap).toMatchObject({ enabled: true, compNumber: "100008", adminSuffix: 800, adminPassword: "02367073578" })
    expect(c.db.synchronous).toBe("FULL")
  })

  it("reads config/bridge.json when present, and the environment wins over it", () => {
    const cwd = tempDir()
    fs.mkdirSync(path.join(cwd, "config"))
    fs.writeFileSync(path.join(cwd, "config/bridge.json"), JSON.stringify({ port: 9000, host: "127.0.0.1", bootstrap: { enabled: false } }))
    const fromFile = Either.getOrThrow(load({}, cwd))
    expect(fromFile).toMatchObject({ port: 9000, host: "127.0.0.1" })
    expect(fromFile.bootstrap.enabled).toBe(false)
    expect(fromFile.bootstrap.compNumber).toBe("100008")
    const withEnv = Either.getOrThrow(load({ BRIDGE_PORT: "9100", BRIDGE_TZ: "UTC", LOG_LEVEL: "warn" }, cwd))
    expect(withEnv).toMatchObject({ port: 9100, host: "127.0.0.1", tz: "UTC", logLevel: "warning" })
  })

  it("accepts config/bridge.example.json as it is", () => {
    const example = path.resolve(import.meta.dirname, "../config/bridge.example.json")
    expect(Either.isRight(load({ BRIDGE_CONFIG: example }))).toBe(true)
  })

  it("reads the file named by BRIDGE_CONFIG", () => {
    const dir = tempDir()
    const file = path.join(dir, "my.json")
    fs.writeFileSync(file, JSON.stringify({ dataDir: "/var/lib/bridge" }))
    expect(Either.getOrThrow(load({ BRIDGE_CONFIG: file })).dataDir).toBe("/var/lib/bridge")
  })

  it.each([
    [{ BRIDGE_PORT: "abc" }, /config key "port" \(from BRIDGE_PORT\)/],
    [{ BRIDGE_PORT: "70000" }, /port.*0 to 65535/],
    [{ BRIDGE_TZ: "Mars/Olympus" }, /config key "tz" \(from BRIDGE_TZ\).*IANA time zone/],
    [{ LOG_LEVEL: "chatty" }, /config key "logLevel"/],
    [{ BRIDGE_ADMIN_TOKEN: "short" }, /adminToken.*at least 16/],
    [{ BRIDGE_CONFIG: "/nonexistent/bridge.json" }, /config file \/nonexistent\/bridge.json/]
  ])("refuses %o with a message naming the key", (env, message) => {
    const result = load(env)
    expect(Either.isLeft(result)).toBe(true)
    if (Either.isLeft(result)) expect(result.left.message).toMatch(message)
  })

  it("names the key of a bad value in the config file", () => {
    const dir = tempDir()
    const file = path.join(dir, "bad.json")
    fs.writeFileSync(file, JSON.stringify({ bootstrap: { adminSuffix: 42 } }))
    const result = load({ BRIDGE_CONFIG: file })
    expect(Either.isLeft(result) && result.left.message).toMatch(/config key "bootstrap.adminSuffix".*400 to 899/)
  })

  it("refuses a misspelt key, naming it: a guard left off by a typo must not pass unseen", () => {
    const dir = tempDir()
    const file = path.join(dir, "typo.json")
    fs.writeFileSync(file, JSON.stringify({ receive: { callback: { path: "/api/callback.json", tokn: "s3cret", allowFrom: [] } } }))
    const result = load({ BRIDGE_CONFIG: file })
    expect(Either.isLeft(result) && result.left.message).toMatch(/config key "receive.callback.tokn".*is unexpected/)
    fs.writeFileSync(file, JSON.stringify({ targets: [{ name: "crm", url: "http://127.0.0.1:9000/hook", secrett: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }] }))
    expect(Either.isLeft(load({ BRIDGE_CONFIG: file }))).toBe(true)
  })

  it("refuses a config file that is not JSON", () => {
    const dir = tempDir()
    const file = path.join(dir, "bad.json")
    fs.writeFileSync(file, "{ port: ")
    const result = load({ BRIDGE_CONFIG: file })
    expect(Either.isLeft(result) && result.left.message).toMatch(/bad.json/)
  })
})
