// send() calls waiting for the server's answer, matched by clientMsgId.
import { ImClientError } from "./errors";
import { Waiter } from "./waiter";

export interface SendResult {
  clientMsgId: string;
  msgId: string;
}

export class PendingSends {
  private readonly waiting = new Map<string, Waiter<SendResult>>();
  /** Random per client, so ids of two clients (or a restarted one) never meet in logs. */
  private readonly prefix = `c${Math.random().toString(36).slice(2, 8)}`;
  private seq = 0;

  constructor(
    private readonly limit: number,
    private readonly timeoutMs: number,
  ) {}

  /**
   * A new clientMsgId and the promise of its answer: resolved by accepted(), rejected by refused(),
   * failAll() or after timeoutMs. Throws "too_many_pending" when `limit` sends are in flight.
   */
  open(): { clientMsgId: string; result: Promise<SendResult> } {
    if (this.waiting.size >= this.limit) throw new ImClientError("too_many_pending", `${this.limit} sends are waiting for the server`);
    const clientMsgId = `${this.prefix}-${++this.seq}`;
    const waiter = new Waiter<SendResult>(this.timeoutMs, `answer to ${clientMsgId}`);
    this.waiting.set(clientMsgId, waiter);
    const result = waiter.promise.finally(() => this.waiting.delete(clientMsgId));
    return { clientMsgId, result };
  }

  /** The server's ACK; false when no send waits for this clientMsgId. */
  accepted(clientMsgId: string, msgId: string): boolean {
    const w = this.waiting.get(clientMsgId);
    w?.resolve({ clientMsgId, msgId });
    return w !== undefined;
  }

  /** The server's ERROR for it; false when no send waits for this clientMsgId. */
  refused(clientMsgId: string, err: ImClientError): boolean {
    const w = this.waiting.get(clientMsgId);
    w?.reject(err);
    return w !== undefined;
  }

  /** Reject every send in flight (the connection is gone: whether the server took them is unknown). */
  failAll(err: ImClientError): void {
    for (const w of [...this.waiting.values()]) w.reject(err);
  }
}
