/** Recordings for tests: a WAV made on the spot, and the §2.1.5 upload as the mobile app sends it. */
import * as crypto from "node:crypto"
import { wavOf } from "../../src/shared/Wav.js"
import { creds } from "./TestServer.js"

/** A mono 8 kHz WAV: 16-bit PCM, or 8-bit A-law (format 6), of a 440 Hz tone. */
export const wav = (seconds: number, format: "pcm" | "alaw" = "pcm") => {
  const rate = 8000
  const n = Math.floor(seconds * rate)
  const bytesPerSample = format === "pcm" ? 2 : 1
  const data = Buffer.alloc(n * bytesPerSample)
  for (let i = 0; i < n; i++) {
    const v = Math.round(Math.sin((2 * Math.PI * 440 * i) / rate) * 12000)
    if (format === "pcm") data.writeInt16LE(v, i * 2)
    else data[i] = (i * 7) & 0xff
  }
  return wavOf(data, format)
}

/** `upload_record_file.html`: the name in Base64 unless told otherwise, the MD5 of the bytes unless one is given. */
export const uploadRecording = async (
  target: { url: string },
  file: Buffer,
  name: string,
  opts: { base64?: boolean; md5?: string; who?: Record<string, string> } = {}
) => {
  const fd = new FormData()
  for (const [k, v] of Object.entries(opts.who ?? creds())) fd.append(k, v)
  fd.append("fileName", opts.base64 === false ? name : Buffer.from(name, "utf8").toString("base64"))
  fd.append("isBase", opts.base64 === false ? "false" : "true")
  fd.append("fileMd5", opts.md5 ?? crypto.createHash("md5").update(file).digest("hex"))
  fd.append("fileGsm", new Blob([file]), "blob")
  const res = await fetch(`${target.url}/voip/api/upload_record_file.html`, { method: "POST", body: fd })
  return Object.assign((await res.json()) as { code: number; message: string; path?: string; size?: number }, { httpStatus: res.status })
}
