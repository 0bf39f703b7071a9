// ImClient (src/client): its small parts on their own, the browser build, and its behaviour against
// real nodes: reconnect after a kill, a graceful stop and a silent server; room recovery; de-duplication
// of a real redelivery; send() outcomes. Real node processes, Redis and MySQL.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { connectTcp, ImClient, ImClientError, type Connector } from "../src/client";
import { backoffDelay } from "../src/client/backoff";
import { readDelivery } from "../src/client/deliveries";
import { fetchImConfig, jwtSubject } from "../src/client/im-config";
import { PendingSends } from "../src/client/pending-sends";
import { RecentIds } from "../src/client/recent-ids";
import { ReconnectSchedule } from "../src/client/reconnect-schedule";
import { Code } from "../src/protocol/codes";
import { createKeys } from "../src/redis/keys";
import { Clients } from "./support/clients";
import { APP_ID, connectTestRedis, imToken, newUserId, openRoom } from "./support/http-api";
import { RawTcp } from "./support/raw-tcp";
import { startNodeProcesses, type ProcessCluster, type ProcessNode } from "./support/node-processes";
import { record } from "./support/recorder";
import { waitFor } from "./support/wait";

const reasonOf = (p: Promise<unknown>) => p.then(() => "resolved", (e: ImClientError) => e.reason);

