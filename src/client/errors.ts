// The one error type ImClient rejects with and emits.

/**
 * `reason` is the server's snake_case `error` (e.g. "unauthorized", "invalid_body", "kicked") or a
 * local one: "timeout", "not_connected", "connection_lost", "closed", "too_many_pending",
 * "connect_failed", "no_transport", "no_room", "bad_server_frame".
 * `fatal` means retrying cannot help (a refused JWT or token): the client stops reconnecting.
 */
export class ImClientError extends Error {
  constructor(
    readonly reason: string,
    message: string,
    readonly fatal = false,
  ) {
    super(message);
    this.name = "ImClientError";
  }
}
