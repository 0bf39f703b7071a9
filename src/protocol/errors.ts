// The one error vocabulary of live-im. Mapped once to ERROR frames (gateway/session.ts) and once to
// HTTP responses (http/errors.ts).

export const ErrorReason = {
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  bad_request: 400,
  payload_too_large: 413,
  not_logged_in: 401,
  unknown_code: 400,
  bad_frame: 400,
  unknown_biz_code: 400,
  invalid_body: 400,
  not_in_room: 403,
  room_not_live: 409,
  kicked: 409,
  /** HTTP only: a push with this Idempotency-Key is still being accepted. */
  idempotency_conflict: 409,
  /** HTTP only: an Idempotency-Key used again with another request. */
  idempotency_key_reused: 422,
  rate_limited: 429,
  too_many_connections: 503,
  draining: 503,
  unavailable: 503,
  internal: 500,
} as const;

export type ErrorReason = keyof typeof ErrorReason;

/**
 * A refusal that the client is told about: `reason` is the snake_case `error` field. `cause`: the
 * failure behind it, for the log (a MySQL that does not answer, say), never for the client.
 */
export class ImError extends Error {
  constructor(
    readonly reason: ErrorReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "ImError";
  }
}

/** The ImError `err` is, or was caused by (a library may wrap ours, as Drizzle wraps a query's error). */
export function findImError(err: unknown): ImError | null {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof ImError) return e;
  }
  return null;
}

/** The body of an ERROR frame (PROTOCOL.md section 4). */
export function errorBody(reason: ErrorReason, message: string, clientMsgId?: string) {
  return clientMsgId === undefined ? { error: reason, message } : { error: reason, message, clientMsgId };
}

/** The JSON body of an HTTP error response (PROTOCOL.md section 6); its status is ErrorReason[reason]. */
export function httpErrorBody(reason: ErrorReason, message: string) {
  return { error: { code: reason, message } };
}
