/** WeCom (企业微信) group robot: `…/cgi-bin/webhook/send?key=…`, `errcode` in the answer. */
import { BotSettings, inBodyCode, needsQuery, type Template } from "./Template.js"

export const wecom: Template = {
  name: "wecom",
  title: "WeCom (企业微信) group robot",
  description:
    "Posts text or markdown to a WeCom group. Mentions by mobile (mentioned_mobile_list) work with message \"text\" only: WeCom's markdown cannot @ by mobile. The robot takes no secret: its key in the url is the credential.",
  url: {
    description: "the robot's webhook address as WeCom shows it (another host for a private deployment)",
    example: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa",
    check: (url) => (url.pathname.endsWith("/cgi-bin/webhook/send") ? needsQuery(url, "key", "…/cgi-bin/webhook/send?key=…") : "expected …/cgi-bin/webhook/send?key=…")
  },
  settings: BotSettings,
  transform: `$settings.message = "text"
    ? {"msgtype": "text", "text": {"content": $message.text, "mentioned_mobile_list": [$message.mobiles]}}
    : {"msgtype": "markdown", "markdown": {"content": $message.markdown}}`,
  // -1 system busy, 45009 / 45033 over the rate limit: worth another try; anything else is this request refused
  answer: inBodyCode("errcode", new Set([-1, 45009, 45033]), "errmsg"),
  events: ["call.*", "recording.uploaded", "workorder.*", "callback.status", "delivery.exhausted", "target.*"]
}
