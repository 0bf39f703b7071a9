// Prints a node's /metrics after some traffic on a two-node cluster: private messages between users
// on both nodes (TCP and WebSocket), room chat with members on both nodes. For the
// operations issue's closing note and for anyone who wants to see the metrics with values in them.
//   bun bench/metrics-demo.ts
import { parseArgs } from "./lib/args";
import { startCluster } from "./lib/cluster";
import { runMain } from "./lib/lifecycle";
import { ImClient, nativeConnectors } from "../src/client";

const args = parseArgs({ maxSeconds: 120 });

runMain("metrics-demo", args.maxSeconds, async () => {
  const cluster = await startCluster({ count: 2 });
  try {
    const [a, b] = cluster.nodes;
    const jwt = async (base: string, userId: number) => {
      const r = await fetch(`${base}/api/dev/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ userId }) });
      return ((await r.json()) as { token: string }).token;
    };
    const base = 900_000_000 + Math.floor(Math.random() * 1_000_000);
    const anchorJwt = await jwt(a.httpBase, base);
    const started = await fetch(`${a.httpBase}/api/living/start`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${anchorJwt}` },
      body: JSON.stringify({ type: 1, roomName: "metrics demo" }),
    });
    const { roomId } = (await started.json()) as { roomId: number };
    const users = await Promise.all(
      [a, b, a, b].map(async (node, i) => {
        const userId = base + 1 + i;
        const client = await ImClient.fromConfig([node.httpBase], await jwt(node.httpBase, userId), {
          connectors: nativeConnectors,
          userId,
          roomId,
          transport: i < 2 ? "tcp" : "ws",
        });
        await client.connect();
        return { userId, client };
      }),
    );
    for (let i = 0; i < 50; i++) {
      const from = users[i % 4];
      const to = users[(i + 1) % 4];
      await from.client.sendPrivate(to.userId, `private ${i}`);
      await from.client.sendRoom(`room ${i}`);
    }
    await Bun.sleep(1000);
    const text = await (await fetch(`${a.httpBase}/metrics`)).text();
    const wanted = /^im_/;
    console.log(`# node ${a.nodeId} after 50 private + 50 room messages among 4 users on 2 nodes`);
    console.log(text.split("\n").filter((l) => wanted.test(l)).join("\n"));
    for (const u of users) u.client.close();
  } finally {
    await cluster.stop();
  }
});
