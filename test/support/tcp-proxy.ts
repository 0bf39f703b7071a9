// What the tests' TCP proxies share: a listener on a free 127.0.0.1 port, the URL through it, and
// the client/upstream pairs it opened, each torn down when either side ends. Not a stand-in for any
// server: every byte goes to the real one; what a proxy does with them is its subclass's.
import net from "node:net";

export interface Target {
  host: string;
  port: number;
}

export interface Pair {
  client: net.Socket;
  upstream: net.Socket;
}

export abstract class TcpProxy {
  protected readonly pairs = new Set<Pair>();
  private server: net.Server | null = null;
  port = 0;

  /** Listen for clients; each is handed to accept() with its upstream connection to `target`. */
  protected async listen(target: Target): Promise<this> {
    const server = net.createServer((client) => {
      const upstream = net.createConnection(target);
      const pair = { client, upstream };
      this.pairs.add(pair);
      const end = () => {
        this.pairs.delete(pair);
        client.destroy();
        upstream.destroy();
      };
      client.on("close", end).on("error", end);
      upstream.on("close", end).on("error", end);
      this.accept(pair);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    this.server = server;
    this.port = (server.address() as net.AddressInfo).port;
    return this;
  }

  /** How the bytes of a new pair move. */
  protected abstract accept(pair: Pair): void;

  /** `url` (redis:// or mysql://) with its host and port replaced by this proxy's. */
  url(url: string): string {
    const u = new URL(url);
    u.hostname = "127.0.0.1";
    u.port = String(this.port);
    return u.toString();
  }

  async close(): Promise<void> {
    for (const p of this.pairs) {
      p.client.destroy();
      p.upstream.destroy();
    }
    const server = this.server;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
