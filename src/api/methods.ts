/**
 * The one table of jsondata methods' implementations: every method of the contract
 * (schemas/index.ts) has one, checked when this module loads.
 */
import { handlers as areas } from "../areas/handlers.js"
import { handlers as blacklist } from "../blacklist/handlers.js"
import { handlers as box } from "../box/handlers.js"
import { handlers as callbacks } from "../callbacks/handlers.js"
import { handlers as crm } from "../crm/handlers.js"
import { handlers as customers } from "../customers/handlers.js"
import { handlers as extensions } from "../extensions/handlers.js"
import { handlers as flows } from "../flows/handlers.js"
import { handlers as ivr } from "../ivr/IvrDialing.js"
import { handlers as messaging } from "../messaging/handlers.js"
import { handlers as records } from "../records/handlers.js"
import { handlers as sms } from "../sms/handlers.js"
import { handlers as tasks } from "../tasks/handlers.js"
import { methodsByName } from "../../schemas/index.js"
import type { AnyMethodSpec } from "../../schemas/Method.js"
import type { Implementation } from "./Implementation.js"

export const implementations: ReadonlyArray<Implementation> = [...extensions, ...blacklist, ...records, ...messaging, ...areas, ...box, ...crm, ...customers, ...sms, ...ivr, ...flows, ...callbacks, ...tasks]

export const implementationsByName: ReadonlyMap<string, Implementation> = new Map(
  implementations.flatMap((impl) => [impl.spec.name, ...impl.spec.aliases].map((n) => [n, impl] as const))
)

// a method of the contract without its implementation is a build mistake, not a request's
const missing = [...new Set(methodsByName.values())].filter((spec) => !implementationsByName.has(spec.name)).map((spec) => spec.name)
if (missing.length > 0) throw new Error(`jsondata methods without an implementation: ${missing.join(", ")}`)

/** The implementation of a method of the contract (every one has one: see above). */
export const implementationOf = (spec: AnyMethodSpec): Implementation => implementationsByName.get(spec.name)!
