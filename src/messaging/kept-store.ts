// Kept reliable messages in MySQL (table im_message): written before any delivery attempt, deleted
// when the recipient ACKs. Writes from concurrent jobs are batched into multi-row statements.
import { and, asc, eq, gt, sql } from "drizzle-orm";
import type { Db } from "../db/client";
import { imMessage } from "../db/schema";
import type { Delivery } from "../router/node-message";
import { WriteBatcher } from "./write-batcher";

export interface KeptMessage extends Delivery {
  senderId: number;
}

type AckKey = Pick<Delivery, "appId" | "userId" | "msgId">;

export class KeptStore {
  private readonly inserts: WriteBatcher<KeptMessage>;
  private readonly deletes: WriteBatcher<AckKey>;

  constructor(private readonly db: Db) {
    this.inserts = new WriteBatcher(async (rows) => {
      // IGNORE: a retried job inserts the same (app, user, msg) again; the first row stands.
      await this.db
        .insert(imMessage)
        .ignore()
        .values(rows.map((r) => ({ ...r, msgId: Number(r.msgId) })));
    });
    this.deletes = new WriteBatcher(async (keys) => {
      const tuples = sql.join(
        keys.map((k) => sql`(${k.appId}, ${k.userId}, ${Number(k.msgId)})`),
        sql`, `,
      );
      await this.db.delete(imMessage).where(sql`(${imMessage.appId}, ${imMessage.userId}, ${imMessage.msgId}) IN (${tuples})`);
    });
  }

  /** Keep these messages durably. Resolves once they are stored. */
  keep(messages: KeptMessage[]): Promise<void> {
    return this.inserts.add(messages);
  }

  /** Forget an ACKed message: it is never delivered again. */
  forget(key: AckKey): Promise<void> {
    return this.deletes.add([key]);
  }

  /** A page of a user's kept messages with msgId > afterMsgId, in msgId order. */
  async page(appId: number, userId: number, afterMsgId: number, limit: number): Promise<Delivery[]> {
    const rows = await this.db
      .select()
      .from(imMessage)
      .where(and(eq(imMessage.appId, appId), eq(imMessage.userId, userId), gt(imMessage.msgId, afterMsgId)))
      .orderBy(asc(imMessage.msgId))
      .limit(limit);
    return rows.map((r) => ({ appId: r.appId, userId: r.userId, msgId: String(r.msgId), bizCode: r.bizCode, data: r.data, ts: r.ts }));
  }
}
