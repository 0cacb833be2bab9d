/**
 * DingTalk (钉钉) custom robot: `…/robot/send?access_token=…`. With a secret ("加签"), the
 * query carries `timestamp` (ms) and `sign`, the URL-encoded Base64 of HMAC-SHA256 keyed with
 * the secret over `timestamp + "\n" + secret`; DingTalk refuses a signature over an hour old.
 */
import { createHmac } from "node:crypto"
import { BotSettings, inBodyCode, needsQuery, type Template } from "./Template.js"

export const dingtalkSign = (secret: string, timestamp: number) => createHmac("sha256", secret).update(`${timestamp}\n${secret}`).digest("base64")

export const dingtalk: Template = {
  name: "dingtalk",
  title: "DingTalk (钉钉) custom robot",
  description: "Posts text or markdown to a DingTalk group, @-mentioning the extension's mobile (at.atMobiles). With `secret` (加签, SEC…) every request is signed.",
  url: {
    description: "the robot's webhook address as DingTalk shows it (another host for a private deployment)",
    example: "https://oapi.dingtalk.com/robot/send?access_token=6c9a0b…",
    check: (url) => (url.pathname.endsWith("/robot/send") ? needsQuery(url, "access_token", "…/robot/send?access_token=…") : "expected …/robot/send?access_token=…")
  },
  secret: {
    description: "the robot's signing secret (加签), SEC…",
    check: (secret) => (/^SEC[0-9A-Za-z]+$/.test(secret) ? undefined : "expected the robot's signing secret, SEC followed by letters and digits")
  },
  settings: BotSettings,
  transform: `(
    $at := {"atMobiles": [$message.mobiles], "isAtAll": false};
    $settings.message = "text"
      ? {"msgtype": "text", "text": {"content": $message.text}, "at": $at}
      : {"msgtype": "markdown", "markdown": {"title": $message.title, "text": $message.markdown}, "at": $at}
  )`,
  sign: (request, secret, now) => {
    const url = new URL(request.url)
    url.searchParams.set("timestamp", String(now))
    url.searchParams.set("sign", dingtalkSign(secret, now))
    return { ...request, url: url.toString() }
  },
  // -1 system busy, 130101 more than 20 messages a minute: worth another try
  answer: inBodyCode("errcode", new Set([-1, 130101]), "errmsg"),
  events: ["call.*", "recording.uploaded", "workorder.*", "callback.status", "delivery.exhausted", "target.*"]
}
