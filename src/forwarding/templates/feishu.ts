/**
 * Feishu / Lark custom bot: `…/open-apis/bot/v2/hook/…`. With a secret, the JSON body carries
 * `timestamp` (seconds) and `sign`, the Base64 of HMAC-SHA256 keyed with
 * `timestamp + "\n" + secret` over an empty message; `code` in the answer.
 */
import { createHmac } from "node:crypto"
import { BotSettings, inBodyCode, type Template } from "./Template.js"

export const feishuSign = (secret: string, seconds: number) => createHmac("sha256", `${seconds}\n${secret}`).update("").digest("base64")

export const feishu: Template = {
  name: "feishu",
  title: "Feishu / Lark custom bot",
  description:
    "Posts text or a card (message \"markdown\") to a Feishu or Lark group. With `secret` (签名校验) every request is signed in its body. Feishu mentions need a user id, not a mobile: no mentions.",
  url: {
    description: "the bot's webhook address (open.feishu.cn or open.larksuite.com, or a private deployment)",
    example: "https://open.feishu.cn/open-apis/bot/v2/hook/8a0c3e5e-xxxx-xxxx-xxxx-xxxxxxxxxxxx",
    check: (url) => (/\/open-apis\/bot\/v2\/hook\/[^/]+$/.test(url.pathname) ? undefined : "expected …/open-apis/bot/v2/hook/<the bot's id>")
  },
  secret: { description: "the bot's signing secret (签名校验)", check: (secret) => (secret.trim() === "" ? "expected the bot's signing secret" : undefined) },
  settings: BotSettings,
  transform: `$settings.message = "text"
    ? {"msg_type": "text", "content": {"text": $message.text}}
    : {"msg_type": "interactive", "card": {"header": {"title": {"tag": "plain_text", "content": $message.title}}, "elements": [{"tag": "markdown", "content": $join([$message.lines], "\n")}]}}`,
  sign: (request, secret, now) => {
    const seconds = Math.floor(now / 1000)
    const body = JSON.parse(request.body) as Record<string, unknown>
    return { ...request, body: JSON.stringify({ timestamp: String(seconds), sign: feishuSign(secret, seconds), ...body }) }
  },
  // 11232: over the rate limit, worth another try
  answer: inBodyCode("code", new Set([11232]), "msg"),
  events: ["call.*", "recording.uploaded", "workorder.*", "callback.status", "delivery.exhausted", "target.*"]
}
