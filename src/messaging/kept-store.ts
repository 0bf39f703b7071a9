// Kept reliable messages in MySQL (table im_message): written when the recipient is offline or never
// ACKed, deleted when the recipient ACKs a replay. Concurrent writes are batched into multi-row
// statements. Kept marks in Redis (kept-marks.ts) spare a login the query when nothing is kept.
import { and, asc, eq, gt, lt, or } from "drizzle-orm";
import type { Db } from "../db/client";
import { ER_LOCK_DEADLOCK, isMysqlError } from "../db/errors";
import { imMessage } from "../db/schema";
import type { Logger } from "../log";
import type { ReliableMessage } from "../queues/jobs";
import type { KeptMarks, MarkState } from "./kept-marks";
import { splitByWeight, TickBatcher } from "../batching/tick-batcher";

/** Kept messages are read in pages of this many... */
const REPLAY_PAGE = 200;
/**
 * ...and handed out in pages of about this much data (one message at least): a login writes a page
 * at once, and waits for the client to read before the next (gateway/replay.ts).
 */
const REPLAY_PAGE_BYTES = 256 * 1024;

/** Rows the retention sweep takes at a time (deleted as ACKed rows are: CHUNK_ROWS a statement). */
const RETENTION_CHUNK = 1000;

type AckKey = Pick<ReliableMessage, "appId" | "userId" | "msgId">;
type User = Pick<ReliableMessage, "appId" | "userId">;

export class KeptStore {
  private readonly inserts: TickBatcher<ReliableMessage>;
  private readonly deletes: TickBatcher<AckKey>;
  private rebuilding: Promise<void> | null = null;

  constructor(
    private readonly db: Db,
    private readonly marks: KeptMarks,
    private readonly log: Logger,
  ) {
    this.inserts = new TickBatcher((rows) =>
      inChunks(
        sortByKey(rows),
        (chunk) =>
          // IGNORE: a retried job inserts the same (app, user, msg) again; the first row stands
          this.db
            .insert(imMessage)
            .ignore()
            .values(chunk.map((r) => ({ ...r, msgId: Number(r.msgId) }))),
        (r) => r.data.length,
      ),
    );
    this.deletes = new TickBatcher(async (keys) => {
      await inChunks(sortByKey(keys), (chunk) =>
        // an OR of primary-key equalities: MariaDB turns a one-tuple `(a,b,c) IN ((…))` into a full
        // scan that locks every row and deadlocks with concurrent inserts
        this.db.delete(imMessage).where(
          or(...chunk.map((k) => and(eq(imMessage.appId, k.appId), eq(imMessage.userId, k.userId), eq(imMessage.msgId, Number(k.msgId))))),
        ),
      );
      await this.unmarkEmptied(keys);
    });
  }

  /** Keep these messages durably. Resolves once they are stored and their recipients marked. */
  async keep(messages: ReliableMessage[]): Promise<void> {
    await this.inserts.add(messages);
    await this.marks.raise(messages);
  }

  /** Forget an ACKed message: it is never delivered again. */
  async forget(key: AckKey): Promise<void> {
    await this.deletes.add([key]);
  }

  /**
   * The keys that say whether a user may have kept messages (its kept mark): a login reads them in
   * its bind's script, once the binding is made (a keeper that raises the mark after that read
   * finds the binding when it looks the user up again), and hands their values to markFrom().
   */
  markKeys(appId: number, userId: number): string[] {
    return this.marks.keysOf(appId, userId);
  }

  markFrom(values: Array<string | null>): MarkState {
    return this.marks.fromValues(values);
  }

  /**
   * The user's kept messages in msgId order, a page at a time (pages of at most REPLAY_PAGE_BYTES of
   * data, but one message at least); no query when the marks say none. `known`: the user's mark as
   * read after its binding was made (markKeys), else it is read now.
   */
  async *replay(appId: number, userId: number, known?: MarkState): AsyncGenerator<ReliableMessage[]> {
    const mark = known ?? (await this.marks.read(appId, userId));
    if (mark.kind === "none") return;
    if (mark.kind === "unknown") this.rebuildMarks();
    let after = 0;
    let found = false;
    for (;;) {
      const page = await this.page(appId, userId, after, REPLAY_PAGE);
      if (page.length > 0) {
        found = true;
        yield* splitByWeight(page, REPLAY_PAGE_BYTES, (m) => m.data.length);
      }
      if (page.length < REPLAY_PAGE) break;
      after = Number(page[page.length - 1].msgId);
    }
    if (!found && mark.kind === "marked") await this.marks.clear(appId, userId, mark.version);
  }

  /**
   * Delete the kept messages accepted before `cutoffMs`, delivered or not (the retention sweep), a
   * chunk at a time so that no statement locks the table for long. Resolves with how many went (an
   * ACK may have deleted a few of them meanwhile). The rows go as ACKed ones do (forget), so the
   * users left with none lose their marks too: the retention's users are mostly those who never
   * log in again, whose marks no login would ever clear. `goOn` is asked between chunks (a stopping
   * node ends the sweep there).
   */
  async deleteOlderThan(cutoffMs: number, goOn: () => boolean = () => true): Promise<number> {
    let deleted = 0;
    for (;;) {
      const rows = await this.db
        .select({ appId: imMessage.appId, userId: imMessage.userId, msgId: imMessage.msgId })
        .from(imMessage)
        .where(lt(imMessage.ts, cutoffMs))
        .limit(RETENTION_CHUNK);
      await this.deletes.add(rows.map((r) => ({ ...r, msgId: String(r.msgId) })));
      deleted += rows.length;
      if (rows.length < RETENTION_CHUNK || !goOn()) return deleted;
    }
  }

