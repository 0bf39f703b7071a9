// Kept reliable messages in MySQL (table im_message): written when the recipient is offline or never
// ACKed, deleted when the recipient ACKs a replay. Concurrent writes are batched into multi-row
// statements.
import { and, asc, eq, gt, or } from "drizzle-orm";
import type { Db } from "../db/client";
import { imMessage } from "../db/schema";
import type { ReliableMessage } from "../queues/jobs";
import { TickBatcher } from "./tick-batcher";

type AckKey = Pick<ReliableMessage, "appId" | "userId" | "msgId">;

export class KeptStore {
  private readonly inserts: TickBatcher<ReliableMessage>;
  private readonly deletes: TickBatcher<AckKey>;

  constructor(private readonly db: Db) {
    this.inserts = new TickBatcher((rows) =>
      inChunks(sortByKey(rows), (chunk) =>
        // IGNORE: a retried job inserts the same (app, user, msg) again; the first row stands
        this.db
          .insert(imMessage)
          .ignore()
          .values(chunk.map((r) => ({ ...r, msgId: Number(r.msgId) }))),
      ),
    );
    this.deletes = new TickBatcher((keys) =>
      inChunks(sortByKey(keys), (chunk) =>
        // an OR of primary-key equalities: MariaDB turns a one-tuple `(a,b,c) IN ((…))` into a full
        // scan that locks every row and deadlocks with concurrent inserts
        this.db.delete(imMessage).where(
          or(...chunk.map((k) => and(eq(imMessage.appId, k.appId), eq(imMessage.userId, k.userId), eq(imMessage.msgId, Number(k.msgId))))),
        ),
      ),
    );
  }

  /** Keep these messages durably. Resolves once they are stored. */
  async keep(messages: ReliableMessage[]): Promise<void> {
    await this.inserts.add(messages);
  }

  /** Forget an ACKed message: it is never delivered again. */
  async forget(key: AckKey): Promise<void> {
    await this.deletes.add([key]);
  }

  /** A page of a user's kept messages with msgId > afterMsgId, in msgId order. */
  async page(appId: number, userId: number, afterMsgId: number, limit: number): Promise<ReliableMessage[]> {
    const rows = await this.db
      .select()
      .from(imMessage)
      .where(and(eq(imMessage.appId, appId), eq(imMessage.userId, userId), gt(imMessage.msgId, afterMsgId)))
      .orderBy(asc(imMessage.msgId))
      .limit(limit);
    return rows.map((r) => ({ appId: r.appId, userId: r.userId, msgId: String(r.msgId), bizCode: r.bizCode, data: r.data, ts: r.ts, senderId: r.senderId }));
  }
}

/** Statements of at most this many rows. */
const CHUNK = 500;
/** MySQL's ER_LOCK_DEADLOCK: the statement was rolled back and may simply be run again. */
const DEADLOCK = 1213;

/** Primary-key order: concurrent writers then take row locks in the same order. */
function sortByKey<K extends AckKey>(rows: K[]): K[] {
  return rows.sort((a, b) => a.appId - b.appId || a.userId - b.userId || Number(a.msgId) - Number(b.msgId));
}

async function inChunks<T>(rows: T[], write: (chunk: T[]) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < rows.length; i += CHUNK) {
    const chunk = rows.slice(i, i + CHUNK);
    for (let attempt = 1; ; attempt++) {
      try {
        await write(chunk);
        break;
      } catch (err) {
        if (attempt >= 3 || !isDeadlock(err)) throw err;
      }
    }
  }
}

function isDeadlock(err: unknown): boolean {
  for (let e = err as { errno?: number; cause?: unknown } | undefined; e; e = e.cause as typeof e) {
    if (e.errno === DEADLOCK) return true;
  }
  return false;
}
