/** The code of a Node system error (ENOSPC, ENAMETOOLONG, …): what an answer may say about it, never its path. */
export const errnoCode = (e: unknown): string =>
  typeof e === "object" && e !== null && "code" in e && typeof e.code === "string" ? e.code : "unexpected error"
