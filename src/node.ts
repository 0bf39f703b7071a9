// Boots one live-im node from a Config: database, Redis, queues, gateway (TCP + WebSocket), HTTP,
// workers, node registry. Returns a handle that stops it gracefully.
import type { Server, TCPSocketListener } from "bun";
import type { Config } from "./config";
import { applyMigrations, connectDatabase, ensureDatabase } from "./db/client";
import { Gateway } from "./gateway/gateway";
import { listenTcp } from "./gateway/tcp";
import { WsTransport, type WsData } from "./gateway/ws";
import { createApp } from "./http/app";
import { withAbsoluteUrl } from "./http/request-url";
import { createLogger, type Logger } from "./log";
import { bizJobCompleted, bizProcessor } from "./messaging/biz/processor";
import { QueueName } from "./queues/names";
import { BizIntake } from "./messaging/intake";
import { PushOnce } from "./messaging/push-once";
import { KeptMarks } from "./messaging/kept-marks";
import { KeptRetention } from "./messaging/kept-retention";
import { KeptStore } from "./messaging/kept-store";
import { PendingAcks } from "./messaging/pending-acks";
import { ReliableDelivery } from "./messaging/reliable-delivery";
import { Sequencer } from "./messaging/sequencer";
import { NodeRegistry } from "./presence/node-registry";
import { Presence } from "./presence/presence";
import { ImTokens } from "./presence/tokens";
import { createQueues, startWorkers, type Workers } from "./queues/queues";
import { connectRedis } from "./redis/connections";
import { createKeys } from "./redis/keys";
import { LivingRooms } from "./rooms/living-rooms";
import { RoomMembership } from "./rooms/membership";
import { RoomClosing } from "./rooms/room-closing";
import { RoomList } from "./rooms/room-list";
import { Metrics } from "./metrics/metrics";
import { sql } from "drizzle-orm";
import { buildWebAssets } from "./http/routes/web";
import { ErrorReason, httpErrorBody } from "./protocol/errors";
import { RedisBroker } from "./router/broker";
import { RoomLog } from "./router/room-log";
import { RoomNodes } from "./router/room-nodes";
import { Router } from "./router/router";

/**
 * At drain, how long the sessions get to take their last answers and LOGOUT before the node goes
 * on without them: well inside fly.toml's kill_timeout, after DRAIN_MS.
 */
const SESSIONS_CLOSE_GRACE_MS = 3000;

export interface RunningNode {
  config: Config;
  log: Logger;
  httpPort: number;
  tcpPort: number | null;
  /** Graceful stop: clients told and closed, bindings removed, jobs in hand finished, connections closed. */
  stop(): Promise<void>;
}

