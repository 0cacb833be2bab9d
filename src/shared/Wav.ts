/** Audio the bridge makes itself: the box simulator's recordings, the example call flow's sound. */

/** A mono 8 kHz WAV file around its samples: 16-bit PCM (format 1) or 8-bit A-law (format 6). */
export const wavOf = (data: Buffer, format: "pcm" | "alaw" = "pcm"): Buffer => {
  const rate = 8000
  const bytesPerSample = format === "pcm" ? 2 : 1
  const header = Buffer.alloc(44)
  header.write("RIFF", 0, "ascii")
  header.writeUInt32LE(36 + data.length, 4)
  header.write("WAVEfmt ", 8, "ascii")
  header.writeUInt32LE(16, 16)
  header.writeUInt16LE(format === "pcm" ? 1 : 6, 20)
  header.writeUInt16LE(1, 22)
  header.writeUInt32LE(rate, 24)
  header.writeUInt32LE(rate * bytesPerSample, 28)
  header.writeUInt16LE(bytesPerSample, 32)
  header.writeUInt16LE(bytesPerSample * 8, 34)
  header.write("data", 36, "ascii")
  header.writeUInt32LE(data.length, 40)
  return Buffer.concat([header, data])
}

/** A mono 16-bit 8 kHz WAV of a tone: a real recording's format, a few KB a second. */
export const toneWav = (seconds: number, hz = 440): Buffer => {
  const rate = 8000
  const samples = Math.max(1, Math.round(seconds * rate))
  const data = Buffer.alloc(samples * 2)
  for (let i = 0; i < samples; i++) data.writeInt16LE(Math.round(Math.sin((2 * Math.PI * hz * i) / rate) * 8000), i * 2)
  return wavOf(data)
}
