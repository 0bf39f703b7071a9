// The frame codec and the WebSocket envelope (PROTOCOL.md sections 1 and 2): exact layout, framing
// violations, and randomized properties. Random cases use a seeded generator; a failure names its seed.
import { describe, expect, test } from "bun:test";
import { Code, HEADER_BYTES, MAGIC } from "../src/protocol/codes";
import { encodeEnvelope, parseEnvelope } from "../src/protocol/envelope";
import { encodeFrame, FrameDecoder, parseBody, type RawFrame } from "../src/protocol/frame";
import { header } from "./support/raw-tcp";

const MAX_BODY = 65_536;
const text = (b: Uint8Array) => new TextDecoder().decode(b);

/** mulberry32: small, fast, seedable. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const concat = (parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, at), (at += p.length);
  return out;
};

/** Split `bytes` into random pieces (empty ones too) and push them one by one; copies of what came out. */
function decodeInPieces(bytes: Uint8Array, next: () => number, maxBody = MAX_BODY) {
  const d = new FrameDecoder(maxBody);
  const frames: Array<{ code: number; body: string }> = [];
  for (let at = 0; at <= bytes.length; ) {
    const size = Math.floor(next() * Math.min(64, bytes.length - at + 1));
    // a fresh copy per piece, then scribbled over: the decoder must not keep views into its input
    const piece = bytes.slice(at, at + size);
    for (const f of d.push(piece)) frames.push({ code: f.code, body: text(f.body) });
    piece.fill(0xee);
    at += size;
    if (size === 0 && at === bytes.length) break;
  }
  return { frames, violation: d.violation, partial: d.hasPartial };
}

function randomJson(next: () => number): string {
  const pick = <T>(xs: T[]) => xs[Math.floor(next() * xs.length)];
  const obj: Record<string, unknown> = {};
  const n = Math.floor(next() * 5);
  for (let i = 0; i < n; i++) obj[`k${i}`] = pick([() => Math.floor(next() * 1e9), () => "héllo ✓ 𝄞 ".repeat(Math.floor(next() * 4)), () => null, () => [1, "x"], () => ({ nested: true })])();
  return n === 0 && next() < 0.5 ? "" : JSON.stringify(obj);
}

describe("frame encoding", () => {
  test("header is magic, code, byte length (big-endian), then the UTF-8 body", () => {
    const json = JSON.stringify({ content: "héllo 𝄞" });
    const f = encodeFrame(Code.BIZ, json);
    const v = new DataView(f.buffer, f.byteOffset, f.byteLength);
    const bodyBytes = new TextEncoder().encode(json);
    expect(v.getUint16(0)).toBe(MAGIC);
    expect(v.getInt32(2)).toBe(Code.BIZ);
    expect(v.getInt32(6)).toBe(bodyBytes.length);
    expect(bodyBytes.length).toBeGreaterThan(json.length); // multi-byte characters are counted in bytes
    expect(f.length).toBe(HEADER_BYTES + bodyBytes.length);
    expect([...f.subarray(HEADER_BYTES)]).toEqual([...bodyBytes]);
  });

  test("each frame owns its bytes: encoding the next one does not change it", () => {
    const first = encodeFrame(Code.LOGIN, '{"a":1}');
    const copy = first.slice();
    encodeFrame(Code.BIZ, '{"b":"a longer body that overwrites any shared scratch"}');
    expect([...first]).toEqual([...copy]);
    expect(first.byteOffset).toBe(0);
    expect(first.buffer.byteLength).toBe(first.length);
  });

  test("a body too big for the internal scratch buffer is encoded whole", () => {
    const json = JSON.stringify({ s: "✓".repeat(200_000) });
    const f = encodeFrame(Code.BIZ, json);
    const [d] = new FrameDecoder(1 << 21).push(f);
    expect(text(d.body)).toBe(json);
  });

  test("negative and large codes survive the round trip", () => {
    const frames = new FrameDecoder(MAX_BODY).push(concat([encodeFrame(-7, "{}"), encodeFrame(2 ** 31 - 1, "{}")]));
    expect(frames.map((f) => f.code)).toEqual([-7, 2 ** 31 - 1]);
  });
});

describe("frame decoding", () => {
  test("several frames and part of another in one push; the rest later", () => {
    const d = new FrameDecoder(MAX_BODY);
    const third = encodeFrame(Code.HEARTBEAT, '{"n":3}');
    const got = d.push(concat([encodeFrame(Code.LOGIN, '{"n":1}'), encodeFrame(Code.HEARTBEAT, ""), third.subarray(0, 4)]));
    expect(got.map((f) => [f.code, text(f.body)])).toEqual([[Code.LOGIN, '{"n":1}'], [Code.HEARTBEAT, ""]]);
    expect(d.hasPartial).toBe(true);
    const rest = d.push(third.subarray(4));
    expect(rest.map((f) => [f.code, text(f.body)])).toEqual([[Code.HEARTBEAT, '{"n":3}']]);
    expect(d.hasPartial).toBe(false);
  });

  test("bad magic is a sticky violation; frames before it are still returned", () => {
    const d = new FrameDecoder(MAX_BODY);
    const got = d.push(concat([encodeFrame(Code.HEARTBEAT, "{}"), header(Code.HEARTBEAT, 0, 0x1234)]));
    expect(got).toHaveLength(1);
    expect(d.violation).toContain("magic");
    expect(d.push(encodeFrame(Code.HEARTBEAT, "{}"))).toEqual([]);
  });

  test("len > maxBody and negative len are violations; len == maxBody is fine", () => {
    const over = new FrameDecoder(100);
    expect(over.push(header(Code.BIZ, 101))).toEqual([]);
    expect(over.violation).toContain("101");
    const negative = new FrameDecoder(100);
    negative.push(header(Code.BIZ, -1));
    expect(negative.violation).toContain("-1");
    const exact = new FrameDecoder(100);
    const body = `{}${" ".repeat(98)}`;
    expect(exact.push(encodeFrame(Code.BIZ, body)).map((f) => f.body.length)).toEqual([100]);
    expect(exact.violation).toBeNull();
  });

  test("parseBody: empty is {}, non-objects and bad JSON or UTF-8 are refused without throwing", () => {
    const enc = (s: string) => new TextEncoder().encode(s);
    expect(parseBody(new Uint8Array(0))).toEqual({ ok: true, value: {} });
    expect(parseBody(enc('{"a":1}'))).toEqual({ ok: true, value: { a: 1 } });
    for (const bad of ["[1]", "null", "42", '"s"', "{", "nope"]) expect(parseBody(enc(bad)).ok).toBe(false);
    expect(parseBody(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])).ok).toBe(false);
  });
});

