/** The contract's schemas decode what real senders send (the contract's own requests), and refuse junk with a named problem. */
import * as fs from "node:fs"
import * as path from "node:path"
import { Either, ParseResult, Schema, SchemaAST } from "effect"
import { describe, expect, it } from "vitest"
import * as box from "../schemas/box.js"
import { methods, methodsByName } from "../schemas/index.js"
import { descriptionOf } from "../schemas/Method.js"
import * as push from "../schemas/push.js"
import { workOrderEndpoints } from "../schemas/workorder.js"
import { toRawParams, type Pairs } from "../src/http/Params.js"

const fixtures = fs
  .readFileSync(path.join(import.meta.dirname, "fixtures/contract-requests.jsonl"), "utf8")
  .split("\n")
  .filter(Boolean)
  .map((l) => JSON.parse(l) as { seed: string; path: string; query?: string; form?: Record<string, string> })

const paramsOf = (f: { query?: string; form?: Record<string, string> }) => {
  const pairs: Pairs = []
  if (f.query) for (const [k, v] of new URLSearchParams(f.query)) pairs.push([k, v])
  if (f.form) for (const [k, v] of Object.entries(f.form)) pairs.push([k, v])
  return toRawParams(pairs)
}

const decode = (schema: { readonly ast: SchemaAST.AST }, input: unknown) =>
  Schema.decodeUnknownEither(Schema.make<unknown>(schema.ast), { onExcessProperty: "ignore" })(input)
const problems = (e: Either.Either<unknown, ParseResult.ParseError>) =>
  Either.isLeft(e) ? ParseResult.ArrayFormatter.formatErrorSync(e.left).map((i) => `${i.path.join(".")}: ${i.message}`) : []