export async function startNode(config: Config, log: Logger = createLogger(config.nodeId, config.logLevel)): Promise<RunningNode> {
  const { nodeId, roles } = config;

  // first, so that the database and Redis connections count their errors from the start; its
  // sources are read only when /metrics is scraped, once the gateway and queues exist
  let gatewayRef: Gateway | null = null;
  const metrics = new Metrics({ connections: () => gatewayRef?.connectionCounts() ?? { tcp: 0, ws: 0 }, queues: () => queues.all() });

  await ensureDatabase(config.db.url);
  await applyMigrations(config.db.url);
  const database = connectDatabase(config.db.url, { timeoutMs: config.db.timeoutMs, onError: () => metrics.mysqlErrors.inc() });

  const redis = connectRedis(config.redis.url, log, { nodeId, onError: () => metrics.redisErrors.inc() });
  const keys = createKeys(config.redis.prefix);
  const broker = new RedisBroker(redis.command, redis.subscriber, keys, log);
  const presence = new Presence(redis.command, keys, nodeId, config.gateway.idleMs);
  const tokens = new ImTokens(redis.command, keys);
  const roomNodes = new RoomNodes(redis.command, keys, nodeId);
  const roomLog = new RoomLog(redis.command, keys);
  const sequencer = new Sequencer(redis.command, keys);
  const queues = createQueues(redis.bullmq, keys.bullPrefix(), log);
  const intake = new BizIntake(sequencer, queues, log, config.delivery.intakeLingerMs);
  const kept = new KeptStore(database.db, new KeptMarks(redis.command, keys), log);
  const keptRetention = new KeptRetention(kept, redis.command, keys, config.delivery.keptRetentionDays, log);
  // not awaited: on a large table the scan may outlast a query's deadline, and a node must start anyway
  kept.rebuildMarks();
  const router = new Router(presence, broker, log);
  const pending = new PendingAcks(redis.command, keys, queues, config.delivery.ackTimeoutMs);
  const reliable = new ReliableDelivery(kept, router, pending, config.delivery.maxAttempts, log);
  const membership = new RoomMembership(redis.command, keys);
  // members that an earlier run of this node id left behind if it crashed and came back quickly,
  // before any other node found it dead
  await roomNodes.forgetNode(nodeId, await membership.removeNode(nodeId));
  const rooms = new LivingRooms(database.db, redis.command, keys);
  const roomList = new RoomList(redis.command, keys, rooms, membership, nodeId, log);
  const closing = new RoomClosing(rooms, membership, broker, sequencer, log);
  const isRoomLive = (roomId: number) => rooms.isLive(roomId);

  const gateway = new Gateway(nodeId, config.gateway, { tokens, presence, broker, roomNodes, roomLog, queues, intake, reliable, kept, metrics, isRoomLive }, log);
  gatewayRef = gateway;
  const ws = new WsTransport(gateway);
  let accepting = true;
  let workers: Workers | null = null;
  const ready = async () => {
    // a backing service that does not answer within READY_CHECK_MS counts as down: the answer must
    // come before the platform's check gives up (fly.toml: 2 s)
    const [redisUp, mysqlUp] = await Promise.all([
      answersWithin(redis.command.ping().then((r) => r === "PONG"), READY_CHECK_MS),
      answersWithin(database.db.execute(sql`SELECT 1`).then(() => true), READY_CHECK_MS),
    ]);
    const checks = { accepting, redis: redisUp, mysql: mysqlUp, workers: !roles.has("workers") || (workers?.running() ?? false) };
    return { ok: Object.values(checks).every(Boolean), checks };
  };
  let tcp: TCPSocketListener<unknown> | null = null;
  if (roles.has("gateway")) tcp = listenTcp(gateway, config.gateway.host, config.gateway.tcpPort) as TCPSocketListener<unknown>;

  let server: Server<WsData> | null = null;
  const self = () => ({
    nodeId,
    region: config.region,
    wsUrl: config.gateway.publicWsUrl ?? `ws://${config.gateway.publicHost}:${server?.port}/ws`,
    tcpAddress: config.gateway.publicTcpAddress ?? `${config.gateway.publicHost}:${tcp?.port}`,
    connections: gateway.sessions.size,
    accepting: accepting && roles.has("gateway"),
  });
  const registry = new NodeRegistry(redis.command, keys, log, Math.min(3000, config.gateway.heartbeatMs), self);
  registry.onNodeDead(async (deadNodeId) => roomNodes.forgetNode(deadNodeId, await membership.removeNode(deadNodeId)));
  registry.onRevived((cause) => gateway.reannounce(cause));
  // the http role is the API, Bull Board and the page; the ops routes (checks, metrics) are on every node
  const im = { settings: config.http, log, tokens, presence, registry, intake, pushOnce: new PushOnce(redis.command, keys, log), isRoomLive, self };
  const app = createApp(im, { nodeId, metrics, ready }, roles.has("http")
    ? {
        im,
        living: { jwtSecret: config.http.jwtSecret, rooms, list: roomList, membership, closing },
        queues: queues.all(),
        web: await buildWebAssets(),
      }
    : null);

  server = Bun.serve<WsData>({
    hostname: config.http.host,
    port: config.http.port,
    fetch(received, srv) {
      const req = withAbsoluteUrl(received);
      const url = new URL(req.url);
      // the upgrade takes the request Bun.serve made (its socket, its client address)
      if (roles.has("gateway") && url.pathname === "/ws") return ws.upgrade(received, url.searchParams, srv);
      return app.fetch(req, { server: srv });
    },
    // the last resort for what escapes Hono's onError and the upgrade: the vocabulary's JSON, not
    // Bun's own 500 page (which shows source lines in development)
    error(err) {
      log.error({ err }, "request failed");
      return Response.json(httpErrorBody("internal", "internal error"), { status: ErrorReason.internal });
    },
    websocket: ws.handlers(),
  });
  ws.attach(server);

  broker.onMessage((msg) => gateway.onNodeMessage(msg));
  broker.onResubscribed(() => void gateway.catchUpRooms());
  await broker.subscribe(nodeId);

  if (roles.has("workers")) {
    const bizDeps = { broker, reliable, log };
    const processBiz = bizProcessor(bizDeps);
    workers = startWorkers(
      redis.bullmq,
      keys.bullPrefix(),
      {
        biz: async (job) => {
          const outcome = await processBiz(job);
          metrics.keptOffline.inc(outcome.kept);
          return outcome;
        },
        online: async (job) => void (await Promise.all(job.data.events.map((e) => membership.online(e)))),
        offline: async (job) => void (await Promise.all(job.data.events.map((e) => membership.offline(e)))),
        ack: async (job) => {
          // a second start: after a failure, or after a stalled run (a node that died mid-job), which
          // BullMQ does not count in attemptsMade
          const outcome = await reliable.check(job.data, job.attemptsStarted > 1);
          metrics.retries.inc(outcome.resent);
          metrics.keptOffline.inc(outcome.kept);
          return outcome;
        },
      },
      config.workerConcurrency,
      log,
      (queue, job) => {
        if (job.finishedOn) metrics.jobSeconds.labels(queue).observe((job.finishedOn - job.timestamp - (job.opts.delay ?? 0)) / 1000);
        if (queue === QueueName.biz) bizJobCompleted(bizDeps, job);
      },
    );
  }
  await registry.start();
  if (roles.has("http")) roomList.start();
  if (roles.has("workers")) keptRetention.start();
  gateway.startIdleSweep();
  metrics.startLagProbe();
  log.info({ http: server.port, tcp: tcp?.port, roles: [...roles], region: config.region }, "node ready");

  let stopping: Promise<void> | null = null;
  const stop = () =>
    (stopping ??= (async () => {
      // drain: not ready, not offered by im/config any more and no new connections (the TCP
      // listener closes at once: a connect fails fast, and the SDK tries another node;
      // WebSocket upgrades get 503, as /readyz must still answer); after DRAIN_MS tell the clients
      // to reconnect elsewhere; jobs in hand finish, delayed ACK checks stay in Redis for the other
      // nodes' workers
      accepting = false;
      gateway.draining = true;
      tcp?.stop(false);
      await registry.refresh().catch((err) => log.warn({ err }, "could not mark this node as draining"));
      if (config.gateway.drainMs > 0) await Bun.sleep(config.gateway.drainMs);
      await gateway.shutdown(SESSIONS_CLOSE_GRACE_MS);
      // messages accepted from the closed connections still in an intake batch go to im-biz first
      await intake.idle();
      await broker.unsubscribe();
      await workers?.close();
      // whatever offline events of this node's sessions no worker took yet
      await roomNodes.forgetNode(nodeId, await membership.removeNode(nodeId));
      roomList.stop();
      await keptRetention.stop();
      reliable.stop();
      metrics.stop();
      await registry.stop(nodeId);
      tcp?.stop(true);
      await server?.stop(true);
      await queues.close();
      await redis.close();
      await database.close();
      log.info("node stopped");
    })());

  return { config, log, httpPort: server.port!, tcpPort: tcp?.port ?? null, stop };
}

/** How long /readyz waits for Redis and MySQL to answer. */
const READY_CHECK_MS = 1500;

/** True if `check` resolves true within `ms`; false if it fails, says false or takes longer. */
function answersWithin(check: Promise<boolean>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  return Promise.race([check.catch(() => false), late]).finally(() => clearTimeout(timer));
}
