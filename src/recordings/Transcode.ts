/**
 * WAV → MP3 with a pure-JS encoder (lamejs). Call recordings are WAV with PCM (8/16-bit),
 * A-law or µ-law samples; those are decoded to 16-bit PCM here. GSM 6.10 WAVs have no
 * well-kept pure-JS decoder on npm: they are refused, and served as they are with ismp3=0.
 */
import { Mp3Encoder } from "@breezystack/lamejs"
import { UnsupportedAudio } from "./UnsupportedAudio.js"



interface Wav {
  readonly format: number
  readonly channels: number
  readonly sampleRate: number
  readonly bitsPerSample: number
  readonly data: Buffer
}

const FORMAT = { pcm: 1, alaw: 6, mulaw: 7, extensible: 0xfffe } as const

export const parseWav = (file: Buffer): Wav => {
  if (file.length < 12 || file.toString("ascii", 0, 4) !== "RIFF" || file.toString("ascii", 8, 12) !== "WAVE")
    throw new UnsupportedAudio({ message: "not a RIFF/WAVE file" })
  let offset = 12
  let fmt: Omit<Wav, "data"> | undefined
  while (offset + 8 <= file.length) {
    const id = file.toString("ascii", offset, offset + 4)
    const size = file.readUInt32LE(offset + 4)
    const body = offset + 8
    if (id === "fmt ") {
      let format = file.readUInt16LE(body)
      // WAVE_FORMAT_EXTENSIBLE names the real format in its sub-format GUID's first two bytes
      if (format === FORMAT.extensible && size >= 26) format = file.readUInt16LE(body + 24)
      fmt = { format, channels: file.readUInt16LE(body + 2), sampleRate: file.readUInt32LE(body + 4), bitsPerSample: file.readUInt16LE(body + 14) }
    } else if (id === "data") {
      if (!fmt) throw new UnsupportedAudio({ message: "data chunk before fmt chunk" })
      return { ...fmt, data: file.subarray(body, Math.min(file.length, body + size)) }
    }
    offset = body + size + (size % 2)
  }
  throw new UnsupportedAudio({ message: "no data chunk" })
}

/** ITU-T G.711 expansions. */
const alaw = (a: number): number => {
  a ^= 0x55
  const sign = a & 0x80
  const exponent = (a & 0x70) >> 4
  let magnitude = ((a & 0x0f) << 4) + 8
  if (exponent !== 0) magnitude = (magnitude + 0x100) << (exponent - 1)
  return sign ? magnitude : -magnitude
}
const mulaw = (u: number): number => {
  u = ~u & 0xff
  const sign = u & 0x80
  const exponent = (u >> 4) & 0x07
  const magnitude = ((((u & 0x0f) << 3) + 0x84) << exponent) - 0x84
  return sign ? -magnitude : magnitude
}

const toPcm16 = (wav: Wav): Int16Array => {
  const { data, format, bitsPerSample } = wav
  if (format === FORMAT.pcm && bitsPerSample === 16) {
    const out = new Int16Array(Math.floor(data.length / 2))
    for (let i = 0; i < out.length; i++) out[i] = data.readInt16LE(i * 2)
    return out
  }
  if (format === FORMAT.pcm && bitsPerSample === 8) return Int16Array.from(data, (b) => (b - 128) << 8)
  if (format === FORMAT.alaw && bitsPerSample === 8) return Int16Array.from(data, alaw)
  if (format === FORMAT.mulaw && bitsPerSample === 8) return Int16Array.from(data, mulaw)
  throw new UnsupportedAudio({ message: `WAV format ${format} with ${bitsPerSample}-bit samples cannot be converted to MP3` })
}

const LAME_RATES = new Set([8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000])

export const wavToMp3 = (file: Buffer): Buffer => {
  const wav = parseWav(file)
  if (wav.channels < 1 || wav.channels > 2) throw new UnsupportedAudio({ message: `${wav.channels} channels cannot be converted to MP3` })
  if (!LAME_RATES.has(wav.sampleRate)) throw new UnsupportedAudio({ message: `sample rate ${wav.sampleRate} Hz cannot be converted to MP3` })
  const samples = toPcm16(wav)
  const kbps = wav.sampleRate <= 16000 ? 32 : 64
  const encoder = new Mp3Encoder(wav.channels, wav.sampleRate, kbps)
  const chunks: Array<Uint8Array> = []
  const frame = 1152 * 8
  if (wav.channels === 1) {
    for (let i = 0; i < samples.length; i += frame) chunks.push(encoder.encodeBuffer(samples.subarray(i, i + frame)))
  } else {
    const frames = Math.floor(samples.length / 2)
    const left = new Int16Array(frames)
    const right = new Int16Array(frames)
    for (let i = 0; i < frames; i++) {
      left[i] = samples[2 * i]!
      right[i] = samples[2 * i + 1]!
    }
    for (let i = 0; i < frames; i += frame) chunks.push(encoder.encodeBuffer(left.subarray(i, i + frame), right.subarray(i, i + frame)))
  }
  chunks.push(encoder.flush())
  return Buffer.concat(chunks.map((c) => Buffer.from(c.buffer, c.byteOffset, c.byteLength)))
}
