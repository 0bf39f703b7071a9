// The PROXY protocol v1 header a proxy (fly.io's TCP service) writes before the client's bytes, so
// that per-IP limits see the client and not the proxy. Only v1, the one fly.io's proxy_proto writes.

const PREFIX = Buffer.from("PROXY ", "latin1");

/**
 * Parse a PROXY protocol v1 header line ("PROXY TCP4 <src> <dst> <sport> <dport>\r\n").
 * Returns the client address and the header length, "more" while the line is incomplete, or
 * "bad" when it is not a PROXY v1 line.
 */
export function parseProxyV1(buf: Uint8Array): { clientIp: string; length: number } | "more" | "bad" {
  // a stream that cannot be a PROXY line (a client that sends none, a v2 header) is told at once,
  // not left waiting for 107 bytes that may never come
  for (let i = 0; i < Math.min(buf.length, PREFIX.length); i++) if (buf[i] !== PREFIX[i]) return "bad";
  const max = Math.min(buf.length, 107);
  for (let i = 0; i + 1 < max; i++) {
    if (buf[i] === 0x0d && buf[i + 1] === 0x0a) {
      const line = Buffer.from(buf.subarray(0, i)).toString("latin1");
      const parts = line.split(" ");
      if (parts[0] !== "PROXY") return "bad";
      if (parts[1] === "UNKNOWN") return { clientIp: "unknown", length: i + 2 };
      if ((parts[1] !== "TCP4" && parts[1] !== "TCP6") || parts.length !== 6) return "bad";
      return { clientIp: parts[2], length: i + 2 };
    }
  }
  return buf.length >= 107 ? "bad" : "more";
}
