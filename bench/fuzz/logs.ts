// Reads what the nodes logged since the last look (LOG_LEVEL=info, one pino JSON line each): a line
// at level >= 50, or one naming a TypeError, an unhandled rejection or the like at any level, is a
// problem; so is text that is not JSON (a crash trace: its consecutive lines are one problem), but
// for Bun's own note on a request whose client stalled (the raw HTTP cases make those). Warnings
// (level 40) are counted for the summary.
import { readFileSync, statSync } from "node:fs";
import type { ProcessNode } from "../../test/support/node-processes";
import type { Tally } from "./tally";

const BAD_LOG = /unhandled|typeerror|uncaught|referenceerror|rangeerror|syntaxerror|segmentation|panic/i;
const BUN_STALLED_REQUEST = "warn: Bun.serve() timed out a request";

interface LogRecord {
  level?: unknown;
  msg?: unknown;
  err?: { type?: string; message?: string };
}

export class LogWatch {
  private readonly offsets = new Map<ProcessNode, number>();

  /** Start after what the nodes logged so far (their start-up). */
  constructor(
    private readonly nodes: ProcessNode[],
    private readonly tally: Tally,
  ) {
    for (const n of nodes) this.offsets.set(n, statSync(n.logPath).size);
  }

  check(label: string): void {
    for (const n of this.nodes) {
      const from = this.offsets.get(n)!;
      const bytes = readFileSync(n.logPath);
      // only whole lines: the rest is read next time
      const to = bytes.lastIndexOf(10) + 1;
      if (to <= from) continue;
      this.offsets.set(n, to);
      this.lines(`[${label}] ${n.nodeId}`, bytes.subarray(from, to).toString("utf8").split("\n"));
    }
  }

  private lines(where: string, lines: string[]): void {
    let trace: string[] = [];
    const endTrace = () => {
      // the error's own line first: the source lines Bun prints above it fill any excerpt
      if (trace.length > 0) this.tally.problem("log line not JSON", `${where}: ${trace.find((l) => /error/i.test(l)) ?? ""} ⏎ ${trace.join(" ⏎ ")}`);
      trace = [];
    };
    for (const line of lines) {
      if (!line.trim() || line.startsWith(BUN_STALLED_REQUEST)) continue;
      const rec = parseRecord(line);
      if (rec === null) {
        trace.push(line.trim());
        continue;
      }
      endTrace();
      const short = `level ${rec.level} "${rec.msg}"${rec.err ? ` ${rec.err.type}: ${rec.err.message}` : ""}`;
      if (Number(rec.level) >= 50) this.tally.problem("log level >= 50", `${where}: ${short}`);
      else if (BAD_LOG.test(line)) this.tally.problem("log names TypeError/unhandled", `${where}: ${short} ${line.slice(0, 400)}`);
      else if (Number(rec.level) >= 40) this.tally.warning(String(rec.msg));
    }
    endTrace();
  }
}

/** A pino record, or null for anything else. */
function parseRecord(line: string): LogRecord | null {
  try {
    const rec = JSON.parse(line) as LogRecord | null;
    return typeof rec?.level === "number" ? rec : null;
  } catch {
    return null;
  }
}
