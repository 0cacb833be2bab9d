/** A recording that cannot be transcoded to MP3 (its format, rate or channels); apart from the encoder, so naming it loads no encoder. */
import { Schema } from "effect"

export class UnsupportedAudio extends Schema.TaggedError<UnsupportedAudio>()("UnsupportedAudio", { message: Schema.String }) {}