describe("WebSocket text envelope", () => {
  test("round trip; magic 18673 accepted, len ignored, missing body is {}", () => {
    expect(parseEnvelope(encodeEnvelope(Code.BIZ, '{"x":1}'))).toEqual({ ok: true, code: Code.BIZ, body: { x: 1 } });
    expect(parseEnvelope('{"code":1004,"magic":18673,"len":999,"body":{}}')).toEqual({ ok: true, code: 1004, body: {} });
    expect(parseEnvelope('{"code":1004}')).toEqual({ ok: true, code: 1004, body: {} });
  });

  test("a wrong magic, no integer code or non-JSON is fatal; a non-object body is not", () => {
    for (const bad of ['{"code":1004,"magic":1}', '{"code":"1004"}', '{"code":1.5}', "[]", "nope"]) {
      const r = parseEnvelope(bad);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.fatal).toBe(true);
    }
    expect(parseEnvelope('{"code":1003,"body":[1]}')).toMatchObject({ ok: false, fatal: false, code: 1003 });
  });
});

test("a frame of the largest body, pushed a byte at a time, decodes once and intact, with the frame after it", () => {
  const big = JSON.stringify({ text: "z".repeat(MAX_BODY - 20) });
  const stream = concat([encodeFrame(1003, big), encodeFrame(1001, "{}")]);
  const d = new FrameDecoder(MAX_BODY);
  const frames: Array<{ code: number; body: string }> = [];
  for (let at = 0; at < stream.length; at++) {
    // a fresh one-byte piece each time: the decoder must copy what it keeps
    for (const f of d.push(stream.slice(at, at + 1))) frames.push({ code: f.code, body: text(f.body) });
  }
  expect(frames).toEqual([
    { code: 1003, body: big },
    { code: 1001, body: "{}" },
  ]);
  expect(d.hasPartial).toBe(false);
});

describe("randomized", () => {
  test("any split of a stream of random frames decodes to exactly those frames", () => {
    for (let seed = 1; seed <= 300; seed++) {
      const next = rng(seed);
      const sent = Array.from({ length: 1 + Math.floor(next() * 12) }, () => ({ code: Math.floor(next() * 4e9) - 2e9, body: randomJson(next) }));
      const stream = concat(sent.map((f) => encodeFrame(f.code, f.body)));
      const got = decodeInPieces(stream, next);
      expect({ seed, ...got }).toEqual({ seed, frames: sent, violation: null, partial: false });
    }
  });

  test("random garbage never throws: it decodes the same however split, ending in a violation or a wait", () => {
    for (let seed = 1; seed <= 500; seed++) {
      const next = rng(seed);
      // half pure noise, half valid frames with a few bytes corrupted (to reach past the header checks)
      const bytes =
        seed % 2 === 0
          ? Uint8Array.from({ length: Math.floor(next() * 300) }, () => Math.floor(next() * 256))
          : concat(Array.from({ length: 4 }, () => encodeFrame(Math.floor(next() * 2000), randomJson(next))));
      if (seed % 2 === 1) for (let i = 0; i < 3; i++) bytes[Math.floor(next() * bytes.length)] = Math.floor(next() * 256);
      const whole = new FrameDecoder(4096);
      const frames: RawFrame[] = whole.push(bytes);
      const expected = { frames: frames.map((f) => ({ code: f.code, body: text(f.body) })), violation: whole.violation, partial: whole.hasPartial };
      for (const f of frames) expect(f.body.length).toBeLessThanOrEqual(4096);
      expect({ seed, ...decodeInPieces(bytes, next, 4096) }).toEqual({ seed, ...expected });
      // bytes left over are either a violation or an incomplete frame, never silently dropped
      const consumed = frames.reduce((n, f) => n + HEADER_BYTES + f.body.length, 0);
      if (whole.violation === null) expect(whole.hasPartial).toBe(consumed < bytes.length);
      for (const f of frames) expect(() => parseBody(f.body)).not.toThrow();
    }
  });

  test("random text envelopes never throw", () => {
    const next = rng(7);
    const alphabet = '{}[]":,0123456789codebymagiclen 1003-';
    for (let i = 0; i < 2000; i++) {
      const s = Array.from({ length: Math.floor(next() * 40) }, () => alphabet[Math.floor(next() * alphabet.length)]).join("");
      expect(() => parseEnvelope(s)).not.toThrow();
    }
  });
});
