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

export interface Connection {
  readonly transport: Transport;
  readonly remoteAddress: string;
  /**
   * Queue one frame for the client, in order. Never throws. A client that cannot keep up (its
   * write buffer past the bound, or the transport dropping a message) is closed instead.
   */
  write(frame: OutFrame): void;
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

/** Transport-level broadcast of a room message to every subscribed connection but one. */
export interface RoomBroadcaster {
  publish(roomId: number, frame: OutFrame, exclude?: Connection): void;
}
