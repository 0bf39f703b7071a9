// The shared frame of a test file that runs against two real node processes: the cluster starts
// before the file's tests and stops after them; clients and raw TCP connections a test opens are
// closed after it; `db` looks at Redis directly.
import { afterAll, afterEach, beforeAll } from "bun:test";
import { Clients } from "./clients";
import { connectTestRedis, imToken, newUserId } from "./http-api";
import { startNodeProcesses, type ProcessCluster, type ProcessNode } from "./node-processes";
import { RawTcp } from "./raw-tcp";

export class TwoNodeSuite {
  readonly clients = new Clients();
  readonly db = connectTestRedis();
  private readonly raws: RawTcp[] = [];
  private started: ProcessCluster | null = null;

  get cluster(): ProcessCluster {
    if (!this.started) throw new Error("the cluster starts in beforeAll");
    return this.started;
  }

  /** A raw TCP connection, closed after the test. */
  async raw(node: ProcessNode): Promise<RawTcp> {
    return this.track(await RawTcp.connect(node.tcp));
  }

  /** A raw TCP connection logged in as a new (or the given) user, closed after the test. */
  async rawLogin(node: ProcessNode, userId = newUserId()): Promise<{ conn: RawTcp; userId: number }> {
    return { conn: this.track(await RawTcp.loggedIn(node.tcp, userId, await imToken(node, userId))), userId };
  }

  /** Registers the hooks; `onStart` gets the two nodes once they answer. */
  static start(onStart: (a: ProcessNode, b: ProcessNode) => void): TwoNodeSuite {
    const suite = new TwoNodeSuite();
    beforeAll(async () => {
      suite.started = await startNodeProcesses(2);
      const [a, b] = suite.started.nodes;
      onStart(a, b);
    });
    afterEach(() => {
      suite.clients.closeAll();
      for (const r of suite.raws.splice(0)) r.close();
    });
    afterAll(async () => {
      await suite.started?.stop();
      suite.db.disconnect();
    });
    return suite;
  }

  private track(conn: RawTcp): RawTcp {
    this.raws.push(conn);
    return conn;
  }
}