describe("parts", () => {
  test("RecentIds drops repeats and forgets the oldest id past its capacity", () => {
    const ids = new RecentIds(3);
    expect(["1", "2", "3", "2"].map((id) => ids.add(id))).toEqual([true, true, true, false]);
    expect(ids.add("4")).toBe(true); // "1" is forgotten now
    expect(ids.add("1")).toBe(true);
    expect(ids.add("4")).toBe(false);
  });

  test("backoff doubles from initialMs up to maxMs, jittered between half and all of it", () => {
    const s = { initialMs: 100, maxMs: 1000, maxAttempts: Infinity };
    expect([1, 2, 3, 4, 5, 50].map((n) => backoffDelay(n, s, () => 1))).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect([1, 2, 5].map((n) => backoffDelay(n, s, () => 0))).toEqual([50, 100, 500]);
  });

  test("the reconnect schedule gives up after maxAttempts in a row, starts over after reset, and can be off", async () => {
    const schedule = new ReconnectSchedule({ initialMs: 1, maxMs: 1, maxAttempts: 2 });
    let runs = 0;
    expect(schedule.schedule(() => runs++)).toMatchObject({ attempt: 1 });
    expect(schedule.schedule(() => runs++)).toMatchObject({ attempt: 2 });
    expect(schedule.schedule(() => runs++)).toBeNull();
    schedule.reset();
    expect(schedule.schedule(() => runs++)).toMatchObject({ attempt: 1 });
    await waitFor(() => runs === 1, 1000, "the one attempt still scheduled (each schedule replaces the last)");
    expect(new ReconnectSchedule(null).schedule(() => runs++)).toBeNull();
  });

  test("a send nobody answers rejects with timeout; past the limit sends are refused", async () => {
    const pending = new PendingSends(1, 30);
    const { result } = pending.open();
    expect(() => pending.open()).toThrow("1 sends are waiting");
    expect(await reasonOf(result)).toBe("timeout");
    const next = pending.open();
    expect(next.clientMsgId).toMatch(/^c[0-9a-z]+-2$/);
    expect(await reasonOf(next.result)).toBe("timeout");
  });

  test("deliveries: userId marks a reliable one; room ones carry seq; broken ones keep their msgId for the ACK", () => {
    const privateOne = readDelivery({ msgId: "9", appId: APP_ID, userId: 5, bizCode: 5556, data: '{"userId":4,"objectId":5,"content":"hi","createTime":1}', ts: 1 });
    expect(privateOne).toMatchObject({ ok: true, reliable: true, kind: "private", msgId: "9" });
    expect(readDelivery({ msgId: "10", appId: APP_ID, userId: 5, bizCode: 6001, data: "{}", ts: 1 })).toMatchObject({ ok: true, kind: "push" });
    expect(readDelivery({ msgId: "11", appId: APP_ID, bizCode: 5555, data: '{"userId":4,"roomId":7,"seq":3}', ts: 1 })).toMatchObject({ ok: true, reliable: false, kind: "room" });
    expect(readDelivery({ msgId: "12", appId: APP_ID, userId: 5, bizCode: 5556, data: "{oops", ts: 1 })).toMatchObject({ ok: false, reliable: true, msgId: "12" });
    expect(readDelivery({ msgId: "13", bizCode: 5555, data: '{"roomId":7}' })).toMatchObject({ ok: false, reliable: false });
  });

  test("im/config: 400, 401 and 403 end the client (fatal); a proxy's 404, 429 or a 503 is passed over", async () => {
    // a stand-in for whatever answers in front of the nodes (a proxy during a deploy, say)
    const proxy = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: (req) => new Response("{}", { status: Number(new URL(req.url).pathname.split("/")[1]) }) });
    try {
      const fatalOf = async (status: number) => {
        const err = await fetchImConfig(`http://127.0.0.1:${proxy.port}/${status}`, "jwt", APP_ID, 2000).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(ImClientError);
        return (err as ImClientError).fatal;
      };
      const statuses = [400, 401, 403, 404, 408, 429, 503];
      const fatal = await Promise.all(statuses.map(fatalOf));
      expect(Object.fromEntries(statuses.map((s, i) => [s, fatal[i]]))).toEqual({ 400: true, 401: true, 403: true, 404: false, 408: false, 429: false, 503: false });
    } finally {
      proxy.stop(true);
    }
  });

  test("reconnects leave no listeners behind; a connect whose endpoint never comes rejects after timeoutMs, or at close(), also while its connection is being made", async () => {
    // a stand-in for a server whose connections drop right after each LOGIN answer
    let logins = 0;
    const flaky: Connector = async (_endpoint, events) => {
      let open = true;
      const drop = (reason: string) => {
        if (!open) return;
        open = false;
        events.closed(reason);
      };
      return {
        send(code) {
          if (!open) return false;
          if (code === Code.LOGIN) {
            queueMicrotask(() => events.frame(Code.LOGIN, { ok: true, value: { appId: APP_ID, userId: 1, data: "true", nodeId: "stand-in" } }));
            setTimeout(() => drop("dropped by the stand-in"), 5);
          }
          return true;
        },
        close: () => drop("closed"),
      };
    };
    const endpoint = { token: "t", wsUrl: "ws://127.0.0.1:1/ws", tcpAddress: "127.0.0.1:1" };
    const client = new ImClient({ userId: 1, endpoint, connectors: { ws: flaky }, reconnect: { initialMs: 2, maxMs: 2 }, timeoutMs: 1000 });
    client.on("login", () => logins++);
    await client.connect();
    await waitFor(() => logins >= 20, 5000, "20 logins, each after a drop");
    client.close();
    expect({ login: client.listenerCount("login"), closed: client.listenerCount("closed") }).toEqual({ login: 1, closed: 0 });

    const never = () => new Promise<typeof endpoint>(() => {});
    const timedOut = new ImClient({ userId: 1, endpoint: never, connectors: { ws: flaky }, timeoutMs: 200 });
    expect(await reasonOf(timedOut.connect())).toBe("timeout");
    const closed = new ImClient({ userId: 1, endpoint: never, connectors: { ws: flaky }, timeoutMs: 60_000 });
    const pending = closed.connect();
    closed.close();
    expect(await reasonOf(pending)).toBe("closed");

    // a connection being made when close() comes: connect() rejects at once, not when the connector
    // gives up, and the connection that comes after all is closed
    let connected!: () => void;
    let lateClosed = "";
    const slow: Connector = (_endpoint, events) =>
      new Promise((resolve) => {
        connected = () => resolve({ send: () => true, close: (reason) => ((lateClosed = reason ?? "closed"), events.closed(lateClosed)) });
      });
    const hanging = new ImClient({ userId: 1, endpoint, connectors: { ws: slow }, timeoutMs: 60_000 });
    const connecting = hanging.connect();
    await waitFor(() => connected !== undefined, 1000, "the connector to be called");
    hanging.close();
    const stillPending = Bun.sleep(2000).then(() => "still pending 2 s after close()");
    expect(await Promise.race([reasonOf(connecting), stillPending])).toBe("closed");
    connected();
    await waitFor(() => lateClosed !== "", 1000, "the late connection to be closed");
    expect(lateClosed).toContain("closed while connecting");
  });

  test("jwtSubject reads sub; a JWT without a numeric sub is refused", () => {
    const jwt = (payload: object) => `h.${btoa(JSON.stringify(payload)).replace(/=+$/, "")}.s`;
    expect(jwtSubject(jwt({ sub: "10042" }))).toBe(10042);
    expect(() => jwtSubject(jwt({ sub: "x" }))).toThrow(ImClientError);
    expect(() => jwtSubject("garbage")).toThrow(ImClientError);
  });

  test("the browser entry bundles without node:*, Buffer or Bun APIs", async () => {
    const out = await Bun.build({ entrypoints: [join(import.meta.dir, "../src/client/browser.ts")], target: "browser" });
    expect(out.success).toBe(true);
    const js = await out.outputs[0].text();
    expect(js).toContain("class ImClient");
    for (const forbidden of [/node:/, /\brequire\(/, /\bBuffer\b/, /\bBun\./]) expect({ forbidden: String(forbidden), found: forbidden.test(js) }).toEqual({ forbidden: String(forbidden), found: false });
  });
});

