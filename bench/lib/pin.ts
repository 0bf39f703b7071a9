// CPU pinning as PERFORMANCE.md asks: nodes on core 0, the load generator on core 1, so neither
// steals the other's core and each side's CPU figure means "share of one core".
import os from "node:os";

export const NODE_CPU = 0;
export const GENERATOR_CPU = 1;

/** BENCH_REDIS=pinned: each run starts a Redis of its own on the nodes' core (bench/lib/cluster.ts). */
export const OWN_REDIS = process.env.BENCH_REDIS === "pinned";

/** Pinning only makes sense with taskset and at least two cores. */
export const canPin = Bun.which("taskset") !== null && os.availableParallelism() >= 2;

/** Pin every thread of this process (-a) to one core. Threads created later inherit it. */
export function pinSelf(cpu = GENERATOR_CPU): boolean {
  if (!canPin) return false;
  const r = Bun.spawnSync(["taskset", "-a", "-cp", String(cpu), String(process.pid)], { stdout: "ignore", stderr: "ignore" });
  return r.exitCode === 0;
}

/** The argv prefix that starts a command pinned to `cpu` (empty without taskset). */
export function pinPrefix(cpu = NODE_CPU): string[] {
  return canPin ? ["taskset", "-c", String(cpu)] : [];
}
