// Bull Board at /admin/queues: every queue of the node, for operators. Guarded by the server API
// key, as a Bearer token (scripts) or as the password of HTTP basic auth with user "admin" (a
// browser prompts for it on the 401 and then sends it with the board's own API calls).
import { createBullBoard } from "@bull-board/api";
import { BullMQAdapter } from "@bull-board/api/bullMQAdapter";
import { HonoAdapter } from "@bull-board/hono";
import type { Queue } from "bullmq";
import { Hono } from "hono";
import { serveStatic } from "hono/bun";
import { createMiddleware } from "hono/factory";
import { trimTrailingSlash } from "hono/trailing-slash";
import { isApiKey } from "../auth";
import { errorResponse } from "../errors";

export const ADMIN_QUEUES_PATH = "/admin/queues";
const BASIC_USER = "admin";

/** The API key given as `Bearer <key>` or as basic auth `admin:<key>`, else null. */
function givenKey(header: string | undefined): string | null {
  const m = header ? /^(Bearer|Basic)\s+(.+)$/i.exec(header) : null;
  if (!m) return null;
  if (m[1].toLowerCase() === "bearer") return m[2].trim();
  const decoded = Buffer.from(m[2].trim(), "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  return colon >= 0 && decoded.slice(0, colon) === BASIC_USER ? decoded.slice(colon + 1) : null;
}

function requireAdmin(apiKey: string) {
  return createMiddleware(async (c, next) => {
    if (!isApiKey(givenKey(c.req.header("authorization")), apiKey)) {
      c.header("WWW-Authenticate", 'Basic realm="live-im admin", charset="UTF-8"');
      return errorResponse(c, "unauthorized", "the server API key is required (Bearer, or basic auth as admin)");
    }
    // the browser sends cached basic auth with a cross-site form POST too (a top-level navigation):
    // a form can only send text/plain or form bodies, which the board would read as JSON all the
    // same; its own page sends JSON, so anything else that changes state is refused
    const method = c.req.method;
    const type = c.req.header("content-type");
    const crossSite = c.req.header("sec-fetch-site") === "cross-site";
    if (method !== "GET" && method !== "HEAD" && (crossSite || (type !== undefined && !/^application\/json\b/i.test(type)))) {
      return errorResponse(c, "forbidden", "changes to the board take a JSON body from the board's own page");
    }
    await next();
  });
}

/**
 * Bull Board's page template links a Google font, which an operator's browser would fetch from
 * Google on every visit; the board has no option for it, so the link is cut from its HTML and the
 * board's own CSS falls back to system fonts.
 */
const GOOGLE_FONTS_LINK = /<link[^>]*fonts\.googleapis\.com[^>]*>\s*/g;

function withoutGoogleFonts() {
  return createMiddleware(async (c, next) => {
    await next();
    if (!c.res.headers.get("content-type")?.startsWith("text/html")) return;
    const html = (await c.res.text()).replace(GOOGLE_FONTS_LINK, "");
    // the old response's headers are carried over by Hono: its length would be wrong now
    c.res.headers.delete("content-length");
    c.res = new Response(html, { status: c.res.status, headers: c.res.headers });
  });
}

/**
 * The board's paging parameters as it can serve them: decimal, at most 9 digits. It takes any
 * integer (`1e30` too) and asks Redis for the jobs from (page - 1) × jobsPerPage, which past 2^63
 * (or written in exponent form by JavaScript) Redis refuses: the board answered 500.
 */
const PAGING_PARAMS = ["page", "jobsPerPage"];
const PAGING_VALUE = /^\d{1,9}$/;

/**
 * Query parameters the board would answer with a 500, refused here as the bad input they are: a NUL
 * (`?status=%00`: its validation joins a message and its options with NUL and splits them apart
 * again, and the value's NUL breaks that split; no board parameter holds one), a %-escape that is no
 * UTF-8 (`?activeQueue=%ZZ`: its decodeURIComponent throws), and paging beyond PAGING_VALUE.
 */
function refuseBadQuery() {
  return createMiddleware(async (c, next) => {
    const url = new URL(c.req.url);
    if (url.search.toLowerCase().includes("%00")) return errorResponse(c, "bad_request", "a query parameter holds a NUL character");
    if (!decodes(url.search)) return errorResponse(c, "bad_request", "a query parameter holds a %-escape that is no UTF-8");
    for (const name of PAGING_PARAMS) {
      if (url.searchParams.getAll(name).some((v) => !PAGING_VALUE.test(v))) return errorResponse(c, "bad_request", `${name}: decimal digits, at most 9`);
    }
    return next();
  });
}

/** Whether every name and value of a query string (`?a=b&c`) decodes as decodeURIComponent reads it. */
function decodes(search: string): boolean {
  try {
    for (const part of search.slice(1).split(/[&=]/)) decodeURIComponent(part);
    return true;
  } catch {
    return false;
  }
}

/** Mount the result at ADMIN_QUEUES_PATH: the board builds its links from that base path. */
export function adminRoutes(apiKey: string, queues: Queue[]): Hono {
  const board = new HonoAdapter(serveStatic).setBasePath(ADMIN_QUEUES_PATH);
  createBullBoard({ queues: queues.map((q) => new BullMQAdapter(q)), serverAdapter: board });
  const app = new Hono();
  app.use("*", requireAdmin(apiKey));
  // the board's entry is /admin/queues: a typed /admin/queues/ is redirected there, not a 404
  app.use("*", trimTrailingSlash());
  app.use("*", withoutGoogleFonts());
  app.use("*", refuseBadQuery());
  app.route("/", board.registerPlugin());
  return app;
}
