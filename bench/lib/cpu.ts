// CPU and memory of processes, read from /proc, so the servers' cost can be reported next to the
// load generator's own (process.cpuUsage). Figures are "% of one core" over a window.
import { readdirSync, readFileSync } from "node:fs";

const CLK_TCK = Number(Bun.spawnSync(["getconf", "CLK_TCK"]).stdout.toString().trim()) || 100;

/** utime and stime of a process, in seconds (null when it is gone). */
export function procCpuTimes(pid: number): { user: number; sys: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // fields after the command name, which is in parentheses and may hold spaces
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // rest[0] is field 3 (state); utime and stime are fields 14 and 15
    return { user: Number(rest[11]) / CLK_TCK, sys: Number(rest[12]) / CLK_TCK };
  } catch {
    return null;
  }
}

/** utime + stime of a process, in seconds (null when it is gone). */
export function procCpuSeconds(pid: number): number | null {
  const t = procCpuTimes(pid);
  return t === null ? null : t.user + t.sys;
}

/** Resident set size of a process in bytes (VmRSS). */
export function procRssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(status);
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

/** The pid of the first process whose command name is one of `names` (e.g. redis-server). */
export function findPid(names: string[]): number | null {
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const comm = readFileSync(`/proc/${entry}/comm`, "utf8").trim();
      if (names.includes(comm)) return Number(entry);
    } catch {
      // raced with the process exiting
    }
  }
  return null;
}

/** Busy and total jiffies of each core, from /proc/stat. */
function coreTimes(): Array<{ busy: number; total: number }> {
  const out: Array<{ busy: number; total: number }> = [];
  for (const line of readFileSync("/proc/stat", "utf8").split("\n")) {
    const m = /^cpu(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const v = m[2].split(/\s+/).map(Number);
    // user nice system idle iowait irq softirq steal ...: idle + iowait are not busy
    const total = v.slice(0, 8).reduce((x, y) => x + y, 0);
    out[Number(m[1])] = { busy: total - v[3] - v[4], total };
  }
  return out;
}

export interface CpuSample {
  wallS: number;
  /** This process (the load generator), % of one core. */
  self: number;
  /** Each watched process by name, % of one core (NaN when it could not be read). */
  procs: Record<string, number>;
  /** The kernel's share (stime) of each watched process's CPU, %. */
  sysShare: Record<string, number>;
  /** How busy each core was, by anyone (other users of the machine included), %. */
  cores: number[];
}

/** The CPU columns every report prints, in one order: both nodes, the generator, Redis, MariaDB, each core. */
export function cpuColumns(cpu: CpuSample): Record<string, number> {
  return {
    "node A %": cpu.procs.A,
    "node B %": cpu.procs.B,
    "gen %": cpu.self,
    "redis %": cpu.procs.redis,
    "mariadb %": cpu.procs.db,
    "core0 busy %": cpu.cores[0],
    "core1 busy %": cpu.cores[1],
  };
}

/**
 * Measures a window: start() then stop(). Watched processes are named, e.g. {A: pid, B: pid,
 * redis: pid}. Shared services (Redis, MariaDB) also serve other users of this machine.
 */
export class CpuMeter {
  private t0 = 0;
  private self0 = process.cpuUsage();
  private procs0: Record<string, { user: number; sys: number } | null> = {};
  private cores0 = coreTimes();

  constructor(private readonly pids: Record<string, number | null>) {}

  start(): this {
    this.t0 = performance.now();
    this.self0 = process.cpuUsage();
    this.cores0 = coreTimes();
    for (const [name, pid] of Object.entries(this.pids)) this.procs0[name] = pid === null ? null : procCpuTimes(pid);
    return this;
  }

  stop(): CpuSample {
    const wallS = (performance.now() - this.t0) / 1000;
    const d = process.cpuUsage(this.self0);
    const procs: Record<string, number> = {};
    const sysShare: Record<string, number> = {};
    for (const [name, pid] of Object.entries(this.pids)) {
      const before = this.procs0[name];
      const after = pid === null ? null : procCpuTimes(pid);
      if (before == null || after == null) {
        procs[name] = sysShare[name] = NaN;
        continue;
      }
      const user = after.user - before.user;
      const sys = after.sys - before.sys;
      procs[name] = (100 * (user + sys)) / wallS;
      sysShare[name] = user + sys > 0 ? (100 * sys) / (user + sys) : NaN;
    }
    const cores = coreTimes().map((c, i) => {
      const c0 = this.cores0[i];
      return c0 && c.total > c0.total ? (100 * (c.busy - c0.busy)) / (c.total - c0.total) : NaN;
    });
    return { wallS, self: (d.user + d.system) / 1e4 / wallS, procs, sysShare, cores };
  }
}

/** The generator is "near 100 %" of its core from here on: its figures are then a lower bound. */
export const GENERATOR_SATURATED_PCT = 90;
