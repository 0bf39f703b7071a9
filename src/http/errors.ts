// The one mapping of errors to HTTP responses: {"error":{"code","message"}} with a 4xx/5xx status.
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { ImError } from "../protocol/errors";
import type { Logger } from "../log";

export function errorResponse(c: Context, status: number, code: string, message: string): Response {
  return c.json({ error: { code, message } }, status as ContentfulStatusCode);
}

export function onHttpError(log: Logger) {
  return (err: Error, c: Context): Response => {
    if (err instanceof ImError) return errorResponse(c, err.httpStatus, err.reason, err.message);
    if (err instanceof HTTPException) {
      const status = err.status;
      const code = status === 413 ? "payload_too_large" : status === 401 ? "unauthorized" : "bad_request";
      return errorResponse(c, status, code, err.message || code);
    }
    log.error({ err, path: c.req.path }, "http handler failed");
    return errorResponse(c, 500, "internal", "internal error");
  };
}
