/**
 * The contract's answer codes (§1.2) as tagged errors. Handlers fail with these; the one
 * function `codeOf` turns them into the code of the envelope, so no handler ever writes a
 * number.
 */
import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Schema } from "effect"

export class UpstreamFailed extends Schema.TaggedError<UpstreamFailed>()("UpstreamFailed", {
  message: Schema.String
}) {}
export class AuthFailed extends Schema.TaggedError<AuthFailed>()("AuthFailed", {
  message: Schema.String
}) {}
export class MethodFailed extends Schema.TaggedError<MethodFailed>()("MethodFailed", {
  message: Schema.String
}) {}
export class NoPermission extends Schema.TaggedError<NoPermission>()("NoPermission", {
  message: Schema.String
}) {}
export class StorageFailed extends Schema.TaggedError<StorageFailed>()("StorageFailed", {
  message: Schema.String
}) {}
export class AlreadyExists extends Schema.TaggedError<AlreadyExists>()("AlreadyExists", {
  message: Schema.String
}) {}
export class NotFound extends Schema.TaggedError<NotFound>()("NotFound", {
  message: Schema.String
}) {}
export class OverLimit extends Schema.TaggedError<OverLimit>()("OverLimit", {
  message: Schema.String
}) {}
export class FileSaveFailed extends Schema.TaggedError<FileSaveFailed>()("FileSaveFailed", {
  message: Schema.String
}) {}
export class InvalidParam extends Schema.TaggedError<InvalidParam>()("InvalidParam", {
  param: Schema.String,
  problem: Schema.String
}) {
  override get message() {
    return `parameter ${this.param}: ${this.problem}`
  }
}

/** §2.1.10: the box's MAC is not registered, or its box belongs to no enterprise yet (3001). */
export class BoxNotRegistered extends Schema.TaggedError<BoxNotRegistered>()("BoxNotRegistered", {
  message: Schema.String
}) {}
/** §2.1.10: `satellite` (the box's MAC) missing, or not a MAC (3002). */
export class BoxMissingSatellite extends Schema.TaggedError<BoxMissingSatellite>()("BoxMissingSatellite", {
  message: Schema.String
}) {}
/** §2.1.10: nothing to hand out to a polling box (3003). */
export class BoxNoMessage extends Schema.TaggedError<BoxNoMessage>()("BoxNoMessage", {
  message: Schema.String
}) {}

export type ApiError =
  | UpstreamFailed
  | AuthFailed
  | MethodFailed
  | NoPermission
  | StorageFailed
  | AlreadyExists
  | NotFound
  | OverLimit
  | FileSaveFailed
  | InvalidParam
  | BoxNotRegistered
  | BoxMissingSatellite
  | BoxNoMessage

const codes: { readonly [K in ApiError["_tag"]]: number } = {
  UpstreamFailed: -1,
  AuthFailed: -2,
  MethodFailed: -3,
  NoPermission: -5,
  StorageFailed: -6,
  AlreadyExists: -10,
  NotFound: -11,
  OverLimit: -12,
  FileSaveFailed: -13,
  InvalidParam: -14,
  BoxNotRegistered: 3001,
  BoxMissingSatellite: 3002,
  BoxNoMessage: 3003
}

export const codeOf = (e: ApiError): number => codes[e._tag]

export const isApiError = (u: unknown): u is ApiError =>
  typeof u === "object" && u !== null && "_tag" in u && typeof u._tag === "string" && u._tag in codes

/** A statement the storage refused, as the contract's -6 (the cause is logged, never answered). */
export const storageFailed = (e: SqlError): Effect.Effect<never, StorageFailed> =>
  Effect.zipRight(Effect.logError("storage statement failed", e.cause), Effect.fail(new StorageFailed({ message: "storage statement failed" })))
