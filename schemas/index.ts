/**
 * The whole contract, as data: every jsondata method (by `method=` name and aliases).
 * The dispatcher, the OpenAPI document and the tests all read this one table.
 */
import type { AnyMethodSpec } from "./Method.js"
import * as blacklist from "./blacklist.js"
import * as customers from "./customers.js"
import * as extensions from "./extensions.js"
import * as records from "./records.js"
import * as system from "./system.js"
import * as tasks from "./tasks.js"

const isMethod = (x: unknown): x is AnyMethodSpec =>
  typeof x === "object" && x !== null && "name" in x && "params" in x && "result" in x && "section" in x

const collect = (...modules: ReadonlyArray<Record<string, unknown>>): ReadonlyArray<AnyMethodSpec> =>
  modules.flatMap((m) => Object.values(m).filter(isMethod))

export const methods: ReadonlyArray<AnyMethodSpec> = collect(extensions, blacklist, records, customers, tasks, system)

/** `method=` value (name or alias) → spec */
export const methodsByName: ReadonlyMap<string, AnyMethodSpec> = new Map(
  methods.flatMap((m) => [m.name, ...m.aliases].map((n) => [n, m] as const))
)
