// Lean frame handling for the load generator. Encoding reuses the server's codec (encodeFrame);
// decoding does not: at hundreds of thousands of frames per second the generator must not allocate
// per frame, so the scanner hands out (buffer, start, end) and the readers below pick fields out of
// the bytes without JSON.parse.
import { HEADER_BYTES, MAGIC } from "../../src/protocol/codes";

/** `head` followed by `tail`, in a new array. */
export function concatBytes(head: Uint8Array, tail: Uint8Array): Uint8Array {
  const out = new Uint8Array(head.length + tail.length);
  out.set(head, 0);
  out.set(tail, head.length);
  return out;
}

export type FrameHandler = (code: number, buf: Uint8Array, start: number, end: number) => void;

/** Splits a byte stream into frames; buffers a partial frame (copied: Bun reuses read buffers). */
export class FrameScanner {
  private pending: Uint8Array | null = null;

  constructor(private readonly onFrame: (code: number, buf: Uint8Array, start: number, end: number) => void) {}

  push(chunk: Uint8Array): void {
    const buf = this.pending === null ? chunk : concatBytes(this.pending, chunk);
    this.pending = null;
    let at = 0;
    const n = buf.length;
    while (n - at >= HEADER_BYTES) {
      if (((buf[at] << 8) | buf[at + 1]) !== MAGIC) throw new Error("bench client: bad magic from server");
      const code = (buf[at + 2] << 24) | (buf[at + 3] << 16) | (buf[at + 4] << 8) | buf[at + 5];
      const len = (buf[at + 6] << 24) | (buf[at + 7] << 16) | (buf[at + 8] << 8) | buf[at + 9];
      const end = at + HEADER_BYTES + len;
      if (end > n) break;
      this.onFrame(code, buf, at + HEADER_BYTES, end);
      at = end;
    }
    if (at < n) this.pending = buf.slice(at);
  }
}

// ---- the stamp the sender puts in message content: "#<idx>@<microseconds>" ----

/** Generator clock in µs. Senders and receivers live in this one process, so no clock skew. */
export const nowUs = (): number => Math.round(performance.now() * 1000);

/**
 * When the socket read being handled arrived (µs), set by the clients before they scan it: every
 * frame of one read arrived together, and one clock reading per read instead of per frame keeps
 * the generator's cost per delivery down.
 */
export let arrivalUs = 0;

export function markArrival(): void {
  arrivalUs = nowUs();
}

export function stamp(idx: number, us = nowUs()): string {
  return `#${idx}@${us}`;
}

/** The µs of the last stamp read by readStamp (a field, to avoid allocating a result object). */
export let stampUs = 0;

const HASH = 35; // '#'
const AT = 64; // '@'

/** Find "#idx@us" in bytes [start, end); returns idx (and sets stampUs) or -1. */
export function readStamp(buf: Uint8Array, start: number, end: number): number {
  let i = buf.indexOf(HASH, start);
  if (i < 0 || i >= end) return -1;
  let idx = 0;
  for (i++; i < end; i++) {
    const c = buf[i];
    if (c === AT) break;
    if (c < 48 || c > 57) return -1;
    idx = idx * 10 + (c - 48);
  }
  let us = 0;
  for (i++; i < end; i++) {
    const c = buf[i];
    if (c < 48 || c > 57) break;
    us = us * 10 + (c - 48);
  }
  stampUs = us;
  return idx;
}

const MSGID_PREFIX = Buffer.from('{"msgId":"');

/** The msgId of a delivery body (the server writes it first); falls back to JSON.parse. */
export function readMsgId(buf: Uint8Array, start: number, end: number): string {
  let ok = end - start > MSGID_PREFIX.length;
  for (let k = 0; ok && k < MSGID_PREFIX.length; k++) ok = buf[start + k] === MSGID_PREFIX[k];
  if (ok) {
    let s = "";
    for (let i = start + MSGID_PREFIX.length; i < end; i++) {
      const c = buf[i];
      if (c < 48 || c > 57) break;
      s += String.fromCharCode(c);
    }
    if (s.length > 0) return s;
  }
  return String((bodyJson(buf, start, end) as { msgId?: unknown }).msgId);
}

const decoder = new TextDecoder();

/** Parse a body when speed does not matter (login answers, errors). */
export function bodyJson(buf: Uint8Array, start: number, end: number): Record<string, unknown> {
  return start === end ? {} : (JSON.parse(decoder.decode(buf.subarray(start, end))) as Record<string, unknown>);
}
