// Hostile values: numbers at the edges of int32, int64 and doubles, numeric strings a lax parser
// would take, strings that trip encoders, logs and SQL, prototype keys; and JSON texts that
// JSON.stringify cannot make (deep nesting, __proto__ keys, duplicate keys, cut-off text). Most
// start from a body that is valid for its place, so the server's checks are reached one field off.
import type { Rng } from "./prng";

export const NUMS = [0, -1, 1, 1.5, -0.0, 2 ** 31, 2 ** 31 - 1, -(2 ** 31), 2 ** 32, 2 ** 53, 2 ** 53 + 2, 9007199254740993, 1e308, -1e308, 5e-324, 10001, 10042, 5555, 5556, 5557, 6001];
export const NUM_STRINGS = ["NaN", "Infinity", "-Infinity", "1e3", "0x10", "007", " 42", "42 ", "", "-1", "1.0", "9007199254740993", "١٢٣"];
export const STRINGS = ["", "a", "\u0000", "\ud800", "\udfff", "💥🔥", "é".repeat(300), "<script>alert(1)</script>", "'; DROP TABLE im_message; --", "%00", "../../etc/passwd", "\r\n\r\n", "__proto__", "constructor", "toString", "hasOwnProperty", "x".repeat(129), "x".repeat(4001), "\u202e\u200b"];
/** Field names of the protocol's bodies, and a few that are in none. */
const KEYS = ["appId", "userId", "token", "roomId", "roomSeq", "bizCode", "data", "clientMsgId", "msgId", "objectId", "content", "code", "body", "magic", "len", "x"];

/** `{"a":"<ff><fe>(` : a JSON-looking body that is not UTF-8. */
export const INVALID_UTF8 = new Uint8Array([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0xc3, 0x28, 0x22, 0x7d]);

export function hostileValue(rng: Rng, depth = 0): unknown {
  if (depth > 4) return rng.pick(NUMS);
  switch (rng.int(10)) {
    case 0:
      return rng.pick(NUMS);
    case 1:
      return rng.pick(NUM_STRINGS);
    case 2:
      return rng.pick(STRINGS);
    case 3:
      return null;
    case 4:
      return rng.chance(0.5);
    case 5:
      return Array.from({ length: rng.int(4) }, () => hostileValue(rng, depth + 1));
    case 6:
      return hostileObject(rng, depth + 1);
    case 7:
      return "y".repeat(rng.pick([0, 1, 1000, 70_000]));
    default:
      return rng.int(1_000_000);
  }
}

function hostileObject(rng: Rng, depth = 0): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (let i = rng.int(5); i > 0; i--) o[rng.pick(KEYS)] = hostileValue(rng, depth);
  return o;
}

/** `"<open>…1…<close>"` nested `depth` times. */
export function nested(depth: number, open: string, inner: string, close: string): string {
  return `${open.repeat(depth)}${inner}${close.repeat(depth)}`;
}

/** A JSON text (or not quite) for a body whose valid form `valid` makes; valid as is in 5 of 16. */
export function hostileJsonText(rng: Rng, valid: () => Record<string, unknown>): string {
  const someKey = (v: Record<string, unknown>) => rng.pick(Object.keys(v).length ? Object.keys(v) : ["x"]);
  switch (rng.int(16)) {
    case 0:
      return `{"__proto__":{"polluted":1,"userId":1},"constructor":{"prototype":{"polluted":1}}}`;
    case 1:
      return JSON.stringify(valid()).replace(/^\{/, `{"__proto__":{"isAdmin":true},`);
    case 2:
      return `{"data":${nested(rng.pick([100, 1000, 20_000]), "[", "", "]")}}`;
    case 3:
      return nested(rng.pick([100, 5000, 20_000]), '{"a":', "1", "}");
    case 4:
      return JSON.stringify(valid()).slice(0, rng.int(20));
    case 5:
      return rng.pick(["null", "[]", "1", '"x"', "true", "[{}]", "{", "}", "", " ", "\ufeff{}", "{}{}", '{"a":1,}', "NaN"]);
    case 6: {
      // a duplicate key: the second value wins in JSON.parse, not necessarily in a validator
      const v = valid();
      return JSON.stringify(v).replace(/\}$/, `,"${someKey(v)}":${JSON.stringify(hostileValue(rng))}}`);
    }
    case 7:
      return JSON.stringify({ ...valid(), ...hostileObject(rng) });
    case 8: {
      const v = valid();
      v[someKey(v)] = hostileValue(rng);
      return JSON.stringify(v);
    }
    case 9:
      return JSON.stringify(hostileObject(rng));
    case 10:
      return JSON.stringify(valid()).replace(/(\d+)/, rng.pick(["1e400", "-0", "1.0", "0.5", "9007199254740993", "1E2"]));
    default:
      return JSON.stringify(valid());
  }
}
