// MySQL error numbers the code reacts to, and how to find one in an error from mysql2 or Drizzle.

/** ER_DUP_ENTRY: a unique index refused the row. */
export const ER_DUP_ENTRY = 1062;
/** ER_LOCK_DEADLOCK: the statement was rolled back and may simply be run again. */
export const ER_LOCK_DEADLOCK = 1213;

/** Whether `err` (from mysql2 directly, or as the cause of Drizzle's query error) carries `errno`. */
export function isMysqlError(err: unknown, errno: number): boolean {
  for (let e = err, depth = 0; e !== null && typeof e === "object" && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if ((e as { errno?: unknown }).errno === errno) return true;
  }
  return false;
}
