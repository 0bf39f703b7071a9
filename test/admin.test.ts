// Bull Board at /admin/queues: behind the API key, and its page makes the browser fetch nothing
// from third parties (the Google font link of its template is cut). An in-process node.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startInProcessNodes, type InProcessCluster } from "./support/in-process-nodes";

let cluster: InProcessCluster;
let board: string;

beforeAll(async () => {
  cluster = await startInProcessNodes(1);
  board = `${cluster.nodes[0].http}/admin/queues`;
});

afterAll(() => cluster.stop());

test("without the API key: 401 with a basic-auth challenge", async () => {
  const res = await fetch(board);
  expect(res.status).toBe(401);
  expect(res.headers.get("www-authenticate")).toContain("Basic");
});

test("the board's page links its own assets only, no Google font", async () => {
  for (const path of ["", "/queue/im-biz"]) {
    const res = await fetch(board + path, { headers: { authorization: `Bearer ${cluster.apiKey}` } });
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain('rel="stylesheet"');
    expect(html).toContain("static/js/main.");
    expect(html).not.toContain("googleapis");
    expect(html.match(/(?:href|src)="https?:\/\/[^"]*"/g) ?? []).toEqual([]);
  }
});

test("a change asked for by another site's form is refused (CSRF: the browser sends cached basic auth along); the board's own JSON request is served", async () => {
  const add = `${board}/api/queues/im-online/add`;
  const basic = `Basic ${btoa(`admin:${cluster.apiKey}`)}`;
  // an empty batch of presence events: harmless to the worker that takes it
  const job = JSON.stringify({ name: "csrf-probe", data: { events: [] } });
  // what an auto-submitted <form enctype="text/plain"> sends: a body that parses as JSON all the same
  const form = await fetch(add, { method: "POST", headers: { authorization: basic, "content-type": "text/plain" }, body: job });
  expect(form.status).toBe(403);
  const crossSite = await fetch(add, { method: "POST", headers: { authorization: basic, "content-type": "application/json", "sec-fetch-site": "cross-site" }, body: job });
  expect(crossSite.status).toBe(403);
  const own = await fetch(add, { method: "POST", headers: { authorization: basic, "content-type": "application/json", "sec-fetch-site": "same-origin" }, body: job });
  expect(own.status).toBe(200);
  // reading stays open to any GET with the key
  expect((await fetch(`${board}/api/queues`, { headers: { authorization: basic, "sec-fetch-site": "cross-site" } })).status).toBe(200);
});

test("a query parameter holding a NUL, or a %-escape that is no UTF-8, is refused as bad input (400), not a 500 of the board's", async () => {
  const headers = { authorization: `Bearer ${cluster.apiKey}` };
  for (const query of ["?status=%00", "?activeQueue=im-biz&status=latest%00", "?activeQueue=%ZZ", "?activeQueue=%E0%A4%A&status=latest"]) {
    const res = await fetch(`${board}/api/queues${query}`, { headers });
    expect(res.status).toBe(400);
    expect((await res.json()).error.code).toBe("bad_request");
  }
  expect((await fetch(`${board}/api/queues?activeQueue=im-biz&status=latest`, { headers })).status).toBe(200);
});

test("a page past what Redis can count (page × jobsPerPage over 2^63, or written 1e30) is refused as bad input (400), not a 500 of the board's", async () => {
  const headers = { authorization: `Bearer ${cluster.apiKey}` };
  const list = `${board}/api/queues?activeQueue=im-biz&status=completed`;
  for (const query of ["&page=100000000000&jobsPerPage=100000000", "&page=1&jobsPerPage=99999999999999999999999", "&page=1e30&jobsPerPage=10"]) {
    const res = await fetch(list + query, { headers });
    expect([query, res.status]).toEqual([query, 400]);
    expect((await res.json()).error.code).toBe("bad_request");
  }
  expect((await fetch(`${list}&page=2&jobsPerPage=50`, { headers })).status).toBe(200);
});
