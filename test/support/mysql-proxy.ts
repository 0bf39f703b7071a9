// A TCP proxy between nodes and MySQL that a test can pause (a stalled server or a blackholed
// network: connections stay open, nothing moves) and resume. Not a stand-in for MySQL: every byte
// goes to the real server.
import net from "node:net";
import { loadConfig } from "../../src/config";

export class MysqlProxy {
  private paused = false;
  private readonly pairs = new Set<{ client: net.Socket; upstream: net.Socket }>();

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
  ) {}

  /** `target`: by default the MySQL server of DATABASE_URL, where ownDatabaseUrl() puts a test's database. */
  static async start(target = mysqlServer()): Promise<MysqlProxy> {
    let proxy!: MysqlProxy;
    const server = net.createServer((client) => proxy.accept(client, target));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    proxy = new MysqlProxy(server, (server.address() as net.AddressInfo).port);
    return proxy;
  }

  /** `databaseUrl`, through this proxy. */
  url(databaseUrl: string): string {
    const u = new URL(databaseUrl);
    u.hostname = "127.0.0.1";
    u.port = String(this.port);
    return u.toString();
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

  async close(): Promise<void> {
    for (const p of this.pairs) {
      p.client.destroy();
      p.upstream.destroy();
    }
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket, target: { host: string; port: number }): void {
    const upstream = net.createConnection(target);
    const pair = { client, upstream };
    this.pairs.add(pair);
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("close", end).on("error", end);
    upstream.on("close", end).on("error", end);
    if (this.paused) {
      client.pause();
      upstream.pause();
    }
  }
}

function mysqlServer(): { host: string; port: number } {
  const url = new URL(loadConfig({ ...process.env, NODE_ENV: "development" }).db.url);
  return { host: url.hostname, port: Number(url.port || 3306) };
}
