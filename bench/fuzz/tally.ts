// What a fuzz run counts and prints: the inputs thrown, by kind, and every problem found, by kind
// (with a few distinct examples of each), plus the warnings the nodes logged (level 40, not a problem
// by themselves). The summary is what a release check reads; a run with any problem exits non-zero.

export type InputKind = "tcp frames" | "race logins" | "ws messages" | "ws upgrades" | "raw upgrades" | "http requests" | "raw http requests";

export type ProblemKind =
  | "http 5xx"
  | "http hang"
  | "api error not the error JSON"
  | "node not healthy"
  | "control pair failed"
  | "log level >= 50"
  | "log names TypeError/unhandled"
  | "log line not JSON"
  | "ERROR internal"
  | "server frame not parsable"
  | "session stuck"
  | "half-close not closed"
  | "connect failed"
  | "leftover sessions"
  | "room seq out of order"
  | "room watcher closed"
  | "case threw";

/** Examples kept per kind: enough to see whether they differ, not a wall of the same line. */
const EXAMPLES = 5;

export class Tally {
  private readonly inputs = new Map<InputKind, number>();
  private readonly problems = new Map<ProblemKind, { count: number; examples: Set<string> }>();
  private readonly warnings = new Map<string, number>();

  input(kind: InputKind, n = 1): void {
    this.inputs.set(kind, (this.inputs.get(kind) ?? 0) + n);
  }

  /** Recorded and printed at once (the run goes on: later problems may be its consequences). */
  problem(kind: ProblemKind, detail: string): void {
    console.log(`!! ${kind}: ${detail.slice(0, 600)}`);
    const p = this.problems.get(kind) ?? { count: 0, examples: new Set<string>() };
    p.count++;
    // long numbers (userIds, msgIds, ports) differ in every example of the same thing
    if (p.examples.size < EXAMPLES) p.examples.add(detail.replace(/\d{5,}/g, "N").slice(0, 300));
    this.problems.set(kind, p);
  }

  warning(msg: string): void {
    this.warnings.set(msg, (this.warnings.get(msg) ?? 0) + 1);
  }

  get problemCount(): number {
    return [...this.problems.values()].reduce((sum, p) => sum + p.count, 0);
  }

  print(header: string): void {
    const total = [...this.inputs.values()].reduce((a, b) => a + b, 0);
    console.log(`\n== fuzz summary: ${header}`);
    console.log(`inputs: ${total} (${[...this.inputs].map(([k, n]) => `${k} ${n}`).join(", ") || "none"})`);
    console.log(`problems: ${this.problemCount}`);
    for (const [kind, p] of this.problems) {
      console.log(`  ${p.count}× ${kind}`);
      for (const e of p.examples) console.log(`     - ${e}`);
    }
    console.log(`warnings logged (level 40): ${this.warnings.size === 0 ? "none" : ""}`);
    for (const [msg, n] of this.warnings) console.log(`  ${n}× ${msg}`);
  }
}
