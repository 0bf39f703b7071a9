// ImClients made for a test through a node's im/config, with test timings; closeAll() in afterEach.
import { ImClient, nativeConnectors, type FromConfigOptions } from "../../src/client";
import { devJwt, newUserId } from "./http-api";
import type { TestNode } from "./test-cluster";

export class Clients {
  private readonly made = new Set<ImClient>();

  /** An ImClient for a new or given user via `nodes[0]`'s im/config (failing over to the rest), not yet connected. */
  async make(nodes: TestNode | TestNode[], opts: FromConfigOptions & { userId?: number } = {}): Promise<ImClient> {
    const list = Array.isArray(nodes) ? nodes : [nodes];
    const userId = opts.userId ?? newUserId();
    const client = await ImClient.fromConfig(
      list.map((n) => n.http),
      await devJwt(list[0], userId, opts.appId === undefined ? {} : { appId: opts.appId }),
      { connectors: nativeConnectors, heartbeatMs: 400, timeoutMs: 5000, reconnect: { initialMs: 50, maxMs: 500 }, ...opts, userId },
    );
    this.made.add(client);
    return client;
  }

  /** make() then connect(). */
  async online(nodes: TestNode | TestNode[], opts: FromConfigOptions & { userId?: number } = {}): Promise<ImClient> {
    const client = await this.make(nodes, opts);
    await client.connect();
    return client;
  }

  closeAll(): void {
    for (const c of this.made) c.close();
    this.made.clear();
  }
}
