// The binary frame of PROTOCOL.md section 1 and a streaming decoder for it.
//
//   offset 0  uint16 BE  magic  18673
//   offset 2  int32  BE  code
//   offset 6  int32  BE  len    0 <= len <= maxBody
//   offset 10 len bytes  body   UTF-8 JSON object; len 0 means {}
import { HEADER_BYTES, MAGIC } from "./codes";

export interface RawFrame {
  code: number;
  /** The body bytes. A view into the decoder's input: read it before the next push(). */
  body: Uint8Array;
}

// TextEncoder, TextDecoder and plain Uint8Arrays only (no Buffer): clients in browsers use this codec too.
const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder();
/** Encoding goes through this scratch (as fast as Buffer); frames too big for it use a one-off one. */
const SCRATCH_BYTES = 256 * 1024;
const scratch = new Uint8Array(SCRATCH_BYTES);

/** Encode one frame whose body is already JSON text. The result owns its whole ArrayBuffer. */
export function encodeFrame(code: number, json: string): Uint8Array<ArrayBuffer> {
  // a UTF-16 code unit never takes more than 3 UTF-8 bytes
  const worst = HEADER_BYTES + 3 * json.length;
  const into = worst <= SCRATCH_BYTES ? scratch : new Uint8Array(worst);
  const len = utf8Encoder.encodeInto(json, into.subarray(HEADER_BYTES)).written;
  const out = into.slice(0, HEADER_BYTES + len);
  out[0] = MAGIC >>> 8;
  out[1] = MAGIC & 0xff;
  writeInt32(out, 2, code);
  writeInt32(out, 6, len);
  return out;
}

function writeInt32(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 24;
  b[at + 1] = v >>> 16;
  b[at + 2] = v >>> 8;
  b[at + 3] = v;
}

/** The big-endian int32 at `at`. */
function int32At(b: Uint8Array, at: number): number {
  return (b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3];
}

/** What one scan of a byte buffer found. */
export interface FrameScan {
  /** The whole frames, in order; their bodies are views into the scanned buffer. */
  frames: RawFrame[];
  /** Offset of the first byte not consumed: the start of an incomplete frame, or the buffer's length. */
  rest: number;
  /** Why the stream broke framing rules, or null. Frames before the violation are still returned. */
  violation: string | null;
}

/**
 * Read the whole frames at the start of `buf`. Stateless, so a connection that is not in the middle
 * of a frame (nearly all of them, nearly always) needs no decoder object of its own.
 */
export function scanFrames(buf: Uint8Array, maxBody: number): FrameScan {
  const frames: RawFrame[] = [];
  let at = 0;
  while (buf.length - at >= HEADER_BYTES) {
    const magic = (buf[at] << 8) | buf[at + 1];
    if (magic !== MAGIC) return { frames, rest: at, violation: `bad magic ${magic}` };
    const len = int32At(buf, at + 6);
    if (len < 0 || len > maxBody) return { frames, rest: at, violation: `bad body length ${len}` };
    if (buf.length - at < HEADER_BYTES + len) break;
    frames.push({ code: int32At(buf, at + 2), body: buf.subarray(at + HEADER_BYTES, at + HEADER_BYTES + len) });
    at += HEADER_BYTES + len;
  }
  return { frames, rest: at, violation: null };
}

/**
 * The start of an incomplete frame, kept between reads. Appending copies only the new bytes (the
 * buffer grows by doubling): a frame that arrives in many small reads costs time linear in its
 * size, where concatenating at every read would be quadratic (a 64 KiB frame in 1-byte reads).
 */
export class PendingBytes {
  private buf: Uint8Array;
  private len = 0;

  /** Copies `first`: the caller may reuse it. */
  constructor(first: Uint8Array) {
    this.buf = new Uint8Array(Math.max(64, 2 * first.length));
    this.append(first);
  }

  append(chunk: Uint8Array): void {
    if (this.len + chunk.length > this.buf.length) {
      const grown = new Uint8Array(Math.max(2 * this.buf.length, this.len + chunk.length));
      grown.set(this.buf.subarray(0, this.len));
      this.buf = grown;
    }
    this.buf.set(chunk, this.len);
    this.len += chunk.length;
  }

  /** The bytes so far: a view, valid until the next append. */
  get bytes(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }
}

/**
 * What to keep after scanning `buf` (which is `pending`'s bytes, or a read when nothing was
 * pending): nothing, the same pending bytes when no frame was taken from them, or a copy of the tail.
 */
export function keepAfterScan(pending: PendingBytes | null, buf: Uint8Array, scan: FrameScan): PendingBytes | null {
  if (scan.violation !== null || scan.rest === buf.length) return null;
  if (pending !== null && scan.rest === 0) return pending;
  return new PendingBytes(buf.subarray(scan.rest));
}

/**
 * Streaming decoder. Feed it whatever a read returned; it returns the whole frames it completes.
 * A framing violation (bad magic, negative len, len > maxBody) is sticky: the stream cannot be
 * resynchronised, so every later push returns nothing and `violation` says why.
 *
 * Guarantees: never throws on any input; the frames of a byte stream are the same however the
 * stream is split into pushes; bytes of an incomplete frame are copied, so the caller may reuse
 * its input buffer after push() returns (Bun's TCP data callback does).
 */
export class FrameDecoder {
  violation: string | null = null;
  private pending: PendingBytes | null = null;

  constructor(private readonly maxBody: number) {}

  /** True when bytes of an incomplete frame are buffered. */
  get hasPartial(): boolean {
    return this.pending !== null;
  }

  push(chunk: Uint8Array): RawFrame[] {
    if (this.violation !== null) return [];
    this.pending?.append(chunk);
    const buf = this.pending === null ? chunk : this.pending.bytes;
    const scan = scanFrames(buf, this.maxBody);
    this.violation = scan.violation;
    // the frames returned are views into buf: a tail is copied out, never moved within it
    this.pending = keepAfterScan(this.pending, buf, scan);
    return scan.frames;
  }
}

export type ParsedBody = { ok: true; value: Record<string, unknown> } | { ok: false; reason: string };

/** Parse a frame body: UTF-8 JSON that must be an object; an empty body is {}. */
export function parseBody(bytes: Uint8Array): ParsedBody {
  if (bytes.length === 0) return { ok: true, value: {} };
  return parseJsonObject(utf8Decoder.decode(bytes));
}

export function parseJsonObject(text: string): ParsedBody {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, reason: "body is not JSON" };
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return { ok: false, reason: "body is not a JSON object" };
  }
  return { ok: true, value: value as Record<string, unknown> };
}
