// RSS growth of one node per idle logged-in connection: `tcp` TCP sessions, then `ws` WebSocket
// sessions on top (or the other way round: --order ws,tcp), all on node A. Tokens come from node B so that A's growth is only the
// connections. A short warm-up (connections opened and closed) comes before the baseline, so JIT
// code and pools that any first connection creates are not charged to the idle ones.
import { parseArgs } from "./lib/args";
import { startCluster, type Cluster } from "./lib/cluster";
import { procRssBytes } from "./lib/cpu";
import { imTokens, newUserIds } from "./lib/http";
import type { LeanClient } from "./lib/lean-client";
import { runMain } from "./lib/lifecycle";
import { pinSelf } from "./lib/pin";
import { note, printHeader, printTable, type Row } from "./lib/report";
import { closeAll, openSessions, type SessionSpec } from "./lib/sessions";
import { medianRow } from "./lib/stats";

const args = parseArgs({ tcp: 5000, ws: 5000, order: "tcp,ws", loginWindow: 50, warmup: 200, settleS: 45, trace: false, reps: 1, maxSeconds: 600 });

/**
 * The lowest RSS over `settleS` seconds, sampled every second. A login burst leaves garbage that
 * the engine hands back to the OS late and in steps (drops were seen up to ~40 s after a burst);
 * a reading taken earlier charges that garbage to whichever transport logged in first. The minimum
 * over the window is the closest to what the idle connections really keep.
 */
async function settledRss(pid: number, settleS: number): Promise<number> {
  let min = Infinity;
  for (let s = 0; s < settleS; s++) {
    const bytes = procRssBytes(pid);
    if (args.trace) console.log(`  rss ${(bytes / 2 ** 20).toFixed(1)} MB at ${s} s`);
    min = Math.min(min, bytes);
    if (s < settleS - 1) await Bun.sleep(1000);
  }
  return min;
}

async function specsFor(cluster: Cluster, n: number, kind: "tcp" | "ws"): Promise<SessionSpec[]> {
  const users = newUserIds(n);
  const tokens = await imTokens([cluster.nodes[1].httpBase], users, 64);
  return users.map((userId, i) => ({ userId, token: tokens[i], node: cluster.nodes[0], kind }));
}

async function once(rep: number, order: Array<"tcp" | "ws">): Promise<Row> {
  const cluster = await startCluster();
  const [a, b] = cluster.nodes;
  const warm = [...(await specsFor(cluster, args.warmup, "tcp")), ...(await specsFor(cluster, args.warmup, "ws"))];
  const specs = { tcp: await specsFor(cluster, args.tcp, "tcp"), ws: await specsFor(cluster, args.ws, "ws") };

  await closeAll(await openSessions(warm, { window: 200 }), 1000);
  const baseB = procRssBytes(b.pid);
  const base = await settledRss(a.pid, args.settleS);

  const open: LeanClient[] = [];
  const perConn: Record<string, number> = {};
  let before = base;
  for (const kind of order) {
    open.push(...(await openSessions(specs[kind], { window: args.loginWindow })));
    const after = await settledRss(a.pid, args.settleS);
    perConn[kind] = (after - before) / 1024 / specs[kind].length;
    before = after;
  }
  const afterB = procRssBytes(b.pid);
  const stillOpen = open.filter((c) => !c.closed).length;

  await closeAll(open, 500);
  await cluster.stop();
  return {
    rep,
    order: order.join(" then "),
    "baseline RSS MB": base / 2 ** 20,
    "TCP sessions": args.tcp,
    "KB per TCP": perConn.tcp,
    "WS sessions": args.ws,
    "KB per WS": perConn.ws,
    "KB per session, all": (before - base) / 1024 / (args.tcp + args.ws),
    "RSS with all MB": before / 2 ** 20,
    "open at end": stillOpen,
    "node B drift MB": (afterB - baseB) / 2 ** 20,
  };
}

runMain("idle-memory", args.maxSeconds, async () => {
  pinSelf();
  printHeader(`idle memory: ${args.tcp} TCP then ${args.ws} WS logged-in sessions on node A, ${args.reps} repetition(s)`);
  const rows: Row[] = [];
  for (let rep = 1; rep <= args.reps; rep++) {
    rows.push(await once(rep, args.order.split(",") as Array<"tcp" | "ws">));
    console.log(`rep ${rep}: ${(rows[rep - 1]["KB per TCP"] as number).toFixed(2)} KB/TCP, ${(rows[rep - 1]["KB per WS"] as number).toFixed(2)} KB/WS`);
  }
  console.log("");
  printTable(rows);
  if (args.reps > 1) {
    const m = medianRow(rows);
    m.rep = `median of ${args.reps}`;
    printTable([m]);
  }
  note("each repetition starts a fresh cluster (RSS is rarely given back, so a reused node would skew the next one).");
  note(`KB per connection = RSS delta / sessions; each RSS is the lowest of ${args.settleS} samples 1 s apart (the login burst's garbage is returned to the OS late and in steps). The sessions are idle (HEARTBEAT_SECONDS=600: no heartbeats, no reaping).`);
  note(`logins run ${args.loginWindow} at a time: a gentler burst leaves less garbage to be returned late. Even so the engine gives memory back in chunks of ~20 MB (≈ 4 KB per connection at 5,000), so single figures move by that much; 'KB per session, all' (both phases over the whole time) is the steadiest.`);
  note("WebSockets stay in the text form (no binary frame sent), as a browser would.");
  note("'node B drift' is the RSS change of the other, untouched node over the same time: a noise reference.");
});