  /**
   * The users whose rows were just deleted (ACKed, or past the retention) lose their mark if they
   * have no row left: a mark has no TTL (it must last as long as its rows), so one left for the next
   * login's replay to clear stayed for good for a user who never came back. The marks are read
   * before the table: a row committed after that raises its mark anew (keep() raises after its
   * insert), and clear() then spares it. The table is asked once per CHUNK_ROWS users, not once a
   * user: a batch's queries would take every pooled connection, and hold up the node's other
   * queries for seconds on a distant MySQL. Best effort: a mark left behind costs only that user's
   * next login a query.
   */
  private async unmarkEmptied(keys: AckKey[]): Promise<void> {
    const users = [...new Map(keys.map((k) => [userKey(k), { appId: k.appId, userId: k.userId }])).values()];
    try {
      const marks = await Promise.all(users.map((u) => this.marks.read(u.appId, u.userId)));
      const marked = users.flatMap((u, i) => {
        const mark = marks[i];
        return mark.kind === "marked" ? [{ ...u, version: mark.version }] : [];
      });
      for (const chunk of splitByWeight(marked, CHUNK_ROWS, () => 1)) {
        const withRows = new Set((await this.usersWithRows(chunk)).map(userKey));
        await Promise.all(chunk.filter((u) => !withRows.has(userKey(u))).map((u) => this.marks.clear(u.appId, u.userId, u.version)));
      }
    } catch (err) {
      this.log.warn({ err, users: users.length }, "could not drop the kept marks of users with no kept rows left; their next logins do");
    }
  }

  /**
   * Build the kept marks from the table, in the background, if Redis has none (a new Redis, or one
   * that lost its data); meanwhile logins look at MySQL. A failure is logged, and the next login
   * that finds no marks tries again.
   */
  rebuildMarks(): void {
    this.rebuilding ??= this.ensureMarks()
      .catch((err) => this.log.error({ err }, "rebuilding the kept marks failed; logins query MySQL meanwhile"))
      .finally(() => (this.rebuilding = null));
  }

  private async ensureMarks(): Promise<void> {
    if (await this.marks.ready()) return;
    const users = await this.db.selectDistinct({ appId: imMessage.appId, userId: imMessage.userId }).from(imMessage);
    await this.marks.rebuild(users);
    this.log.info({ users: users.length }, "kept marks rebuilt from im_message");
  }

  /** Which of `users` have rows: one statement, which reads a couple of index entries per user (a loose index scan). */
  private async usersWithRows(users: User[]): Promise<User[]> {
    return this.db
      .selectDistinct({ appId: imMessage.appId, userId: imMessage.userId })
      .from(imMessage)
      .where(or(...users.map((u) => and(eq(imMessage.appId, u.appId), eq(imMessage.userId, u.userId)))));
  }

  private async page(appId: number, userId: number, afterMsgId: number, limit: number): Promise<ReliableMessage[]> {
    const rows = await this.db
      .select()
      .from(imMessage)
      .where(and(eq(imMessage.appId, appId), eq(imMessage.userId, userId), gt(imMessage.msgId, afterMsgId)))
      .orderBy(asc(imMessage.msgId))
      .limit(limit);
    return rows.map((r) => ({ appId: r.appId, userId: r.userId, msgId: String(r.msgId), bizCode: r.bizCode, data: r.data, ts: r.ts, senderId: r.senderId }));
  }
}

/**
 * Statements of at most this many rows, and of about this many bytes of data: a push's data may be
 * 64 KB a row, and MySQL refuses a statement over max_allowed_packet (16 MB by default).
 */
const CHUNK_ROWS = 500;
const CHUNK_BYTES = 4 * 1024 * 1024;
/** Primary-key order: concurrent writers then take row locks in the same order. */
function sortByKey<K extends AckKey>(rows: K[]): K[] {
  return rows.sort((a, b) => a.appId - b.appId || a.userId - b.userId || Number(a.msgId) - Number(b.msgId));
}

/** Write `rows` in statements of at most CHUNK_ROWS rows and about CHUNK_BYTES (by `bytesOf`). */
async function inChunks<T>(rows: T[], write: (chunk: T[]) => Promise<unknown>, bytesOf: (row: T) => number = () => 0): Promise<void> {
  for (const chunk of splitByWeight(rows, CHUNK_BYTES, bytesOf, CHUNK_ROWS)) {
    for (let attempt = 1; ; attempt++) {
      try {
        await write(chunk);
        break;
      } catch (err) {
        // a deadlock rolled the statement back: it may simply be run again
        if (attempt >= 3 || !isMysqlError(err, ER_LOCK_DEADLOCK)) throw err;
      }
    }
  }
}

function userKey(u: User): string {
  return `${u.appId}:${u.userId}`;
}
