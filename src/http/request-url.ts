// The URL of a request as Bun.serve hands it over. Bun builds `req.url` from the Host header and the
// request target: a request without a Host (HTTP/1.0, as some load balancers' health checks send)
// gets a relative one ("/healthz"), and a Host that is no host ("x:99999") one that does not parse.
// Neither URL nor Hono reads those (URL throws, Hono routes "/healthz" as "z"), so such a request
// is read as one to this server: only its path and query matter here.

const SELF = "http://localhost";

/** `req`, or, when its url is relative or does not parse, the same request made to this server. */
export function withAbsoluteUrl(req: Request): Request {
  if (URL.canParse(req.url)) return req;
  // what follows the authority of an absolute URL (if any) is the request target
  const target = req.url.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i, "");
  // appended, not resolved: a target of "//evil/x" is a path here, not another host
  return new Request(SELF + (target.startsWith("/") ? target : `/${target}`), req);
}
