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
  rate_limited: 429,
  too_many_connections: 503,
  draining: 503,
  unavailable: 503,
  internal: 500,
} as const;

export type ErrorReason = keyof typeof ErrorReason;

/** A refusal that the client is told about: `reason` is the snake_case `error` field. */
export class ImError extends Error {
  constructor(
    readonly reason: ErrorReason,
    message: string,
  ) {
    super(message);
    this.name = "ImError";
  }

  get httpStatus(): number {
    return ErrorReason[this.reason];
  }
}

export function errorBody(reason: ErrorReason, message: string, clientMsgId?: string) {
  return clientMsgId === undefined ? { error: reason, message } : { error: reason, message, clientMsgId };
}
