// The only reader of process.env. Every component gets a typed slice of the Config it returns.
import os from "node:os";
import { z } from "zod";

const DEV_JWT_SECRET = "dev-only-jwt-secret-change-me";
const DEV_API_KEY = "dev-only-api-key-change-me";

const flag = z.enum(["0", "1", "true", "false"]).transform((v) => v === "1" || v === "true");
const int = (min: number) => z.coerce.number().int().min(min);

const Env = z.object({
  // a closed set: a mistyped "Production" must not start a node with the public dev secrets
  NODE_ENV: z.enum(["development", "test", "production"]).default("development"),
  PORT: int(0).default(8080),
  TCP_PORT: int(0).default(9000),
  HOST: z.string().default("0.0.0.0"),
  /** Host name clients should use to reach this node (im/config's wsUrl and tcpAddress). */
  PUBLIC_HOST: z.string().optional(),
  PUBLIC_WS_URL: z.string().optional(),
  PUBLIC_TCP_ADDRESS: z.string().optional(),
  /** Set by fly.io: clients are sent to the app's anycast name unless PUBLIC_* say otherwise. */
  FLY_APP_NAME: z.string().optional(),
  REDIS_URL: z.string().default("redis://127.0.0.1:6379"),
  DATABASE_URL: z.string().default("mysql://root@127.0.0.1:3306/live_im"),
  /** How long a MySQL query (or the wait for a pooled connection) may take before it fails as "unavailable". */
  MYSQL_TIMEOUT_MS: int(100).default(5000),
  /** Prefix of every Redis key and queue: lets several clusters (or test runs) share one Redis. */
  KEY_PREFIX: z.string().regex(/^[A-Za-z0-9_-]+$/).default("im"),
  NODE_ID: z.string().min(1).optional(),
  FLY_MACHINE_ID: z.string().optional(),
  FLY_REGION: z.string().optional(),
  REGION: z.string().optional(),
  IM_JWT_SECRET: z.string().min(16).optional(),
  IM_API_KEY: z.string().min(16).optional(),
  DEV_LOGIN: flag.optional(),
  // at least a second: the idle reaping, binding TTL and node registry period all derive from it
  HEARTBEAT_SECONDS: z.coerce.number().min(1).default(30),
  // im-ack checks share jobs for up to 100 ms and may fire that much early (messaging/pending-acks.ts)
  ACK_TIMEOUT_MS: int(200).default(4000),
  ACK_MAX_ATTEMPTS: int(1).default(3),
  /** How long intake holds the first BIZ of a batch for others: latency traded for fewer im-biz jobs. */
  INTAKE_LINGER_MS: int(0).default(20),
  /** Kept (offline) messages older than this many days are deleted undelivered; 0 keeps them until delivered. */
  KEPT_RETENTION_DAYS: int(0).default(0),
  MAX_BODY_BYTES: int(64).default(65536),
  LOGIN_TIMEOUT_MS: int(100).default(10_000),
  /** Comma-separated roles this node runs: gateway (TCP + WS), http, workers. */
  ROLES: z.string().default("gateway,http,workers"),
  WORKER_CONCURRENCY: int(1).default(64),
  /** Client connections one node accepts (TCP + WS). */
  MAX_CONNECTIONS: int(1).default(100_000),
  /** Per-connection frames per second (HEARTBEAT and ACK exempt); 0 turns the limit off. */
  MSG_RATE_PER_SEC: int(0).default(200),
  MSG_RATE_BURST: int(1).default(400),
  /** New connections per client IP per minute; 0 (default) turns the limit off. */
  IP_CONNECT_PER_MIN: int(0).default(0),
  /** TCP connections start with a PROXY protocol v1 line (fly.io proxy_proto handler). */
  PROXY_PROTOCOL: flag.default(false),
  /** Take the client IP of HTTP/WS requests from Fly-Client-IP (only behind fly's proxy). */
  TRUST_FLY_CLIENT_IP: flag.default(false),
  HTTP_MAX_BODY_BYTES: int(1024).default(1024 * 1024),
  /** How long a draining node stays up, not ready, before it tells its clients to go (lets the load balancer notice). */
  DRAIN_MS: int(0).default(0),
  /**
   * Over how long a draining node then tells its clients to go, evenly: their reconnects to the
   * other nodes come spread out instead of all within the SDK's first backoff (0.25 to 0.5 s).
   */
  DRAIN_SPREAD_MS: int(0).default(0),
  LOG_LEVEL: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).default("info"),
});

export type Role = "gateway" | "http" | "workers";

