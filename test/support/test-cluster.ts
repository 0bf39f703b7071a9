// What every test cluster shares, whether its nodes run as child processes (node-processes.ts) or
// in this test process (in-process-nodes.ts): an identity of its own (key prefix, API key, JWT
// secret) so that runs sharing one Redis and MySQL never meet, the same short timings, and nodes
// reached over HTTP, TCP and WebSocket.
import mysql from "mysql2/promise";
import { loadConfig } from "../../src/config";
import { applyMigrations, connectDatabase, ensureDatabase, type Database } from "../../src/db/client";
import { connectTestRedis } from "./http-api";

export interface TestNode {
  nodeId: string;
  /** HTTP base, e.g. http://127.0.0.1:41234 */
  http: string;
  /** host:port */
  tcp: string;
  /** ws://host:port/ws */
  ws: string;
}

export interface ClusterSettings {
  heartbeatSeconds: number;
  ackTimeoutMs: number;
  ackMaxAttempts: number;
  maxBodyBytes: number;
}

/** Short heartbeat and ACK timings, so that expiries and retries happen within a test's wait. */
export const DEFAULT_SETTINGS: ClusterSettings = { heartbeatSeconds: 1, ackTimeoutMs: 400, ackMaxAttempts: 3, maxBodyBytes: 65_536 };

export interface ClusterIdentity {
  /** KEY_PREFIX of every node; also the start of every nodeId. */
  prefix: string;
  apiKey: string;
  jwtSecret: string;
  /** DATABASE_URL of every node: a database of this cluster's own, made by its first node. */
  databaseUrl: string;
}

export function newClusterIdentity(): ClusterIdentity {
  const prefix = `t${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
  return {
    prefix,
    apiKey: `key-${crypto.randomUUID()}`,
    jwtSecret: `jwt-${crypto.randomUUID()}`,
    databaseUrl: ownDatabaseUrl(prefix),
  };
}

/**
 * The URL of a database `live_im_<prefix>` on the MySQL server of DATABASE_URL (default: the local
 * one): rooms and kept messages of one run never show in another's lists and replays.
 */
export function ownDatabaseUrl(prefix: string): string {
  const url = new URL(loadConfig({ ...process.env, NODE_ENV: "development" }).db.url);
  url.pathname = `/live_im_${prefix}`;
  return url.toString();
}

/** For tests without nodes: their own database (ownDatabaseUrl), made and migrated. */
export async function openOwnDatabase(prefix: string): Promise<{ database: Database; url: string }> {
  const url = ownDatabaseUrl(prefix);
  await ensureDatabase(url);
  await applyMigrations(url);
  const database = connectDatabase(url, { timeoutMs: 10_000 });
  return { database, url };
}

/** Drop a database ownDatabaseUrl() named. Never throws: a failed cleanup is reported, not a failure. */
export async function dropOwnDatabase(databaseUrl: string): Promise<void> {
  const url = new URL(databaseUrl);
  const name = url.pathname.slice(1);
  try {
    if (!/^live_im_[a-z0-9]+$/.test(name)) throw new Error(`not a test database: ${name}`);
    url.pathname = "/";
    const conn = await mysql.createConnection(url.toString());
    try {
      await conn.query(`DROP DATABASE IF EXISTS \`${name}\``);
    } finally {
      await conn.end();
    }
  } catch (err) {
    console.error(`could not drop the database ${name}:`, err);
  }
}

/** The environment of one test node, apart from its ports. */
export function nodeEnv(identity: ClusterIdentity, nodeId: string, settings: ClusterSettings, logLevel: string): Record<string, string> {
  return {
    HOST: "127.0.0.1",
    NODE_ID: nodeId,
    KEY_PREFIX: identity.prefix,
    DATABASE_URL: identity.databaseUrl,
    IM_API_KEY: identity.apiKey,
    IM_JWT_SECRET: identity.jwtSecret,
    NODE_ENV: "development",
    LOG_LEVEL: logLevel,
    HEARTBEAT_SECONDS: String(settings.heartbeatSeconds),
    ACK_TIMEOUT_MS: String(settings.ackTimeoutMs),
    ACK_MAX_ATTEMPTS: String(settings.ackMaxAttempts),
    MAX_BODY_BYTES: String(settings.maxBodyBytes),
  };
}

/**
 * Delete every Redis key of a stopped cluster (its KEY_PREFIX), so that test and bench runs leave
 * nothing behind in the shared Redis. Never throws: a failed cleanup is reported, not a failure.
 */
export async function removeClusterKeys(prefix: string): Promise<void> {
  const redis = connectTestRedis();
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
      cursor = next;
      if (keys.length > 0) await redis.unlink(...keys);
    } while (cursor !== "0");
  } catch (err) {
    console.error(`could not remove the Redis keys under ${prefix}:`, err);
  } finally {
    redis.disconnect();
  }
}
