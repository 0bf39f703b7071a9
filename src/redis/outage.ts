// A command that failed because Redis is out of reach (down, restarting, cut off), not because
// Redis refused it: the client is told "unavailable" (trying again later is worth it), as for a
// MySQL that does not answer, instead of "internal".
import { findImError, ImError } from "../protocol/errors";

/**
 * The errors ioredis rejects a command with when it has no connection to send it on: the
 * reconnects per command ran out (the command client's maxRetriesPerRequest), or the connection
 * is closed for good. A Redis reply error (ReplyError) is none of these.
 */
function redisOutOfReach(err: Error): boolean {
  return err.name === "MaxRetriesPerRequestError" || err.message === "Connection is closed." || err.message.startsWith("Stream isn't writeable");
}

/**
 * What a failure is to the client, for the two mappings of the vocabulary (ERROR frames in
 * gateway/session.ts, HTTP in http/errors.ts): the ImError it is or was caused by, or "unavailable"
 * (with `err` as its cause) when it means Redis is out of reach; null for anything else (internal).
 */
export function refusalOf(err: unknown): ImError | null {
  const ours = findImError(err);
  if (ours || !(err instanceof Error) || !redisOutOfReach(err)) return ours;
  return new ImError("unavailable", "Redis is unavailable", { cause: err });
}
