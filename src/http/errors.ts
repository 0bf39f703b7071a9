// The one mapping of errors to HTTP responses: {"error":{"code","message"}} with a 4xx/5xx status.
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { findImError } from "../protocol/errors";
import type { Logger } from "../log";

export function errorResponse(c: Context, status: number, code: string, message: string): Response {
  return c.json({ error: { code, message } }, status as ContentfulStatusCode);
}

export function onHttpError(log: Logger) {
  return (err: Error, c: Context): Response => {
    const refusal = findImError(err);
    if (refusal) {
      // one that stands for a failure (MySQL unavailable) is worth a line: the client sees only its reason
      if (refusal.cause !== undefined) log.warn({ err, path: c.req.path }, "http request refused: a backing service failed");
      return errorResponse(c, refusal.httpStatus, refusal.reason, refusal.message);
    }
    if (err instanceof HTTPException) {
      const status = err.status;
      const code = status === 413 ? "payload_too_large" : status === 401 ? "unauthorized" : "bad_request";
      return errorResponse(c, status, code, err.message || code);
    }
    log.error({ err, path: c.req.path }, "http handler failed");
    return errorResponse(c, 500, "internal", "internal error");
  };
}
