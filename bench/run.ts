// Runs every benchmark in sequence with modest defaults (the whole run stays under 5 minutes on a
// 2-core machine), each in its own process so that one's memory and JIT state never skew the next.
// Each script starts and stops its own cluster; this one only sequences them.
import path from "node:path";
import type { Subprocess } from "bun";
import { parseArgs } from "./lib/args";

const args = parseArgs({ only: "logins,idle-memory,private,room-fanout", maxSeconds: 290 });

/** name → flags: shorter windows and one repetition; RESULTS.md used the standalone defaults. */
const PLAN: Record<string, string[]> = {
  logins: ["--n", "2000", "--reps", "1", "--warmup", "500", "--maxSeconds", "60"],
  "idle-memory": ["--tcp", "5000", "--ws", "5000", "--settleS", "20", "--maxSeconds", "120"],
  private: ["--rates", "1000,3000,5000", "--duration", "10", "--drainMs", "3000", "--clearMs", "10000", "--maxSeconds", "120"],
  "room-fanout": ["--rates", "50,100,200,300,400,700,1000", "--duration", "10", "--clearMs", "10000", "--maxSeconds", "120"],
};

const started = performance.now();
let child: Subprocess | null = null;
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    // the child stops its own nodes on SIGTERM
    child?.kill("SIGTERM");
    process.exit(130);
  });
}
const watchdog = setTimeout(() => {
  console.error(`bench/run.ts: ${args.maxSeconds} s reached; stopping`);
  child?.kill("SIGTERM");
  setTimeout(() => process.exit(2), 20_000);
}, args.maxSeconds * 1000);

const failed: string[] = [];
for (const name of args.only.split(",").filter(Boolean)) {
  const flags = PLAN[name];
  if (!flags) throw new Error(`unknown benchmark ${name}; known: ${Object.keys(PLAN).join(", ")}`);
  child = Bun.spawn([process.execPath, path.join(import.meta.dir, `${name}.ts`), ...flags], { stdout: "inherit", stderr: "inherit" });
  const code = await child.exited;
  child = null;
  if (code !== 0) failed.push(`${name} (exit ${code})`);
}
clearTimeout(watchdog);
console.log(`\nbench/run.ts: done in ${((performance.now() - started) / 1000).toFixed(0)} s${failed.length ? `; failed: ${failed.join(", ")}` : ""}`);
process.exit(failed.length ? 1 : 0);
