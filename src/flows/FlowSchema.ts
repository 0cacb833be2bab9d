/**
 * A call flow (§2.10.1 语音外呼流程) as config and the admin API give it: what an automatic call
 * plays, whether and when it transfers to an agent, records, and sends an SMS. The same
 * settings findCallFlow answers as `cfl*`.
 */
import { Schema } from "effect"

const int = (min: number, max: number, description: string) => Schema.Int.pipe(Schema.between(min, max)).annotations({ description })

export const FlowSettings = {
  /** a sound under <dataDir>/sound/<enterprise>/ by its file name, or "" for none */
  sound: Schema.optionalWith(Schema.String.pipe(Schema.maxLength(200)), { default: () => "" }).annotations({ description: "the sound's file name (see PUT …/sounds/:name), \"\" for none" }),
  transferMode: Schema.optionalWith(int(1, 5, "1 只播放不转座席, 2 不播放直接转座席, 3 播放中转座席, 4 播放完后立即转座席, 5 仅按键转接"), { default: () => 3 }),
  transferTimes: Schema.optionalWith(int(0, 3600, "播放时长（秒）"), { default: () => 30 }),
  isRecord: Schema.optionalWith(int(0, 2, "0 不录音, 1 转接座席录音, 2 接通后录音"), { default: () => 0 }),
  sendInterval: Schema.optionalWith(int(0, 86_400, "发送间隔（秒）"), { default: () => 0 }),
  smsStatus: Schema.optionalWith(int(0, 4, "0 不发送, 1 无条件发送, 2 未接通发送, 3 接通发送, 4 接通座席发送"), { default: () => 0 }),
  smsTimes: Schema.optionalWith(int(0, 3600, "接通后多长时间发送（秒）"), { default: () => 0 }),
  smsContent: Schema.optionalWith(Schema.String.pipe(Schema.maxLength(70)), { default: () => "" }).annotations({ description: "发送短信内容（70 字以内）" }),
  groupCallTimes: Schema.optionalWith(int(1, 600, "播号时长（秒）"), { default: () => 30 })
}

export const FlowName = Schema.String.pipe(
  Schema.minLength(1),
  Schema.maxLength(100),
  Schema.filter((s) => !/[\u0000-\u001f]/.test(s) || "expected no control characters")
)

/** A sound's file name: one plain name with an audio extension, nothing that could leave its directory. */
export const SoundName = Schema.String.pipe(
  Schema.filter((s) => /^[\p{L}\p{N}_.-]{1,100}\.(wav|mp3|gsm)$/iu.test(s) && !s.startsWith(".") || "expected a file name such as welcome.wav (letters, digits, _ . -; .wav, .mp3 or .gsm)")
)

/** A flow in the config: its enterprise, its name (the key), its settings; `soundFile` a local file copied in at start. */
export const FlowConfig = Schema.Struct({
  enterprise: Schema.String.pipe(Schema.pattern(/^\d{6}$/, { message: () => "expected a 6-digit enterprise number" })),
  name: FlowName,
  soundFile: Schema.optional(Schema.String),
  ...FlowSettings
})
export type FlowConfig = typeof FlowConfig.Type

export const FlowBody = Schema.Struct({ name: FlowName, ...FlowSettings })
export const FlowPatch = Schema.Struct({
  name: Schema.optional(FlowName),
  sound: Schema.optional(Schema.String.pipe(Schema.maxLength(200))),
  transferMode: Schema.optional(int(1, 5, "转接方式")),
  transferTimes: Schema.optional(int(0, 3600, "播放时长（秒）")),
  isRecord: Schema.optional(int(0, 2, "录音状态")),
  sendInterval: Schema.optional(int(0, 86_400, "发送间隔（秒）")),
  smsStatus: Schema.optional(int(0, 4, "短信发送状态")),
  smsTimes: Schema.optional(int(0, 3600, "接通后多长时间发送（秒）")),
  smsContent: Schema.optional(Schema.String.pipe(Schema.maxLength(70))),
  groupCallTimes: Schema.optional(int(1, 600, "播号时长（秒）"))
})
export const SoundBody = Schema.Struct({
  base64: Schema.String.annotations({ description: "the sound's bytes in Base64 (within http.bodyLimitBytes)" })
})

export const FlowItem = Schema.Struct({
  id: Schema.Number,
  enterprise: Schema.String,
  name: Schema.String,
  sound: Schema.String,
  wfPath: Schema.String.annotations({ description: "<enterprise>/<sound>, served at /voip/sound/{wfPath}" }),
  transferMode: Schema.Number,
  transferTimes: Schema.Number,
  isRecord: Schema.Number,
  sendInterval: Schema.Number,
  smsStatus: Schema.Number,
  smsTimes: Schema.Number,
  smsContent: Schema.String,
  groupCallTimes: Schema.Number,
  origin: Schema.String.annotations({ description: "example, config or admin" })
})
export type FlowItem = typeof FlowItem.Type
