// The one interface between the session layer and a transport (gateway/tcp.ts, gateway/ws.ts).
import { encodeEnvelope } from "../protocol/envelope";
import { encodeFrame } from "../protocol/frame";

export type Transport = "tcp" | "ws";
/** The form a WebSocket client last used (PROTOCOL.md section 2); TCP is always binary. */
export type WireForm = "text" | "binary";

/** An outgoing frame, encoded lazily and at most once per form, so a fan-out encodes once. */
export class OutFrame {
  private bin?: Uint8Array;
  private txt?: string;

  constructor(
    readonly code: number,
    readonly json: string,
  ) {}

  get binary(): Uint8Array {
    return (this.bin ??= encodeFrame(this.code, this.json));
  }

  get text(): string {
    return (this.txt ??= encodeEnvelope(this.code, this.json));
  }
}

/**
 * How long a room message may wait for the next ones. Every socket write is a syscall (and, on
 * loopback, the receiver's TCP work too): most of a delivery's cost. Room messages that wait a few
 * milliseconds reach each connection of a busy room together, in one write; a message that comes
 * after a pause is not delayed at all (see FlushSchedule).
 */
export const ROOM_BATCH_MS = 10;

/**
 * When a transport hands its buffered writes to the sockets: at the end of the tick when some write
 * must not wait, otherwise (room messages only) ROOM_BATCH_MS after the previous flush at the latest.
 */
export class FlushSchedule {
  private lastAt = -Infinity;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private immediate = false;

  constructor(private readonly flush: () => void) {}

  /** A write that must go out at the end of this tick. */
  soon(): void {
    if (this.immediate) return;
    this.immediate = true;
    setImmediate(this.run);
  }

  /** A room message: it may wait until ROOM_BATCH_MS after the previous flush. */
  later(): void {
    if (this.immediate || this.timer !== null) return;
    const wait = this.lastAt + ROOM_BATCH_MS - performance.now();
    if (wait <= 0) this.soon();
    else this.timer = setTimeout(this.run, wait);
  }

  private readonly run = (): void => {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.immediate = false;
    this.lastAt = performance.now();
    this.flush();
  };
}

export interface Connection {
  readonly transport: Transport;
  readonly remoteAddress: string;
  /**
   * Queue one frame for the client, in order. Never throws. A client that cannot keep up (its
   * write buffer past the bound, or the transport dropping a message) is closed instead.
   * `mayWait` (room messages): the frame may wait up to ROOM_BATCH_MS to share a write with others.
   */
  write(frame: OutFrame, mayWait?: boolean): void;
  /** Answer in this form from now on (WebSocket); a no-op for TCP. */
  useForm(form: WireForm): void;
  /** Close after everything written so far is flushed (bounded in time). Idempotent. */
  close(): void;
  /**
   * Room fan-out by the transport itself (WebSocket pub/sub topics). Returns false when the
   * transport has none (TCP): the session layer then writes each room message itself.
   */
  subscribeRoom(roomId: number): boolean;
  unsubscribeRoom(roomId: number): void;
}

/**
 * Transport-level broadcast of a room message to every subscribed connection but one. It may be
 * sent up to ROOM_BATCH_MS later, but always before any connection joins or leaves the room.
 */
export interface RoomBroadcaster {
  publish(roomId: number, frame: OutFrame, exclude?: Connection): void;
}
