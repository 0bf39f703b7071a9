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
 * The longest a room message waits for the next ones. Every socket write is a syscall (and, on
 * loopback, the receiver's TCP work too): most of a delivery's cost. Room messages that wait a few
 * milliseconds reach each connection of a busy room together, in one write.
 */
const ROOM_BATCH_MS = 25;
/**
 * The wait grows with the size of the last room flush: this many ms per socket write it made. A
 * small room gains little from waiting, so it hardly waits (20 writes: 2 ms); from 250 writes on,
 * the full ROOM_BATCH_MS.
 */
const WAIT_MS_PER_WRITE = 0.1;

/**
 * Runs a transport's room flush at most once per wait (see above) after the previous one: at the
 * end of the tick when that is already over, so a message after a pause is not delayed. Other
 * frames (answers, reliable deliveries) do not wait for it: the transports send them at the end
 * of their tick.
 */
export class RoomFlushClock {
  private lastAt = -Infinity;
  private lastWrites = 0;
  private pending = false;

  /** `flush` returns how many socket writes it made (or subscribers it published to). */
  constructor(private readonly flush: () => number) {}

  /** Room messages are waiting. */
  request(): void {
    if (this.pending) return;
    this.pending = true;
    const gap = Math.min(ROOM_BATCH_MS, this.lastWrites * WAIT_MS_PER_WRITE);
    const wait = this.lastAt + gap - performance.now();
    if (wait <= 0) setImmediate(this.run);
    else setTimeout(this.run, wait);
  }

  private readonly run = (): void => {
    this.pending = false;
    this.lastAt = performance.now();
    this.lastWrites = this.flush();
  };
}

export interface Connection {
  readonly transport: Transport;
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
  /** Bytes written here that the socket has not taken yet: grows while the client reads slower than we write. */
  unsentBytes(): number;
  /**
   * Room fan-out by the transport itself (WebSocket pub/sub topics). Returns false when the
   * transport has none (TCP): the session layer then writes each room message itself.
   */
  subscribeRoom(roomId: number): boolean;
  /**
   * Stop the transport's fan-out to this connection (a no-op without one). Room messages it was
   * already given to publish go out first (RoomBroadcaster.publish).
   */
  unsubscribeRoom(roomId: number): void;
}

/**
 * Transport-level broadcast of a room message to every subscribed connection but one. It may be
 * sent up to ROOM_BATCH_MS later, but always before any connection joins or leaves the room.
 */
export interface RoomBroadcaster {
  publish(roomId: number, frame: OutFrame, exclude?: Connection): void;
}
