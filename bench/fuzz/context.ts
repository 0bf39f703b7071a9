// What the fuzz cases of a run share (the nodes and the cluster's secrets, the live room, the
// batch's users with fresh IM tokens, msgIds delivered to someone else, the tally) and what each
// case carries: its label, its own random stream, and shorthands for reporting.
import type { ProcessCluster, ProcessNode } from "../../test/support/node-processes";
import { Rng } from "./prng";
import type { InputKind, ProblemKind, Tally } from "./tally";

export interface PoolUser {
  userId: number;
  token: string;
  /** The node whose im/config gave the token. */
  node: ProcessNode;
}

export interface Run {
  seed: number;
  cluster: ProcessCluster;
  /** The live room the cases join and write to; a watcher on node B sits in it all run. */
  room: number;
  /** This batch's users: cases log in as them, on either node, several at once. */
  users: PoolUser[];
  /** msgIds delivered to the control pair: an ACK for one from another user must be refused quietly. */
  othersMsgIds: string[];
  tally: Tally;
}

export class Case {
  readonly rng: Rng;

  constructor(
    readonly run: Run,
    /** kind#n, in problems: the seed and this label give the case's inputs again. */
    readonly label: string,
  ) {
    this.rng = Rng.forCase(run.seed, label);
  }

  node(): ProcessNode {
    return this.rng.pick(this.run.cluster.nodes);
  }

  user(): PoolUser {
    return this.rng.pick(this.run.users);
  }

  inputs(kind: InputKind, n = 1): void {
    this.run.tally.input(kind, n);
  }

  problem(kind: ProblemKind, detail: string): void {
    this.run.tally.problem(kind, `${this.label}: ${detail}`);
  }
}
