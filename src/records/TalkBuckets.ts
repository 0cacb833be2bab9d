/**
 * Talk-time buckets of cdr_hour_talk_counts (migration 0030). Each bound is a bucket of its own,
 * with the open interval up to the next bound after it: bucket 2i holds exactly TALK_BOUNDS[i],
 * bucket 2i + 1 what lies strictly between it and the next bound (the last: everything above),
 * -1 what lies below 0. So for a filter on a bound, `talk > s` is `bucket > bucket(s)` and
 * `talk < s` is `bucket < bucket(s)`, both exact — the total needs no call read for its bucket.
 * A filter between bounds would need its bucket split, which only the calls themselves can do.
 *
 * The bounds are the talk times a filter usually names. Fewer buckets keep a month of hours few
 * rows (every time-only total sums them all); changing them needs a migration that recounts.
 */
export const TALK_BOUNDS: ReadonlyArray<number> = [0, 10, 30, 60, 120, 300, 600, 1800, 3600]

/**
 * The bucket of `expr` (a talk time column) in SQL. Written as comparisons, not arithmetic, so a
 * value of any type (a REAL, a TEXT a hand edit left) lands where `talk_secs > s` and `< s` put it.
 */
export const talkBucketSql = (expr: string) =>
  `(CASE WHEN ${expr} < 0 THEN -1 ${TALK_BOUNDS.map((b, i) => {
    const next = TALK_BOUNDS[i + 1]
    return `WHEN ${expr} = ${b} THEN ${2 * i}${next === undefined ? "" : ` WHEN ${expr} < ${next} THEN ${2 * i + 1}`}`
  }).join(" ")} ELSE ${2 * TALK_BOUNDS.length - 1} END)`

/** A filter's talk time as a bucket when it is a bound (its totals then come whole from the counts), else undefined. */
export const boundBucket = (secs: number): number | undefined => {
  const i = TALK_BOUNDS.indexOf(secs)
  return i < 0 ? undefined : 2 * i
}
