// The page's one ImClient. A connection watches at most one room, chosen at LOGIN, so entering or
// leaving a room replaces it; replacements run one after another, so quick clicks can never leave
// two clients of one user alive (the newer would kick the older).
import { ImClient } from "../client/browser";

/** Called once per new client: `isCurrent` turns false when it has been replaced or closed. */
export type Listen = (client: ImClient, isCurrent: () => boolean) => void;

export class PageConnection {
  private client: ImClient | null = null;
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly listen: Listen) {}

  get current(): ImClient {
    if (!this.client) throw new Error("not connected yet");
    return this.client;
  }

  /**
   * Log the current client out, then connect a new one watching `roomId` (or no room). Private
   * messages that arrive in between are kept by the server and delivered at the new login.
   */
  open(jwt: string, roomId?: number): Promise<void> {
    return this.serial(async () => {
      await this.drop();
      const next = await ImClient.fromConfig(location.origin, jwt, { roomId });
      this.client = next;
      this.listen(next, () => this.client === next);
      await next.connect();
    });
  }

  close(): Promise<void> {
    return this.serial(() => this.drop());
  }

  private async drop(): Promise<void> {
    const old = this.client;
    this.client = null;
    await old?.logout();
  }

  private serial(job: () => Promise<void>): Promise<void> {
    const run = this.queue.then(job);
    this.queue = run.catch(() => {});
    return run;
  }
}
