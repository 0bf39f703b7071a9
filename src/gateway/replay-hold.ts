// Live deliveries held back while a login replays what the client missed (kept messages, a room's
// history), so that the client gets the missed ones first, then these, in the order they came.
import type { OutFrame } from "./connection";

export interface HeldDelivery {
  frame: OutFrame;
  /** Set for room messages: dropped on release when the replay already covered it. */
  roomSeq?: number;
}

/**
 * Live deliveries held, in bytes (of their JSON). A client that does not read its replay holds the
 * replay up, and everything sent to it meanwhile (the resends of the replayed messages too) would
 * pile up here, out of sight of the transports' own bounds.
 */
const MAX_HELD_BYTES = 8 * 1024 * 1024;

export class ReplayHold {
  private held: HeldDelivery[] = [];
  private bytes = 0;

  /** Hold this delivery; false (and nothing held) when it would take the hold past MAX_HELD_BYTES. */
  add(delivery: HeldDelivery): boolean {
    const bytes = delivery.frame.json.length;
    if (this.bytes + bytes > MAX_HELD_BYTES) return false;
    this.bytes += bytes;
    this.held.push(delivery);
    return true;
  }

  /** Bytes held: for the log of a connection closed over them. */
  get heldBytes(): number {
    return this.bytes;
  }

  /** What was held, in the order it came; the hold is empty afterwards. */
  take(): HeldDelivery[] {
    const held = this.held;
    this.held = [];
    this.bytes = 0;
    return held;
  }
}
