// What every test cluster shares, whether its nodes run as child processes (node-processes.ts) or
// in this test process (in-process-nodes.ts): an identity of its own (key prefix, API key, JWT
// secret) so that runs sharing one Redis and MySQL never meet, the same short timings, and nodes
// reached over HTTP, TCP and WebSocket.
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
}

export function newClusterIdentity(): ClusterIdentity {
  return {
    prefix: `t${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`,
    apiKey: `key-${crypto.randomUUID()}`,
    jwtSecret: `jwt-${crypto.randomUUID()}`,
  };
}

/** The environment of one test node, apart from its ports. */
export function nodeEnv(identity: ClusterIdentity, nodeId: string, settings: ClusterSettings, logLevel: string): Record<string, string> {
  return {
    HOST: "127.0.0.1",
    NODE_ID: nodeId,
    KEY_PREFIX: identity.prefix,
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
