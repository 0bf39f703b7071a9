// End to end in real headless Chromium against two real node processes: the page served at "/"
// logs in, goes live, enters a room from the list, chats with a page on the other node and with a
// TCP ImClient, and sends private messages that reach their recipient only. Bull Board answers 401
// without the API key and lists the node's queues with it. Screenshots go to test-artifacts/.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Locator, type Page } from "playwright-core";
import { ImClient, nativeConnectors, type Delivered, type PrivateData, type RoomData } from "../src/client";
import { QueueName } from "../src/queues/names";
import { api, devJwt, newUserId } from "./support/http-api";
import { startNodeProcesses, type ProcessCluster } from "./support/node-processes";
import { waitFor } from "./support/wait";

const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = join(import.meta.dir, "../test-artifacts");
const WAIT_MS = 15_000;
/** Phone width: the page must be usable there, and that is what the screenshots show. */
const VIEWPORT = { width: 375, height: 812 };

let cluster: ProcessCluster | null = null;
let context: BrowserContext | null = null;
let profileDir = "";
const clients: ImClient[] = [];
/** Uncaught errors and console errors of every page: a working page has none. */
const pageErrors: string[] = [];

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  // the page heartbeats every 30 s, as PROTOCOL.md says: the nodes must not expect it sooner
  cluster = await startNodeProcesses(2, { heartbeatSeconds: 30 });
  profileDir = mkdtempSync(join(tmpdir(), "live-im-chromium-"));
  context = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: VIEWPORT,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
}, 90_000);

afterAll(async () => {
  for (const c of clients) c.close();
  await context?.close();
  await cluster?.stop();
  if (profileDir) rmSync(profileDir, { recursive: true, force: true });
}, 30_000);

const until = <T>(fn: () => T | Promise<T>, what: string) => waitFor(fn, WAIT_MS, what);

/** Wait until `locator` is visible; fail with `what` after WAIT_MS. */
async function visible(locator: Locator, what: string): Promise<void> {
  try {
    await locator.first().waitFor({ state: "visible", timeout: WAIT_MS });
  } catch {
    throw new Error(`timed out after ${WAIT_MS} ms waiting for ${what}`);
  }
}

async function openPage(http: string, name: string): Promise<Page> {
  const page = await context!.newPage();
  page.on("pageerror", (err) => pageErrors.push(`${name}: ${err.message}`));
  page.on("console", (msg) => {
    if (msg.type() === "error") pageErrors.push(`${name} console: ${msg.text()}`);
  });
  await page.goto(`${http}/`);
  return page;
}

async function logIn(page: Page, userId: number, nickName: string): Promise<void> {
  await page.fill("#login-user", String(userId));
  await page.fill("#login-nick", nickName);
  await page.click("#login-form button[type=submit]");
  await visible(page.locator("#status[data-state=online]"), `${nickName}'s page to connect`);
}

async function say(page: Page, form: "room" | "private", text: string): Promise<void> {
  await page.fill(`#${form}-input`, text);
  await page.click(`#${form}-form button[type=submit]`);
  // the line turns from pending to sent when the server ACKs it
  await visible(page.locator(`#${form}-messages li.mine:not(.pending):not(.failed)`, { hasText: text }), `the ACK of "${text}"`);
}

const roomLine = (page: Page, text: string) => page.locator("#room-messages li", { hasText: text });
const privateLineFromOthers = (page: Page, text: string) => page.locator("#private-messages li:not(.mine)", { hasText: text });

