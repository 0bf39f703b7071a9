// Real nodes inside this test process (different ports and ids; one shared Redis and MySQL): quicker
// to start than node processes, and a test can reach into a node (its RunningNode) directly.
import { loadConfig } from "../../src/config";
import { createLogger } from "../../src/log";
import { startNode, type RunningNode } from "../../src/node";
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
