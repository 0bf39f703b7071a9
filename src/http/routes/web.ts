// The browser page at "/": src/web/ bundled in memory by Bun.build when the node starts (so it is
// always built from the running code, and nothing is fetched at run time), then served as is.
import { join } from "node:path";
import { Hono } from "hono";

const WEB_DIR = join(import.meta.dir, "../../web");

export interface WebAssets {
  html: string;
  js: string;
  css: string;
}

// The page only talks to the node it came from (HTTP) and to the WebSocket URL that node hands out
// (which may be another node's), and never runs inline script: user text cannot become code.
const HEADERS = {
  "Content-Security-Policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "X-Content-Type-Options": "nosniff",
  "Cache-Control": "no-cache",
};

let building: Promise<WebAssets> | null = null;

/** Build once per process: nodes started in one test process share the result. */
export function buildWebAssets(): Promise<WebAssets> {
  return (building ??= build());
}

async function build(): Promise<WebAssets> {
  const out = await Bun.build({ entrypoints: [join(WEB_DIR, "app.ts")], target: "browser", minify: true });
  if (!out.success || out.outputs.length !== 1) {
    throw new AggregateError(out.logs, "the browser page (src/web/app.ts) failed to build");
  }
  const [html, js, css] = await Promise.all([
    Bun.file(join(WEB_DIR, "index.html")).text(),
    out.outputs[0].text(),
    Bun.file(join(WEB_DIR, "style.css")).text(),
  ]);
  return { html, js, css };
}

export function webRoutes(assets: WebAssets): Hono {
  const send = (body: string, type: string) => () => new Response(body, { headers: { ...HEADERS, "Content-Type": type } });
  return new Hono()
    .get("/", send(assets.html, "text/html; charset=utf-8"))
    .get("/web/app.js", send(assets.js, "text/javascript; charset=utf-8"))
    .get("/web/style.css", send(assets.css, "text/css; charset=utf-8"));
}
