// Client CPU per ioredis command under Bun, with and without the TracingChannel getter that
// src/redis/tracing-channel.ts adds (without it, ioredis 6 traces every command). Each run is a
// child process of its own (the getter, once added, is there for the whole process), alternated,
// pinned to the generator's core; each does `--batches` rounds of `--batch` GETs of a missing key
// through one auto-pipelining connection, and reports the CPU of its fastest rounds.
//   bun bench/redis-commands.ts [--runs 3]
import Redis from "ioredis";
import { addTracingChannelHasSubscribers } from "../src/redis/tracing-channel";
import { parseArgs } from "./lib/args";
import { canPin, GENERATOR_CPU, pinPrefix } from "./lib/pin";
import { note, printHeader, printTable, type Row } from "./lib/report";
import { median } from "./lib/stats";

const args = parseArgs({ runs: 3, rounds: 8, batches: 200, batch: 500, mode: "", redis: "redis://127.0.0.1:6379" });

/** One child's measurement: CPU ms per round of batches × batch GETs. */
async function measure(withGetter: boolean): Promise<number[]> {
  if (withGetter) addTracingChannelHasSubscribers();
  const redis = new Redis(args.redis, { enableAutoPipelining: true });
  const cpuMs: number[] = [];
  try {
    for (let round = 0; round < args.rounds; round++) {
      const before = process.cpuUsage();
      for (let b = 0; b < args.batches; b++) {
        await Promise.all(Array.from({ length: args.batch }, () => redis.get("live-im:bench:no-such-key")));
      }
      const used = process.cpuUsage(before);
      cpuMs.push((used.user + used.system) / 1000);
    }
  } finally {
    redis.disconnect();
  }
  return cpuMs;
}

if (args.mode !== "") {
  console.log(JSON.stringify(await measure(args.mode === "getter")));
} else {
  printHeader(`CPU per ioredis command: ${args.batches * args.batch} GETs per round, ${args.rounds} rounds per run, ${args.runs} runs per mode, alternated`, false);
  const perMode: Record<string, number[]> = { plain: [], getter: [] };
  for (let run = 0; run < args.runs; run++) {
    for (const mode of ["plain", "getter"]) {
      const child = Bun.spawn([...pinPrefix(GENERATOR_CPU), process.execPath, import.meta.path, "--mode", mode, "--rounds", String(args.rounds), "--batches", String(args.batches), "--batch", String(args.batch), "--redis", args.redis], { stdout: "pipe", stderr: "inherit" });
      const rounds = JSON.parse(await new Response(child.stdout).text()) as number[];
      if ((await child.exited) !== 0) throw new Error(`the ${mode} run failed`);
      // the fastest half of the rounds: the first ones pay for JIT warm-up
      const fastest = rounds.sort((a, b) => a - b).slice(0, Math.ceil(rounds.length / 2));
      perMode[mode].push(median(fastest));
    }
  }
  const commands = args.batches * args.batch;
  const rows: Row[] = Object.entries(perMode).map(([mode, runs]) => ({
    mode: mode === "plain" ? "ioredis as is (traces every command)" : "with the hasSubscribers getter",
    "CPU ms per round, each run": runs.map((ms) => ms.toFixed(0)).join(" / "),
    "µs CPU per command, median": Number(((median(runs) * 1000) / commands).toFixed(2)),
  }));
  printTable(rows);
  note(`each run is a child process${canPin ? ` pinned to core ${GENERATOR_CPU} (taskset)` : ""}; Redis itself is not pinned. The figure per run is the median of its fastest ${Math.ceil(args.rounds / 2)} rounds.`);
}
