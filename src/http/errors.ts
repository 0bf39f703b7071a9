// The one mapping of errors to HTTP responses: {"error":{"code","message"}} with a 4xx/5xx status.
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { ErrorReason, httpErrorBody } from "../protocol/errors";
import type { Logger } from "../log";
import { refusalOf } from "../redis/outage";

/** A refusal as an HTTP response; `status` differs from the vocabulary's only for a framework's own (HTTPException). */
export function errorResponse(c: Context, reason: ErrorReason, message: string, status: number = ErrorReason[reason]): Response {
  return c.json(httpErrorBody(reason, message), status as ContentfulStatusCode);
}

export function onHttpError(log: Logger) {
  return (err: Error, c: Context): Response => {
    const refusal = refusalOf(err);
    if (refusal) {
      // one that stands for a failure (MySQL or Redis unavailable) is worth a line: the client sees only its reason
      if (refusal.cause !== undefined) log.warn({ err, path: c.req.path }, "http request refused: a backing service failed");
      return errorResponse(c, refusal.reason, refusal.message);
    }
    if (err instanceof HTTPException) {
      const status = err.status;
      const reason = status === 413 ? "payload_too_large" : status === 401 ? "unauthorized" : "bad_request";
      return errorResponse(c, reason, err.message || reason, status);
    }
    // the client went (or stalled past Bun's idle timeout) before its body came: no failure of
    // ours, and nobody reads the answer; at error level any client could flood the log
    if (c.req.raw.signal.aborted && err instanceof DOMException && err.name === "AbortError") {
      log.debug({ path: c.req.path }, "request cut short by its client");
      return errorResponse(c, "bad_request", "the request ended before its body");
    }
    log.error({ err, path: c.req.path }, "http handler failed");
    return errorResponse(c, "internal", "internal error");
  };
}
