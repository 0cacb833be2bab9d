/**
 * The one table of implemented jsondata methods. A method of the contract (schemas/index.ts)
 * that is not here answers -3 saying it is not implemented yet.
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
import type { Implementation } from "./Implementation.js"

export const implementations: ReadonlyArray<Implementation> = [...extensions, ...blacklist, ...records, ...messaging, ...areas, ...box, ...crm, ...customers, ...sms, ...ivr, ...flows, ...callbacks, ...tasks]

export const implementationsByName: ReadonlyMap<string, Implementation> = new Map(
  implementations.flatMap((impl) => [impl.spec.name, ...impl.spec.aliases].map((n) => [n, impl] as const))
)
