/** Every template a target may name, one file each. */
import { dingtalk } from "./dingtalk.js"
import { feishu } from "./feishu.js"
import { hubspot } from "./hubspot.js"
import { odoo } from "./odoo.js"
import { salesforce } from "./salesforce.js"
import { slack } from "./slack.js"
import type { Template } from "./Template.js"
import { wecom } from "./wecom.js"

export const TEMPLATES: ReadonlyArray<Template> = [wecom, dingtalk, feishu, slack, hubspot, salesforce, odoo]

const byName = new Map(TEMPLATES.map((t) => [t.name, t]))
export const templateNamed = (name: string): Template | undefined => byName.get(name)
