// Logins per second through the whole login path (token check, presence binding, kept-message
// replay query, im-online job), over TCP (LOGIN frame → answer) and WebSocket (upgrade with token →
// LOGIN answer). Tokens are fetched over HTTP beforehand and TCP connects are made beforehand: only
// the login itself is timed. Sessions alternate between the two nodes.
import { parseArgs } from "./lib/args";
import { startCluster } from "./lib/cluster";
import { CpuMeter, cpuColumns, GENERATOR_SATURATED_PCT } from "./lib/cpu";
import { imTokens, newUserIds } from "./lib/http";
import type { LeanClient } from "./lib/lean-client";
import { runMain } from "./lib/lifecycle";
import { pinSelf } from "./lib/pin";
import { note, printHeader, printTable, type Row } from "./lib/report";
import { closeAll, connectTcp, loginTcp, openWs, type SessionSpec } from "./lib/sessions";
import { medianRow, percentile } from "./lib/stats";

const args = parseArgs({ n: 2000, reps: 3, window: 200, transports: "tcp,ws", warmup: 1000, maxSeconds: 300 });

runMain("logins", args.maxSeconds, async () => {
  pinSelf();
  printHeader(`logins: ${args.n} per transport, ${args.window} in flight, ${args.reps} repetitions`);
  const cluster = await startCluster();
  const bases = cluster.nodes.map((n) => n.httpBase);
  const meter = new CpuMeter({ A: cluster.nodes[0].pid, B: cluster.nodes[1].pid, redis: cluster.redisPid, db: cluster.dbPid });
  const transports = args.transports.split(",") as Array<"tcp" | "ws">;
  const rows: Row[] = [];

  // a fresh node runs its first logins several times slower (JIT, pools, workers): warm it up first
  for (let rep = 0; rep <= args.reps; rep++) {
    for (const kind of transports) {
      if (rep === 0 && args.warmup <= 0) continue;
      const n = rep === 0 ? args.warmup : args.n;
      const users = newUserIds(n);
      const tokens = await imTokens(bases, users);
      const specs: SessionSpec[] = users.map((userId, i) => ({ userId, token: tokens[i], node: cluster.nodes[i % 2], kind }));
      let clients: LeanClient[];
      let latencies: number[];
      let wallMs: number;
      if (kind === "tcp") {
        const tcp = await connectTcp(specs);
        meter.start();
        const t0 = performance.now();
        latencies = await loginTcp(tcp, specs, { window: args.window });
        wallMs = performance.now() - t0;
        clients = tcp;
      } else {
        meter.start();
        const t0 = performance.now();
        const ws = await openWs(specs, { window: args.window });
        wallMs = performance.now() - t0;
        clients = ws.clients;
        latencies = ws.latencies;
      }
      const cpu = meter.stop();
      if (rep === 0) {
        console.log(`warm-up ${kind}: ${Math.round(n / (wallMs / 1000))} logins/s (not counted)`);
        await closeAll(clients, 2000);
        continue;
      }
      rows.push({
        transport: kind,
        rep,
        logins: args.n,
        "logins/s": args.n / (wallMs / 1000),
        "p50 ms": percentile(latencies, 50),
        "p99 ms": percentile(latencies, 99),
        "max ms": percentile(latencies, 100),
        ...cpuColumns(cpu),
      });
      console.log(`rep ${rep} ${kind}: ${Math.round(args.n / (wallMs / 1000))} logins/s`);
      // let the close cleanups (unbind, im-offline jobs) finish before the next measurement
      await closeAll(clients, 2000);
    }
  }

  console.log("\nevery repetition:\n");
  printTable(rows);
  const medians = transports.map((t) => medianRow(rows.filter((r) => r.transport === t)));
  for (const m of medians) m.rep = `median of ${args.reps}`;
  console.log(`medians:\n`);
  printTable(medians);
  note(`before the measured repetitions, ${args.warmup} logins per transport warm the fresh nodes up (unmeasured): the first logins after a start run up to 2× slower.`);
  note("TCP latency: LOGIN frame sent → LOGIN answer on an open connection. WS latency: new WebSocket → LOGIN answer (TCP connect + HTTP upgrade + login).");
  note("node CPU is % of one core; both nodes share core 0, so A + B near 100 % means the servers are saturated.");
  note("redis % and mariadb % are whole-service figures: other users of this machine count in them too; core0/core1 busy % = how busy each core was, by anyone.");
  for (const m of medians) {
    if ((m["gen %"] as number) >= GENERATOR_SATURATED_PCT) note(`${m.transport}: the load generator was near 100 % of its core: the login rate is a lower bound`);
  }
  note(cluster.logSummary());
});
