/**
 * The target a work-order type's §2.12.9 push is delivered through: retries, dead letters,
 * redrive as any target's. Its name is the type's, so no target of the config file or the
 * admin API may take a name of this form: saving the type would overwrite it, or it the type's.
 */
export const PUSH_TARGET_PREFIX = "workorder-type-"
export const pushTargetName = (wotId: number) => `${PUSH_TARGET_PREFIX}${wotId}`
/** The type whose push target this is, for a name the type manages; undefined for any other name. */
export const pushTargetType = (name: string) => (name.startsWith(PUSH_TARGET_PREFIX) ? name.slice(PUSH_TARGET_PREFIX.length) : undefined)