test("two pages on two nodes and a TCP client chat in one live room; private messages reach their recipient only", async () => {
  const [nodeA, nodeB] = cluster!.nodes;
  const anchorId = newUserId();
  const viewerId = newUserId();
  const tcpUserId = newUserId();
  const roomName = `Tea & <b>tags</b> ${anchorId}`;

  // the anchor goes live from a page on node A
  const anchor = await openPage(nodeA.http, "anchor");
  await logIn(anchor, anchorId, "Ann");
  await anchor.fill("#start-name", roomName);
  await anchor.click("#start-form button[type=submit]");
  await visible(anchor.locator("#room-title", { hasText: roomName }), "the anchor's room view");
  expect(await anchor.textContent("#room-role")).toContain("anchor");

  // a viewer on node B finds the room in the live list and enters it
  const viewer = await openPage(nodeB.http, "viewer");
  await logIn(viewer, viewerId, "Vic");
  const listed = viewer.locator("#room-list li", { hasText: roomName });
  await visible(listed, "the new room in the viewer's live-room list");
  await listed.getByRole("button").click();
  await visible(viewer.locator("#room-title", { hasText: roomName }), "the viewer's room view");

  // a TCP client joins the same room on node A
  const room = await until(async () => {
    const r = await api(nodeA.http, "GET", "/api/living/list?type=1&pageSize=100");
    return (r.json.list as Array<{ id: number; roomName: string }>).find((x) => x.roomName === roomName);
  }, "the room in GET /api/living/list");
  const tcp = await ImClient.fromConfig(nodeA.http, await devJwt(nodeA, tcpUserId, { nickName: "Tom" }), { transport: "tcp", connectors: nativeConnectors, roomId: room.id });
  clients.push(tcp);
  const tcpRoom: Delivered<RoomData>[] = [];
  const tcpPrivate: Delivered<PrivateData>[] = [];
  tcp.on("room", (d) => tcpRoom.push(d));
  tcp.on("private", (d) => tcpPrivate.push(d));
  await tcp.connect();

  // everyone is in: both pages show the polled online count
  for (const page of [anchor, viewer]) await visible(page.locator("#room-online", { hasText: "3 online" }), "3 online in the room on both pages");

  // page on A → page on B and the TCP client; markup stays text
  const fromAnchor = `hello from A <img src=x onerror="document.title='pwned'"> ${anchorId}`;
  await say(anchor, "room", fromAnchor);
  await visible(roomLine(viewer, fromAnchor), "the anchor's message on the viewer's page");
  expect(await roomLine(viewer, fromAnchor).textContent()).toContain("Ann");
  expect(await viewer.locator("#room-messages img").count()).toBe(0);
  await until(() => tcpRoom.some((d) => d.data.content === fromAnchor), "the anchor's message at the TCP client");

  // page on B → page on A and the TCP client
  const fromViewer = `hi from B ${viewerId}`;
  await say(viewer, "room", fromViewer);
  await visible(roomLine(anchor, fromViewer), "the viewer's message on the anchor's page");
  await until(() => tcpRoom.some((d) => d.data.content === fromViewer && d.data.userId === viewerId), "the viewer's message at the TCP client");

  // TCP client → both pages
  const fromTcp = `tcp says hi ${tcpUserId}`;
  await tcp.sendRoom(fromTcp);
  await visible(roomLine(anchor, fromTcp), "the TCP client's message on the anchor's page");
  await visible(roomLine(viewer, fromTcp), "the TCP client's message on the viewer's page");

  // private: anchor → viewer reaches the viewer's page only
  const toViewer = `psst viewer ${viewerId}`;
  await anchor.fill("#private-to", String(viewerId));
  await say(anchor, "private", toViewer);
  await visible(privateLineFromOthers(viewer, toViewer), "the private message on the viewer's page");
  // TCP → anchor reaches the anchor's page only
  const toAnchor = `psst anchor ${anchorId}`;
  await tcp.sendPrivate(anchorId, toAnchor);
  await visible(privateLineFromOthers(anchor, toAnchor), "the TCP client's private message on the anchor's page");
  // each was delivered once, to its recipient, before the other was sent: nobody else has them now
  expect(await privateLineFromOthers(anchor, toViewer).count()).toBe(0);
  expect(await privateLineFromOthers(viewer, toAnchor).count()).toBe(0);
  expect(tcpPrivate.map((d) => d.data.content)).toEqual([]);
  // the viewer's reply field is filled in with the sender
  expect(await viewer.inputValue("#private-to")).toBe(String(anchorId));

  expect(await viewer.title()).toBe("live-im");
  await viewer.screenshot({ path: join(ARTIFACTS, "e2e-viewer.png"), fullPage: true });
  await anchor.screenshot({ path: join(ARTIFACTS, "e2e-anchor.png"), fullPage: true });
  expect(pageErrors).toEqual([]);
}, 90_000);

test("Bull Board: 401 without the API key; with it, every queue of the node", async () => {
  const node = cluster!.nodes[1];
  const board = `${node.http}/admin/queues`;
  const basic = (password: string) => `Basic ${btoa(`admin:${password}`)}`;
  const queueNames = Object.values(QueueName);

  expect((await fetch(board)).status).toBe(401);
  expect((await fetch(board, { headers: { authorization: basic("wrong") } })).status).toBe(401);
  expect((await fetch(`${board}/api/queues`, { headers: { authorization: "Bearer wrong" } })).status).toBe(401);

  const r = await api(board, "GET", "/api/queues", { bearer: cluster!.apiKey });
  expect(r.status).toBe(200);
  const listed = (r.json.queues as Array<{ name: string }>).map((q) => q.name);
  expect(listed.sort()).toEqual([...queueNames].sort());

  // the board itself renders in a browser with basic auth (its scripts and API calls included)
  const page = await context!.newPage();
  await page.setExtraHTTPHeaders({ authorization: basic(cluster!.apiKey) });
  await page.setViewportSize({ width: 1100, height: 800 });
  await page.goto(`${board}/`);
  for (const name of queueNames) await visible(page.getByText(name, { exact: true }), `queue ${name} on the Bull Board page`);
  await page.screenshot({ path: join(ARTIFACTS, "bull-board.png") });
}, 60_000);
