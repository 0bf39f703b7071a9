// A TCP proxy between nodes and MySQL that a test can pause (a stalled server or a blackholed
// network: connections stay open, nothing moves) and resume. Not a stand-in for MySQL: every byte
// goes to the real server.
import { loadConfig } from "../../src/config";
import { TcpProxy, type Pair, type Target } from "./tcp-proxy";

export class MysqlProxy extends TcpProxy {
  private paused = false;

  /** `target`: by default the MySQL server of DATABASE_URL, where ownDatabaseUrl() puts a test's database. */
  static start(target: Target = mysqlServer()): Promise<MysqlProxy> {
    return new MysqlProxy().listen(target);
  }

  /** Connections open now and later stop passing bytes either way (nothing is closed). */
  pause(): void {
    this.paused = true;
    for (const p of this.pairs) {
      p.client.pause();
      p.upstream.pause();
    }
  }

  resume(): void {
    this.paused = false;
    for (const p of this.pairs) {
      p.client.resume();
      p.upstream.resume();
    }
  }

  protected accept({ client, upstream }: Pair): void {
    client.pipe(upstream);
    upstream.pipe(client);
    if (this.paused) {
      client.pause();
      upstream.pause();
    }
  }
}

function mysqlServer(): Target {
  const url = new URL(loadConfig({ ...process.env, NODE_ENV: "development" }).db.url);
  return { host: url.hostname, port: Number(url.port || 3306) };
}
