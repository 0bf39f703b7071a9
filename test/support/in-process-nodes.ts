// Real nodes inside this test process (different ports and ids; one shared Redis and MySQL): quicker
// to start than node processes, and a test can reach into a node (its RunningNode) directly.
import { afterAll, beforeAll } from "bun:test";
import { loadConfig } from "../../src/config";
import { createLogger } from "../../src/log";
import { startNode, type RunningNode } from "../../src/node";
import { connectTestRedis } from "./http-api";
import { RawTcp } from "./raw-tcp";
import { DEFAULT_SETTINGS, dropOwnDatabase, newClusterIdentity, nodeEnv, removeClusterKeys, type ClusterIdentity, type ClusterSettings, type TestNode } from "./test-cluster";

export interface InProcessNode extends TestNode {
  running: RunningNode;
}

export interface InProcessCluster extends ClusterIdentity {
  nodes: InProcessNode[];
  /** Graceful stop of every node (see RunningNode.stop), then their Redis keys and database are deleted; never throws. */
  stop(): Promise<void>;
}

/** `env`: more environment for every node (e.g. ROLES). */
export async function startInProcessNodes(count: number, settings: Partial<ClusterSettings> = {}, env: Record<string, string> = {}): Promise<InProcessCluster> {
  const identity = newClusterIdentity();
  const nodes: InProcessNode[] = [];
  const stop = async () => {
    await Promise.allSettled(nodes.map((n) => n.running.stop()));
    await Promise.all([removeClusterKeys(identity.prefix), dropOwnDatabase(identity.databaseUrl)]);
  };
  try {
    for (let i = 0; i < count; i++) {
      const nodeId = `${identity.prefix}-n${i}`;
      const config = loadConfig({ ...process.env, ...nodeEnv(identity, nodeId, { ...DEFAULT_SETTINGS, ...settings }, "warn"), PORT: "0", TCP_PORT: "0", ...env });
      const running = await startNode(config, createLogger(nodeId, config.logLevel));
      nodes.push({
        nodeId,
        running,
        http: `http://127.0.0.1:${running.httpPort}`,
        tcp: `127.0.0.1:${running.tcpPort}`,
        ws: `ws://127.0.0.1:${running.httpPort}/ws`,
      });
    }
  } catch (err) {
    // the nodes already started would keep running (and consuming the queues) otherwise
    await stop();
    throw err;
  }
  return { ...identity, nodes, stop };
}

/**
 * The shared frame of a test file that runs against two in-process nodes: started before the
 * file's tests, stopped after them, with the raw TCP connections handed to track() closed first;
 * `redis` looks at Redis directly.
 */
export class InProcessPair {
  readonly redis = connectTestRedis();
  private readonly raws: RawTcp[] = [];
  private started: InProcessCluster | null = null;

  get cluster(): InProcessCluster {
    if (!this.started) throw new Error("the nodes start in beforeAll");
    return this.started;
  }

  /** A connection to close when the file's tests are done. */
  track<C extends RawTcp>(conn: C): C {
    this.raws.push(conn);
    return conn;
  }

  /** Registers the hooks; `env` goes to both nodes, `onStart` gets them once they answer. */
  static start(env: Record<string, string>, onStart: (a: InProcessNode, b: InProcessNode) => void): InProcessPair {
    const pair = new InProcessPair();
    beforeAll(async () => {
      pair.started = await startInProcessNodes(2, {}, env);
      const [a, b] = pair.started.nodes;
      onStart(a, b);
    });
    afterAll(async () => {
      for (const r of pair.raws) r.close();
      await pair.started?.stop();
      pair.redis.disconnect();
    });
    return pair;
  }
}
