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

/** Encode one frame whose body is already JSON text. */
export function encodeFrame(code: number, json: string): Uint8Array {
  const len = Buffer.byteLength(json);
  const out = Buffer.allocUnsafe(HEADER_BYTES + len);
  out.writeUInt16BE(MAGIC, 0);
  out.writeInt32BE(code, 2);
  out.writeInt32BE(len, 6);
  out.write(json, HEADER_BYTES, "utf8");
  return out;
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
  private pending: Buffer | null = null;

  constructor(private readonly maxBody: number) {}

  /** True when bytes of an incomplete frame are buffered. */
  get hasPartial(): boolean {
    return this.pending !== null;
  }

  push(chunk: Uint8Array): RawFrame[] {
    if (this.violation !== null) return [];
    let buf: Buffer;
    if (this.pending === null) {
      buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    } else {
      buf = Buffer.concat([this.pending, chunk]);
      this.pending = null;
    }
    const frames: RawFrame[] = [];
    let at = 0;
    while (buf.length - at >= HEADER_BYTES) {
      const magic = buf.readUInt16BE(at);
      if (magic !== MAGIC) {
        this.violation = `bad magic ${magic}`;
        return frames;
      }
      const len = buf.readInt32BE(at + 6);
      if (len < 0 || len > this.maxBody) {
        this.violation = `bad body length ${len}`;
        return frames;
      }
      if (buf.length - at < HEADER_BYTES + len) break;
      frames.push({ code: buf.readInt32BE(at + 2), body: buf.subarray(at + HEADER_BYTES, at + HEADER_BYTES + len) });
      at += HEADER_BYTES + len;
    }
    if (at < buf.length) this.pending = Buffer.from(buf.subarray(at));
    return frames;
  }
}

export type ParsedBody = { ok: true; value: Record<string, unknown> } | { ok: false; reason: string };

/** Parse a frame body: UTF-8 JSON that must be an object; an empty body is {}. */
export function parseBody(bytes: Uint8Array): ParsedBody {
  if (bytes.length === 0) return { ok: true, value: {} };
  return parseJsonObject(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8"));
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
