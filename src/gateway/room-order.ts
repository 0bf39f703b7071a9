// Puts each room's messages back in seq order before this node fans them out. Seqs are given in
// accept order at intake, but workers on several nodes publish concurrently, so a room's messages can
// reach this node out of order. A message after a gap waits until the gap is filled, or at most
// `gapWaitMs` (its job may have failed and be retried later, or the room closed meanwhile); then
// the gap is skipped. A message older than what was already passed on (a late or repeated one) is
// passed on at once: late beats lost, and clients drop repeats by msgId.

interface RoomState<M> {
  /** The seq expected next. */
  next: number;
  /** Messages after a gap, by seq. */
  waiting: Map<number, M>;
  timer: ReturnType<typeof setTimeout> | null;
}

export class RoomOrder<M> {
  private readonly rooms = new Map<number, RoomState<M>>();

  constructor(
    private readonly gapWaitMs: number,
    private readonly emit: (roomId: number, seq: number, msg: M) => void,
  ) {}

  /** A room message arrived: pass it (and any it unblocks) on in seq order. */
  push(roomId: number, seq: number, msg: M): void {
    let room = this.rooms.get(roomId);
    if (!room) {
      room = { next: seq, waiting: new Map(), timer: null };
      this.rooms.set(roomId, room);
    }
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
      this.rooms.set(roomId, { next: lastSeq + 1, waiting: new Map(), timer: null });
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

  private release(roomId: number, room: RoomState<M>): void {
    for (let msg = room.waiting.get(room.next); msg !== undefined; msg = room.waiting.get(room.next)) {
      room.waiting.delete(room.next);
      this.emit(roomId, room.next, msg);
      room.next++;
    }
    if (room.waiting.size === 0) {
      if (room.timer) clearTimeout(room.timer);
      room.timer = null;
    } else {
      room.timer ??= setTimeout(() => this.skipGap(roomId, room), this.gapWaitMs);
    }
  }

  private skipGap(roomId: number, room: RoomState<M>): void {
    room.timer = null;
    if (room.waiting.size === 0) return;
    room.next = Math.min(...room.waiting.keys());
    this.release(roomId, room);
  }
}
