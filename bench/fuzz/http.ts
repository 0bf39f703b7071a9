// HTTP case: a request built by http-inputs.ts to either node, with any method and content
// type. No answer may be a 5xx (but /readyz's 503) or take 10 s, and every 4xx of /api must be
// PROTOCOL.md's error JSON.
import type { Case } from "./context";
import { authHeader, httpBody, httpPath } from "./http-inputs";

const METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"];
const CONTENT_TYPES = ["application/json", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/json; charset=utf-16", "", "application/xml", "*/*"];
/** Paths read with GET (other paths are POSTed), when the method is not picked at random. */
const READ_PATHS = /^\/($|healthz|readyz|metrics|api\/living\/list|.*online)/;

/** One request with a 10 s bound: the status and text, or the error (a TimeoutError when it hung). */
export async function request(base: string, method: string, path: string, init: { headers?: Record<string, string>; body?: string | Uint8Array | null } = {}): Promise<{ status: number; text: string } | Error> {
  try {
    const res = await fetch(base + path, { method, headers: init.headers, body: init.body as BodyInit | null, signal: AbortSignal.timeout(10_000), redirect: "manual" });
    return { status: res.status, text: method === "HEAD" ? "" : await res.text() };
  } catch (err) {
    return err as Error;
  }
}

export async function httpCase(c: Case): Promise<void> {
  const { rng } = c;
  const node = c.node();
  const path = httpPath(c);
  const method = rng.chance(0.6) ? (READ_PATHS.test(path) ? "GET" : "POST") : rng.pick(METHODS);
  const headers: Record<string, string> = {};
  let auth = await authHeader(c);
  // the queue board's state-changing calls only ever with a key that does not open it: no real queue operations
  if (path.startsWith("/admin") && method !== "GET" && method !== "HEAD" && auth?.includes(c.run.cluster.apiKey) && !path.includes("nosuch")) auth = "Bearer wrong";
  if (auth !== undefined) headers.authorization = auth;
  const contentType = rng.pick(CONTENT_TYPES);
  if (contentType) headers["content-type"] = contentType;
  // pushes: a key some cases share (repeats, reuse with another body), or a malformed one
  if (path.endsWith("/push") && rng.chance(0.5)) headers["idempotency-key"] = rng.pick(["k1", "k2", `k-${rng.int(1_000_000)}`, "", " x", "\u00e9", "k".repeat(300)]);
  const body = method === "GET" || method === "HEAD" ? null : httpBody(c, path);
  c.inputs("http requests");
  const r = await request(node.http, method, path, { headers, body });
  const what = () => `${method} ${node.nodeId} ${path.slice(0, 200)} ct=${contentType} auth=${auth?.slice(0, 60)} body=${typeof body === "string" ? body.slice(0, 200) : body ? "<bytes>" : "none"}`;
  if (r instanceof Error) {
    if (r.name === "TimeoutError") c.problem("http hang", `${what()}: no answer in 10 s`);
    return;
  }
  if (r.status >= 500 && !(path.startsWith("/readyz") && r.status === 503)) c.problem("http 5xx", `${what()} -> ${r.status} ${r.text.slice(0, 300)}`);
  if ((path.startsWith("/api") || path.startsWith("//api")) && r.status >= 400 && method !== "HEAD" && !isErrorJson(r.text)) c.problem("api error not the error JSON", `${what()} -> ${r.status} ${r.text.slice(0, 200)}`);
}

/** PROTOCOL.md section 6: {"error":{"code":"…","message":"…"}}. */
function isErrorJson(text: string): boolean {
  try {
    const j = JSON.parse(text);
    return typeof j?.error?.code === "string" && typeof j.error.message === "string";
  } catch {
    return false;
  }
}