describe("the contract as schemas", () => {
  it("covers every jsondata method the contract documents", () => {
    const names = [
      "getExtension", "getExtensions", "sendMsg", "recvMsg", "addCdrRecord", "addSmsRecord", "getTaskDetailPhone", "savecustomer",
      "setUserCheckInOut", "registerExtension", "systemChannels", "getChannelList", "smsSend", "setShowPhone", "setIvrDialing",
      "addBlacklists", "delBlacklists", "getBlacklists", "callbackPhone", "getCallbackList", "findDialrecord", "phoneAudit",
      "getPhoneAudit", "getAreaPhone", "sendTelCall", "getCustomersPage", "getcustomer", "getTableFields", "saveCustomer",
      "delcustomer.html", "getCodes.html", "findDialrecord.html", "setCustomerLock", "getCustomerSales", "setCustomerSales",
      "getMemos", "addMemo", "findCallFlow", "addTask", "findTaskMx", "addExtension", "editExtension", "delExtension",
      "initExtensionPassword", "sendCallAgiPhoneSms", "CallAgiverificationCode", "setExteMobile"
    ]
    for (const n of names) expect(methodsByName.has(n), n).toBe(true)
    expect(methods.length).toBeGreaterThanOrEqual(44)
    expect(workOrderEndpoints.map((e) => e.name)).toEqual(["GetDeptPersonTree", "GetWorkOrderType", "loadWorkCode", "GetWorkList", "UpdateWorkOrder", "GetWorkOrderStep", "upload", "GetWorkInfoFile"])
  })

  it("gives every parameter and answer field the contract's description", () => {
    for (const m of methods) {
      for (const [name, field] of Object.entries(m.params.fields)) expect(descriptionOf(field), `${m.name}.${name}`).toBeTypeOf("string")
    }
  })

  it("decodes the contract's own requests", () => {
    const byseed = (seed: string) => fixtures.filter((f) => f.seed === seed)
    const sendMsg = decode(methodsByName.get("sendMsg")!.params, paramsOf(byseed("2.1.3")[0]!))
    expect(problems(sendMsg)).toEqual([])
    for (const f of byseed("2.4.2")) expect(problems(decode(methodsByName.get("phoneAudit")!.params, paramsOf(f)))).toEqual([])
    const callPush = decode(push.CallPush, paramsOf(byseed("2.10.4")[0]!))
    expect(Either.getOrThrow(callPush)).toMatchObject({ type: 3, peer: 1, phone: "13688888888", memo: { parsed: true, value: { cdrId: 2323, cdrExtension: "2323232" } } })
    const update = decode(workOrderEndpoints.find((e) => e.name === "UpdateWorkOrder")!.params, paramsOf(byseed("2.12.5")[0]!))
    expect(Either.getOrThrow(update)).toMatchObject({ wotId: "282983707131016", custName: "2434", woOther1: "ldksjfalksj", cpPhone: "63846384" })
    const [poll, status] = byseed("2.1.10")
    expect(Either.getOrThrow(decode(box.getMessageList, paramsOf(poll!)))).toMatchObject({ satellite: "00:00:00:00:01" })
    expect(Either.getOrThrow(decode(box.channelstatus, paramsOf(status!)))).toMatchObject({
      satellite: "00:00:00:00:01",
      time: 1563957071394,
      status: { diskUsagePercent: 5, diskStatus: 0, channels: [{ ch: 1, state: 4, phone: "13688888888", timelen: 12, peer: 1 }] }
    })
  })

  it("parses relaxed JSON memos and keeps an unparseable one raw", () => {
    const relaxed = Either.getOrThrow(decode(push.CallPush, { type: "1", peer: "2", memo: "{cdrId:7,exteName:'张三'}" }))
    expect(relaxed).toMatchObject({ memo: { parsed: true, value: { cdrId: 7, exteName: "张三" } } })
    const broken = Either.getOrThrow(decode(push.CallPush, { type: "1", peer: "2", memo: "{cdrId:" }))
    expect(broken).toMatchObject({ memo: { raw: "{cdrId:", parsed: false, value: undefined } })
  })

  it("reads indexed lists (cpPhone[0], cpPhone[1]) and plain repeats alike", () => {
    const spec = methodsByName.get("saveCustomer")!
    const indexed = Either.getOrThrow(decode(spec.params, toRawParams([["cpPhone[1]", "139"], ["cpPhone[0]", "138"], ["cpType[0]", "常用电话"]])))
    expect(indexed).toMatchObject({ cpPhone: ["138", "139"] })
    const repeated = Either.getOrThrow(decode(spec.params, toRawParams([["cpPhone", "138"], ["cpPhone", "139"]])))
    expect(repeated).toMatchObject({ cpPhone: ["138", "139"] })
  })

  it.each([
    ["findDialrecord", { statrTime: "2014-02-30 00:00:00" }, /^statrTime: expected a time as yyyy-mm-dd hh:nn:ss/],
    ["findDialrecord", { cdrPeer: "9" }, /^cdrPeer: expected an integer from 1 to 5, got 9/],
    ["addTask", { data: "[{phone:'x'}]", addType: "1", name: "t" }, /^data\.0\.phone: expected a telephone number/],
    ["addTask", { data: "not json", addType: "1", name: "t" }, /^data: expected a JSON array/],
    ["callbackPhone", { sourcePhone: "13800000000", descPhone: "13900000000", callbackUrl: Buffer.from("ftp://x").toString("base64") }, /^callbackUrl: expected the base64 of an http\(s\) URL/],
    ["sendMsg", { kind: "8", client: "1", phone: "1" }, /^kind: expected an integer from 1 to 7/]
  ])("refuses bad %s params with a named problem", (name, params, message) => {
    const result = decode(methodsByName.get(name)!.params, params)
    expect(problems(result)[0]).toMatch(message)
  })

  it("refuses a push without the fields the contract requires", () => {
    expect(problems(decode(push.CallPush, { peer: "1" }))[0]).toBe("type: is missing")
    expect(problems(decode(push.WorkOrderPush, { woId: "1", wo_wotId: "2", wotName: "x", wo_action: "5" }))[0]).toMatch(/^wo_action: expected an integer from 1 to 4/)
    expect(problems(decode(push.CallbackPush, { cbkId: "1" }))[0]).toBe("cbkStatus: is missing")
  })
})
