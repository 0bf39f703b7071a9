// What every benchmark prints: the machine and command first, then markdown tables (so figures can
// be pasted into RESULTS.md as printed), then notes.
import { readFileSync } from "node:fs";
import os from "node:os";
import { commandLine } from "./args";
import { canPin, OWN_REDIS } from "./pin";

function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"));
    return m ? m[1].trim() : os.cpus()[0]?.model ?? "?";
  } catch {
    return os.cpus()[0]?.model ?? "?";
  }
}

/** The code under test: HEAD, and whether src/ had uncommitted changes (others work in this tree). */
function codeVersion(): string {
  const git = (...a: string[]) => Bun.spawnSync(["git", ...a], { cwd: import.meta.dir }).stdout.toString().trim();
  const head = git("rev-parse", "--short", "HEAD");
  if (!head) return "unknown (no git)";
  const dirty = git("status", "--porcelain", "--", "../../src").length > 0;
  return `${head}${dirty ? " + uncommitted changes in src/" : ""}`;
}

/** `withNodes` false: a script that starts no nodes (and pins nothing). */
export function printHeader(title: string, withNodes = true): void {
  console.log(`\n## ${title}\n`);
  console.log(`- command: \`${commandLine()}\``);
  console.log(`- date: ${new Date().toISOString()}, code: ${codeVersion()}`);
  console.log(`- machine: nproc ${os.availableParallelism()}, ${cpuModel()}, bun ${Bun.version}`);
  if (!withNodes) console.log("- pinning: none (no nodes: this process alone)");
  else
    console.log(
      canPin
        ? OWN_REDIS
          ? "- pinning: nodes and the run's own Redis on core 0 (taskset -c 0), this load generator on core 1; MariaDB is a shared service, not pinned"
          : "- pinning: nodes on core 0 (taskset -c 0), this load generator on core 1; Redis and MariaDB are shared services, not pinned"
        : "- pinning: none (no taskset or a single core): nodes and generator share the cores",
    );
  console.log("");
}

export type Row = Record<string, string | number>;

/** Format a number for a table: integers grouped, small values with a few decimals. */
export function fmt(v: number | string, digits = 1): string {
  if (typeof v === "string") return v;
  if (Number.isNaN(v)) return "n/a";
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString("en-US");
  return Number.isInteger(v) ? String(v) : v.toFixed(digits);
}

export function printTable(rows: Row[]): void {
  if (rows.length === 0) return;
  const cols = Object.keys(rows[0]);
  console.log(`| ${cols.join(" | ")} |`);
  console.log(`| ${cols.map(() => "---:").join(" | ")} |`);
  for (const r of rows) console.log(`| ${cols.map((c) => fmt(r[c] ?? "")).join(" | ")} |`);
  console.log("");
}

export function note(text: string): void {
  console.log(`- ${text}`);
}
