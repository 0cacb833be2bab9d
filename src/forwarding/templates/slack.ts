/** Slack incoming webhook: `text`, and a mrkdwn section block for message "markdown"; Slack answers with HTTP status codes. */
import { BotSettings, type Template } from "./Template.js"

export const slack: Template = {
  name: "slack",
  title: "Slack incoming webhook",
  description:
    "Posts to the channel of a Slack incoming webhook: `text`, with a mrkdwn block for message \"markdown\". Slack mentions need a member id, not a mobile: no mentions. Slack answers 4xx for a bad payload or a removed webhook (dead letter) and 429 when over its limit (retried).",
  url: {
    description: "the incoming webhook's address as Slack shows it",
    example: "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
    check: (url) => (/^(.*)\/services\/[^/]+\/[^/]+\/[^/]+$/.test(url.pathname) ? undefined : "expected …/services/T…/B…/…")
  },
  settings: BotSettings,
  transform: `$settings.message = "text"
    ? {"text": $message.text}
    : {"text": $message.text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": $message.mrkdwn}}]}`,
  events: ["call.*", "recording.uploaded", "workorder.*", "callback.status", "delivery.exhausted", "target.*"]
}
