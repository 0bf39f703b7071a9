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
