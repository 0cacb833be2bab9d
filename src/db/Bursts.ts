/**
 * When pushes are arriving in a burst, told from the group commit's batches, with the times
 * passed in (so the rules are tested without waiting). While a burst is held the delivery worker
 * leaves the targets' deliveries for after it: acknowledging comes first.
 */

/** durable writers in one batch that mean a burst is arriving */
export const BUSY_WRITERS = 4

export interface BurstRules {
  /** how long a burst is believed after its last busy batch */
  readonly busyForMs: number
  /** a burst is held at most this long: ingest that keeps up past it is steady load, shared with the deliveries */
  readonly maxMs: number
}

export const BURST_RULES: BurstRules = { busyForMs: 200, maxMs: 10_000 }

export const makeBursts = (rules: BurstRules = BURST_RULES) => {
  let busyUntil = 0
  /** when the burst being held began */
  let from = 0
  const endsAt = () => Math.min(busyUntil, from + rules.maxMs)
  /** when the current stretch of holding began (a burst that goes on after a pause is a new stretch of it) */
  let stretchFrom = 0
  /** time held in the stretches before it */
  let heldBefore = 0
  /**
   * from when heldMs counts the current stretch: moved on at every batch after a quiet gap, held or
   * not, since a burst that goes on past its maxMs moves endsAt() from that gap's start to from +
   * maxMs, which would count the gap as held
   */
  let countedFrom = 0
  return {
    /**
     * A batch of `BUSY_WRITERS` or more durable writers at `now`; true when it begins a hold (nothing
     * was held just before). A burst after a quiet gap at least as long as the last one was held
     * is held afresh; after a shorter gap the last one goes on, its `maxMs` counted from its start
     * (a load that stops for a moment every few seconds would otherwise be held nearly all the
     * time, and the backlog grow without end): the deliveries get at least as long as they waited.
     */
    busyBatch: (now: number): boolean => {
      const began = now >= busyUntil
      if (!began) {
        busyUntil = now + rules.busyForMs
        return false
      }
      // the last stretch is over (at its end, now or before): counted, and a new one may begin
      const lastEnd = endsAt()
      heldBefore += Math.max(0, lastEnd - countedFrom)
      countedFrom = now
      if (now - busyUntil >= lastEnd - from) from = now
      busyUntil = now + rules.busyForMs
      if (now >= endsAt()) return false
      stretchFrom = now
      return true
    },
    /** whether a burst is held at `now` */
    holding: (now: number): boolean => now < endsAt(),
    /** when the burst held now is over (in the past when none is) */
    endsAt,
    /** when the stretch held last (or now) began, and whether `maxMs` cut it */
    stretch: () => ({ from: stretchFrom, cut: busyUntil > from + rules.maxMs }),
    /** how long bursts have held deliveries in all, up to `now` */
    heldMs: (now: number): number => heldBefore + Math.max(0, Math.min(now, endsAt()) - countedFrom)
  }
}