export interface Config {
  production: boolean;
  nodeId: string;
  region: string;
  http: {
    host: string;
    port: number;
    devLogin: boolean;
    jwtSecret: string;
    apiKey: string;
    maxBodyBytes: number;
    /** The most a frame body may be (MAX_BODY_BYTES): a push must fit in one delivery frame. */
    frameMaxBytes: number;
  };
  gateway: {
    host: string;
    tcpPort: number;
    /** What im/config tells clients; resolved after the listeners bound their ports. */
    publicWsUrl?: string;
    publicTcpAddress?: string;
    publicHost: string;
    heartbeatMs: number;
    /** A connection silent this long is closed (2 heartbeat intervals). */
    idleMs: number;
    loginTimeoutMs: number;
    maxBodyBytes: number;
    maxConnections: number;
    msgRatePerSec: number;
    msgRateBurst: number;
    ipConnectPerMin: number;
    proxyProtocol: boolean;
    trustFlyClientIp: boolean;
    drainMs: number;
    drainSpreadMs: number;
  };
  delivery: { ackTimeoutMs: number; maxAttempts: number; intakeLingerMs: number; keptRetentionDays: number };
  redis: { url: string; prefix: string };
  db: { url: string; timeoutMs: number };
  roles: Set<Role>;
  workerConcurrency: number;
  logLevel: string;
}

/**
 * Build the Config from an environment. Throws with every problem listed. A variable set to an
 * empty string counts as unset (a blank line in an env file must not turn PORT into 0).
 */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const parsed = Env.safeParse(Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v.trim() !== "")));
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    throw new Error(`bad configuration: ${problems}`);
  }
  const e = parsed.data;
  const production = e.NODE_ENV === "production";
  if (production && (!e.IM_JWT_SECRET || !e.IM_API_KEY)) {
    throw new Error("bad configuration: NODE_ENV=production needs IM_JWT_SECRET and IM_API_KEY (no dev defaults)");
  }
  // the dev values are in this repository for anyone to read: set explicitly, they are no secret
  if (production && (e.IM_JWT_SECRET === DEV_JWT_SECRET || e.IM_API_KEY === DEV_API_KEY)) {
    throw new Error("bad configuration: NODE_ENV=production cannot use the dev IM_JWT_SECRET or IM_API_KEY");
  }
  // dev login hands out a JWT for any user id: never in production
  if (production && e.DEV_LOGIN) throw new Error("bad configuration: DEV_LOGIN cannot be on with NODE_ENV=production");
  const roles = new Set<Role>();
  for (const r of e.ROLES.split(",").map((s) => s.trim()).filter(Boolean)) {
    if (r !== "gateway" && r !== "http" && r !== "workers") throw new Error(`bad configuration: unknown role ${r}`);
    roles.add(r);
  }
  const heartbeatMs = Math.round(e.HEARTBEAT_SECONDS * 1000);
  return {
    production,
    nodeId: e.NODE_ID ?? e.FLY_MACHINE_ID ?? `${os.hostname()}-${e.PORT}`,
    region: e.REGION ?? e.FLY_REGION ?? "local",
    http: {
      host: e.HOST,
      port: e.PORT,
      devLogin: e.DEV_LOGIN ?? !production,
      jwtSecret: e.IM_JWT_SECRET ?? DEV_JWT_SECRET,
      apiKey: e.IM_API_KEY ?? DEV_API_KEY,
      maxBodyBytes: e.HTTP_MAX_BODY_BYTES,
      frameMaxBytes: e.MAX_BODY_BYTES,
    },
    gateway: {
      host: e.HOST,
      tcpPort: e.TCP_PORT,
      publicWsUrl: e.PUBLIC_WS_URL ?? (e.FLY_APP_NAME && `wss://${e.FLY_APP_NAME}.fly.dev/ws`),
      publicTcpAddress: e.PUBLIC_TCP_ADDRESS ?? (e.FLY_APP_NAME && `${e.FLY_APP_NAME}.fly.dev:${e.TCP_PORT}`),
      publicHost: e.PUBLIC_HOST ?? "127.0.0.1",
      heartbeatMs,
      idleMs: 2 * heartbeatMs,
      loginTimeoutMs: e.LOGIN_TIMEOUT_MS,
      maxBodyBytes: e.MAX_BODY_BYTES,
      maxConnections: e.MAX_CONNECTIONS,
      msgRatePerSec: e.MSG_RATE_PER_SEC,
      msgRateBurst: e.MSG_RATE_BURST,
      ipConnectPerMin: e.IP_CONNECT_PER_MIN,
      proxyProtocol: e.PROXY_PROTOCOL,
      trustFlyClientIp: e.TRUST_FLY_CLIENT_IP,
      drainMs: e.DRAIN_MS,
      drainSpreadMs: e.DRAIN_SPREAD_MS,
    },
    delivery: { ackTimeoutMs: e.ACK_TIMEOUT_MS, maxAttempts: e.ACK_MAX_ATTEMPTS, intakeLingerMs: e.INTAKE_LINGER_MS, keptRetentionDays: e.KEPT_RETENTION_DAYS },
    redis: { url: e.REDIS_URL, prefix: e.KEY_PREFIX },
    db: { url: e.DATABASE_URL, timeoutMs: e.MYSQL_TIMEOUT_MS },
    roles,
    workerConcurrency: e.WORKER_CONCURRENCY,
    logLevel: e.LOG_LEVEL,
  };
}
