// A command that failed because Redis is out of reach (down, restarting, cut off), not because
// Redis refused it: the client is told "unavailable" (trying again later is worth it), as for a
// MySQL that does not answer, instead of "internal".
import { ImError } from "../protocol/errors";

/**
 * The errors ioredis rejects a command with when it has no connection to send it on: the
 * reconnects per command ran out (the command client's maxRetriesPerRequest), or the connection
 * is closed for good. A Redis reply error (ReplyError) is none of these.
 */
function redisOutOfReach(err: Error): boolean {
  return err.name === "MaxRetriesPerRequestError" || err.message === "Connection is closed." || err.message.startsWith("Stream isn't writeable");
}

/** `err` as ImError "unavailable" when it means Redis is out of reach (with `err` as its cause), else null. */
export function redisUnavailable(err: unknown): ImError | null {
  if (!(err instanceof Error) || !redisOutOfReach(err)) return null;
  return new ImError("unavailable", "Redis is unavailable", { cause: err });
}