describe("against real nodes", () => {
  let cluster: ProcessCluster;
  let A: ProcessNode;
  let B: ProcessNode;
  const clients = new Clients();
  const db = connectTestRedis();

  beforeAll(async () => {
    cluster = await startNodeProcesses(2);
    [A, B] = cluster.nodes;
  });

  afterEach(() => clients.closeAll());

  afterAll(async () => {
    await cluster?.stop();
    db.disconnect();
  });

  test("after its node is killed it reconnects elsewhere, logs in again and recovers the room messages it missed", async () => {
    const doomed = await cluster.addNode();
    const roomId = await openRoom(A);
    const sender = await clients.online(A, { roomId, transport: "tcp" });
    // a backoff long enough that the messages below are surely sent while it is away (the first
    // wait is jittered down to half of it)
    const viewer = await clients.make([doomed, A], { roomId, transport: "tcp", reconnect: { initialMs: 3000, maxMs: 3000 } });
    const seen = record(viewer);
    await viewer.connect();
    await sender.sendRoom("before");
    await waitFor(() => seen.room.length === 1, 3000, "the first room message");
    await cluster.kill9(doomed);
    await waitFor(() => seen.reconnecting.length > 0, 3000, "the client to notice the dead node");
    // connect() while reconnecting answers with the reconnect's login, not the first one's
    const relogin = viewer.connect();
    for (const content of ["missed 1", "missed 2"]) await sender.sendRoom(content);
    await waitFor(() => seen.login.length === 2, 8000, "the login after the reconnect");
    expect(seen.login[1]).toMatchObject({ reconnected: true, nodeId: A.nodeId, recovered: true });
    expect(await relogin).toBe(seen.login[1]);
    await sender.sendRoom("after");
    await waitFor(() => seen.room.length === 4, 3000, "the missed and the new room messages");
    // every seq once, in order, none lost; the two missed ones may trade places (see messaging.test.ts)
    const first = seen.room[0].data.seq;
    // the room was at the second missed message when the new login was answered: those two came by
    // recovery, not live
    expect(seen.login[1].roomSeq).toBe(first + 2);
    expect(seen.room.map((r) => r.data.seq)).toEqual([first, first + 1, first + 2, first + 3]);
    const contents = seen.room.map((r) => r.data.content);
    expect([contents[0], contents[3]]).toEqual(["before", "after"]);
    expect(contents.slice(1, 3).sort()).toEqual(["missed 1", "missed 2"]);
    expect(viewer.status).toBe("online");
  });

  test("a graceful node stop (the server logs it out) sends it to another node", async () => {
    const leaving = await cluster.addNode();
    const client = await clients.make([leaving, B]);
    const seen = record(client);
    expect((await client.connect()).nodeId).toBe(leaving.nodeId);
    await cluster.stopNode(leaving);
    await waitFor(() => seen.login.length === 2, 8000, "the login on the other node");
    expect(seen.reconnecting[0].reason).toContain("logged out by the server");
    expect(seen.login[1]).toMatchObject({ reconnected: true, nodeId: B.nodeId });
    expect((await client.sendPrivate(newUserId(), "back")).msgId).toMatch(/^[1-9][0-9]*$/);
  });

  test("a node that goes silent (SIGSTOP) is given up after 2 heartbeat intervals", async () => {
    const frozen = await cluster.addNode();
    try {
      const client = await clients.make([frozen, A], { transport: "tcp", heartbeatMs: 300, timeoutMs: 1000 });
      const seen = record(client);
      await client.connect();
      cluster.pause(frozen, true);
      await waitFor(() => seen.reconnecting.length > 0, 3000, "the client to give up on the silent node");
      expect(seen.reconnecting[0].reason).toContain("nothing from the server");
      await waitFor(() => seen.login.length === 2, 8000, "the login on a live node");
      expect(seen.login[1].nodeId).toBe(A.nodeId);
    } finally {
      cluster.pause(frozen, false);
    }
  });

  test("a client set to beat less often than the server expects beats at the server's interval, and stays", async () => {
    let heartbeats = 0;
    const countingBeats: Connector = async (endpoint, events, opts) => {
      const tcp = await connectTcp(endpoint, events, opts);
      return { send: (code, body) => (code === Code.HEARTBEAT && heartbeats++, tcp.send(code, body)), close: (reason) => tcp.close(reason) };
    };
    const client = await clients.make(A, { transport: "tcp", heartbeatMs: 30_000, connectors: { tcp: countingBeats } });
    const seen = record(client);
    expect(await client.connect()).toMatchObject({ nodeId: A.nodeId });
    // the node closes a connection silent for 2 intervals: 3 beats span more than that
    await waitFor(() => heartbeats >= 3, 2 * cluster.heartbeatMs + 3000, "3 heartbeats at the server's interval");
    expect(seen.reconnecting).toEqual([]);
    expect(seen.login.length).toBe(1);
    expect(client.status).toBe("online");
  });

  test("a send the draining server never read rejects as not_connected (send again), not as connection_lost (maybe taken)", async () => {
    // a long intake batch keeps the first message's ACK, and with it the LOGOUT, waiting
    const leaving = await cluster.addNode({ INTAKE_LINGER_MS: "800" });
    const probeId = newUserId();
    const probe = await RawTcp.loggedIn(leaving.tcp, probeId, await imToken(leaving, probeId));
    const recipientId = newUserId();
    const got = record(await clients.online(B, { userId: recipientId }));
    // beating at the server's 1 s: the ending session answers no HEARTBEAT while the batch waits,
    // and the test default (400 ms) would give it up as silent first
    const client = await clients.make([leaving, B], { transport: "tcp", heartbeatMs: 5000 });
    expect((await client.connect()).nodeId).toBe(leaving.nodeId);
    const taken = client.sendPrivate(recipientId, "read before the drain");
    const stopped = cluster.stopNode(leaving);
    try {
      // the idle probe is logged out in the same step that stops every session reading
      await probe.next((f) => f.code === Code.LOGOUT, 5000, "the probe's LOGOUT draining");
      const unread = client.sendPrivate(recipientId, "sent after the node stopped reading");
      const [first, second] = await Promise.all([taken.catch((e: ImClientError) => e), unread.catch((e: ImClientError) => e)]);
      expect(first).toMatchObject({ msgId: expect.stringMatching(/^[1-9][0-9]*$/) });
      expect(second).toMatchObject({ reason: "not_connected" });
      await waitFor(() => client.status === "online", 8000, "the reconnect");
      await client.sendPrivate(recipientId, "after the reconnect");
      // each message is delivered by its own im-biz job, which workers take concurrently: the one
      // read before the drain may come after the later one
      const bothContents = ["after the reconnect", "read before the drain"];
      await waitFor(() => bothContents.every((c) => got.private.some((p) => p.data.content === c)), 5000, "the message read before the drain and the one after the reconnect");
      expect(got.private.map((p) => p.data.content).sort()).toEqual(bothContents);
    } finally {
      probe.close();
      await stopped;
    }
  });

  test("a redelivery (its first ACK lost) is ACKed again but emitted once", async () => {
    const transportSaw: string[] = [];
    const dropped = new Set<string>();
    // TCP, but the first ACK of each msgId never leaves: the server must resend
    const losingFirstAck: Connector = async (endpoint, events, opts) => {
      const tcp = await connectTcp(endpoint, {
        frame: (code, body) => {
          if (code === Code.BIZ && body.ok) transportSaw.push(String(body.value.msgId));
          events.frame(code, body);
        },
        closed: events.closed,
      }, opts);
      return {
        send: (code, body) => {
          const msgId = (body as { msgId?: string }).msgId;
          if (code === Code.ACK && msgId !== undefined && !dropped.has(msgId)) return dropped.add(msgId), true;
          return tcp.send(code, body);
        },
        close: (reason) => tcp.close(reason),
      };
    };
    const recipientId = newUserId();
    const recipient = await clients.online(B, { userId: recipientId, transport: "tcp", connectors: { tcp: losingFirstAck } });
    const seen = record(recipient);
    const sender = await clients.online(A, {});
    const { msgId } = await sender.sendPrivate(recipientId, "twice on the wire");
    await waitFor(() => transportSaw.filter((id) => id === msgId).length === 2, 3 * cluster.settings.ackTimeoutMs + 3000, "the redelivery");
    const pending = createKeys(cluster.prefix).pending(APP_ID, recipientId);
    await waitFor(async () => (await db.hexists(pending, msgId)) === 0, 2000, "the second ACK to reach the server");
    expect(seen.private.map((p) => p.msgId)).toEqual([msgId]);
  });

  test("send() resolves with the msgId, rejects with the server's ERROR, and never waits while offline or closed", async () => {
    const client = await clients.make(A, {});
    expect(await reasonOf(client.sendPrivate(newUserId(), "too early"))).toBe("not_connected");
    await client.connect();
    const ok = await client.sendPrivate(newUserId(), "hi");
    expect(ok.msgId).toMatch(/^[1-9][0-9]*$/);
    expect(ok.clientMsgId).toMatch(/-\d+$/);
    const refused = await client.send(5556, { objectId: -1, content: "hi" }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ImClientError);
    expect(refused).toMatchObject({ reason: "invalid_body", fatal: false });
    const inFlight = client.sendPrivate(newUserId(), "cut off");
    client.close();
    expect(await reasonOf(inFlight)).toBe("closed");
    expect(await reasonOf(client.sendPrivate(newUserId(), "after close"))).toBe("not_connected");
  });

  test("a refused JWT or IM token fails at once, as fatal", async () => {
    const badJwt = await ImClient.fromConfig(A.http, "a.b.c", { userId: 1 }).catch((e: unknown) => e);
    expect(badJwt).toMatchObject({ reason: "unauthorized", fatal: true });
    const userId = newUserId();
    const client = new ImClient({ userId, endpoint: { token: "not-a-token", wsUrl: A.ws, tcpAddress: A.tcp } });
    const refused = await client.connect().catch((e: unknown) => e);
    expect(refused).toMatchObject({ reason: "unauthorized", fatal: true });
    expect(client.status).toBe("idle");
  });
});
