// Puts each room's messages back in seq order before this node fans them out. Seqs are given in
// accept order at intake, but workers on several nodes publish concurrently, so a room's messages can
// reach this node out of order. A message after a gap waits until the gap is filled, or at most
// `gapWaitMs`; then what the gap lacks is read from the room's history (this node's subscription may
// have dropped while they were published: pub/sub does not replay), and only what the history
// lacks too is skipped (its job failed and is retried later, or the room closed meanwhile). A
// message older than what was already passed on (a late or repeated one) is passed on at once: late
// beats lost, and clients drop repeats by msgId; only the pub/sub copy of one read from the history
// is known to be a repeat, and dropped.

/**
 * A room's messages with fromSeq <= seq <= toSeq that its history holds, in seq order. Never
 * rejects: a read that fails is logged and answers none (a gap is then skipped, as without it).
 */
export type ReadHistory<M> = (roomId: number, fromSeq: number, toSeq: number) => Promise<Array<{ seq: number; msg: M }>>;

interface RoomState<M> {
  /** The seq expected next. */
  next: number;
  /** Messages after a gap, by seq. */
  waiting: Map<number, M>;
  timer: ReturnType<typeof setTimeout> | null;
  /** A gap's history is being read: no new gap timer meanwhile. */
  filling: boolean;
  /** Seqs taken from the history whose pub/sub copy may still come: it is dropped then, as a repeat. */
  recovered: Set<number>;
}

function newRoom<M>(next: number): RoomState<M> {
  return { next, waiting: new Map(), timer: null, filling: false, recovered: new Set() };
}

/** Seqs remembered per room as taken from the history; the oldest are forgotten past this. */
const MAX_RECOVERED = 1000;

export class RoomOrder<M> {
  private readonly rooms = new Map<number, RoomState<M>>();

  constructor(
    private readonly gapWaitMs: number,
    private readonly emit: (roomId: number, seq: number, msg: M) => void,
    private readonly readHistory: ReadHistory<M>,
  ) {}

  /** A room message arrived: pass it (and any it unblocks) on in seq order. */
  push(roomId: number, seq: number, msg: M): void {
    let room = this.rooms.get(roomId);
    if (!room) {
      room = newRoom<M>(seq);
      this.rooms.set(roomId, room);
    }
    // the pub/sub copy of one taken from the history (passed on, or waiting): a repeat
    if (room.recovered.delete(seq)) return;
    if (seq < room.next) return this.emit(roomId, seq, msg);
    room.waiting.set(seq, msg);
    this.release(roomId, room);
  }

  /**
   * A login joined the room, having read its history up to `lastSeq`; `first`: as this node's first
   * local member (or the first to get here). Returns the seq this node passes on next: the login
   * replays the history before it, and gets the rest live, in order, as this node passes them on
   * (messages held here behind a gap included).
   */
  joined(roomId: number, lastSeq: number, first: boolean): number {
    if (first || !this.rooms.has(roomId)) this.start(roomId, lastSeq);
    return this.rooms.get(roomId)!.next;
  }

  /**
   * This node starts following a room (its first local member joined) whose history ends at
   * `lastSeq`: expect `lastSeq + 1` next, so even the room's first messages here are ordered. What
   * is left from following it before (its last member left moments ago) is stale: messages it still
   * holds at or before `lastSeq` are passed on now, and the next live one does not wait for the seqs
   * this node was not sent meanwhile.
   */
  start(roomId: number, lastSeq: number): void {
    const room = this.rooms.get(roomId);
    if (!room) {
      this.rooms.set(roomId, newRoom<M>(lastSeq + 1));
      return;
    }
    // messages that arrived since this join began may already have moved it on
    if (room.next > lastSeq) return;
    for (const seq of [...room.waiting.keys()].filter((s) => s <= lastSeq).sort((a, b) => a - b)) {
      const msg = room.waiting.get(seq)!;
      room.waiting.delete(seq);
      this.emit(roomId, seq, msg);
    }
    room.next = lastSeq + 1;
    this.release(roomId, room);
  }

  /**
   * Messages may have been missed (this node's subscription dropped and is back): read each
   * followed room's history from the seq expected next and pass on what it holds, in order.
   */
  async catchUp(): Promise<void> {
    await Promise.all(
      [...this.rooms].map(async ([roomId, room]) => {
        const found = await this.readHistory(roomId, room.next, Number.POSITIVE_INFINITY);
        if (this.rooms.get(roomId) !== room) return;
        this.hold(room, found);
        this.release(roomId, room);
      }),
    );
  }

  /**
   * The rooms' seqs started over (Redis lost its data, the seq counters and histories with it):
   * pass on what still waits behind a gap (late beats lost), then expect each room's new first seq,
   * 1, so that catchUp() reads its new history from the start.
   */
  restart(): void {
    for (const [roomId, old] of this.rooms) {
      if (old.timer) clearTimeout(old.timer);
      for (const seq of [...old.waiting.keys()].sort((a, b) => a - b)) this.emit(roomId, seq, old.waiting.get(seq)!);
      this.rooms.set(roomId, newRoom<M>(1));
    }
  }

  /** Stop following the rooms `stillHeld` says no: a later join starts them afresh. */
  forgetRooms(stillHeld: (roomId: number) => boolean): void {
    for (const [roomId, room] of this.rooms) {
      if (room.waiting.size === 0 && !stillHeld(roomId)) this.rooms.delete(roomId);
    }
  }

  /** Stop the gap timers (shutdown). */
  clear(): void {
    for (const room of this.rooms.values()) if (room.timer) clearTimeout(room.timer);
    this.rooms.clear();
  }

  /** Pass on the waiting messages that follow on from `next`; a seq missing below `skipBelow` is skipped. */
  private release(roomId: number, room: RoomState<M>, skipBelow = 0): void {
    for (;;) {
      const msg = room.waiting.get(room.next);
      if (msg !== undefined) {
        room.waiting.delete(room.next);
        this.emit(roomId, room.next, msg);
        room.next++;
      } else if (room.next < skipBelow && room.waiting.size > 0) {
        room.next = Math.min(...room.waiting.keys());
      } else break;
    }
    if (room.waiting.size === 0) {
      if (room.timer) clearTimeout(room.timer);
      room.timer = null;
    } else if (!room.filling) {
      room.timer ??= setTimeout(() => void this.fillGap(roomId, room), this.gapWaitMs);
    }
  }

  /** The gap before the first waiting message did not fill in time: read it from the history, skip what that lacks. */
  private async fillGap(roomId: number, room: RoomState<M>): Promise<void> {
    room.timer = null;
    if (room.waiting.size === 0) return;
    const upTo = Math.min(...room.waiting.keys());
    room.filling = true;
    const found = await this.readHistory(roomId, room.next, upTo - 1);
    room.filling = false;
    if (this.rooms.get(roomId) !== room) return;
    this.hold(room, found);
    this.release(roomId, room, upTo);
  }

  /** Wait in line: history entries not passed on yet and not already waiting. */
  private hold(room: RoomState<M>, entries: Array<{ seq: number; msg: M }>): void {
    for (const e of entries) {
      if (e.seq < room.next || room.waiting.has(e.seq)) continue;
      room.waiting.set(e.seq, e.msg);
      room.recovered.add(e.seq);
      if (room.recovered.size > MAX_RECOVERED) room.recovered.delete(room.recovered.values().next().value!);
    }
  }
}
