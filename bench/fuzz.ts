// Fuzzing with hostile input, run by hand before a release (never part of `bun run test` or CI).
// Starts its own two node processes (test/support/node-processes.ts: a KEY_PREFIX, database, API key
// and JWT secret of their own; HEARTBEAT_SECONDS=5, ACK_TIMEOUT_MS=800, LOG_LEVEL=info) and throws
// malformed and racing input at them over TCP, WebSocket and HTTP, in batches of concurrent cases
// (bench/fuzz/). After each batch it checks that both nodes answer /healthz and /readyz, that a
// control pair still exchanges a private and a room message, that nothing of the batch is left
// online, and what the nodes logged. Prints the inputs thrown and every problem found; exits 1 when
// there was one. Bounded (--seconds of fuzzing, a hard limit 90 s later) and cleans up on Ctrl-C.
// Seeded: a case's inputs come from the seed and its label (tcp#12), printed with each problem.
//
//   bun bench/fuzz.ts [--seed N] [--seconds 100] [--only tcp,race,ws,http]
import { imToken, newUserId, openRoom } from "../test/support/http-api";
import { ProcessCluster } from "../test/support/node-processes";
import { DEFAULT_SETTINGS } from "../test/support/test-cluster";
import { checkControlPair, checkNodes, checkNoLeftovers } from "./fuzz/checks";
import { Case, type Run } from "./fuzz/context";
import { httpCase } from "./fuzz/http";
import { LogWatch } from "./fuzz/logs";
import { Rng } from "./fuzz/prng";
import { raceCase } from "./fuzz/race";
import { rawHttpCase, rawUpgradeCase } from "./fuzz/raw-requests";
import { Tally } from "./fuzz/tally";
import { tcpCase } from "./fuzz/tcp";
import { startWatcher } from "./fuzz/watcher";
import { wsCase } from "./fuzz/ws";
import { parseArgs } from "./lib/args";
import { onCleanup, runMain } from "./lib/lifecycle";

const args = parseArgs({ seed: Date.now() % 1_000_000, seconds: 100, only: "tcp,race,ws,http" });

interface Step {
  kind: string;
  /** Cases per batch, and how many run at once: 15 at once in all keeps a 2-core machine usable. */
  count: number;
  width: number;
  run: (c: Case) => Promise<void>;
}

const PARTS: Record<string, Step[]> = {
  tcp: [{ kind: "tcp", count: 60, width: 4, run: tcpCase }],
  race: [{ kind: "race", count: 40, width: 2, run: raceCase }],
  ws: [
    { kind: "ws", count: 40, width: 3, run: wsCase },
    { kind: "upgrade", count: 10, width: 1, run: rawUpgradeCase },
  ],
  http: [
    { kind: "http", count: 250, width: 4, run: httpCase },
    { kind: "rawhttp", count: 10, width: 1, run: rawHttpCase },
  ],
};
const only = args.only.split(",").filter(Boolean);
for (const p of only) {
  if (p in PARTS) continue;
  console.error(`--only: no part ${p}; parts: ${Object.keys(PARTS).join(",")}`);
  process.exit(2);
}
/** Users per batch: few enough that cases often share one (kicks, concurrent logins). */
const USERS = 12;

const tally = new Tally();
const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(0)} s`;
let about = `seed ${args.seed}, --seconds ${args.seconds}, --only ${only.join(",")}`;
// registered first, so it runs last: after the nodes stopped, also on Ctrl-C and at the time limit
onCleanup(() => tally.print(`${about}; ${elapsed()} in all\nreplay: bun bench/fuzz.ts --seed ${args.seed} --seconds ${args.seconds} --only ${only.join(",")}`));

/** Cases of one step, `width` at a time, until `count` ran or `until`; a case that throws is a problem. */
const caseNumbers = new Map<string, number>();
async function runCases(run: Run, step: Step, until: number): Promise<void> {
  let left = step.count;
  const worker = async () => {
    while (left-- > 0 && Date.now() < until) {
      const n = (caseNumbers.get(step.kind) ?? 0) + 1;
      caseNumbers.set(step.kind, n);
      const c = new Case(run, `${step.kind}#${n}`);
      await step.run(c).catch((err: Error) => c.problem("case threw", err.stack?.slice(0, 400) ?? String(err)));
    }
  };
  await Promise.all(Array.from({ length: step.width }, worker));
}

runMain("fuzz", args.seconds + 90, async () => {
  const cluster = new ProcessCluster({ ...DEFAULT_SETTINGS, heartbeatSeconds: 5, ackTimeoutMs: 800 });
  onCleanup(() => cluster.stop());
  await cluster.addNode();
  await cluster.addNode();
  about += `; nodes' logs in ${cluster.nodes.map((n) => n.logPath.replace(`${process.cwd()}/`, "")).join(", ")}`;
  console.log(`fuzz: ${about}`);
  const stopAt = Date.now() + args.seconds * 1000;
  const run: Run = { seed: args.seed, cluster, room: await openRoom(cluster.nodes[0]), users: [], othersMsgIds: [], tally };
  const logs = new LogWatch(cluster.nodes, tally);
  const watcher = await startWatcher(run);
  await checkNodes(run, "start");
  await checkControlPair(run, "start");
  // a batch needs ~10 s to be worth its checks
  for (let batch = 1; Date.now() < stopAt - 10_000; batch++) {
    const rng = Rng.forCase(args.seed, `batch#${batch}`);
    run.users = await Promise.all(
      Array.from({ length: USERS }, async () => {
        const node = rng.pick(cluster.nodes);
        const userId = newUserId();
        return { userId, node, token: await imToken(node, userId) };
      }),
    );
    const until = Math.min(stopAt, Date.now() + 30_000);
    await Promise.all(only.flatMap((p) => PARTS[p]).map((step) => runCases(run, step, until)));
    const label = `batch ${batch}`;
    await checkNodes(run, label);
    await checkControlPair(run, label);
    await checkNoLeftovers(run, label);
    logs.check(label);
    console.log(`[${elapsed()}] ${label} done: ${tally.problemCount} problems so far`);
  }
  about += `; ${watcher.stop()}`;
  logs.check("end");
  return tally.problemCount > 0 ? 1 : 0;
});
