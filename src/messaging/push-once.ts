// Pushes a business backend may safely repeat. A backend whose POST /api/im/push timed out cannot
// tell whether it was accepted; repeating it without this delivers the notice twice, with two
// msgIds, which no client can de-duplicate. With an `Idempotency-Key` header (the IETF httpapi
// draft's) a push is accepted once per app and key for an hour; a repeat gets the first answer.
import { createHash, randomBytes } from "node:crypto";
import type Redis from "ioredis";
import type { Logger } from "../log";
import { ImError } from "../protocol/errors";
import type { Keys } from "../redis/keys";

/** How long a key's answer is remembered: a backend repeats a push within minutes, not days. */
const ANSWER_TTL_S = 3600;
/** How long a push being accepted holds its key; past it (a node died mid-way) a repeat may go on. */
const CLAIM_TTL_MS = 60_000;

/** A push's answer (JSON), as remembered for its repeats. */
type PushAnswer = { msgId: string };

// Delete the claim only while it is still ours: after CLAIM_TTL_MS it may be another request's.
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

export class PushOnce {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly log: Logger,
  ) {
    this.redis.defineCommand("imReleaseClaim", { numberOfKeys: 1, lua: RELEASE });
  }

  /**
   * `accept()`'s answer, run at most once per (appId, key) within the hour; a repeat gets the first
   * answer and `replayed`. Refuses with `idempotency_conflict` while the first is still being
   * accepted, and with `idempotency_key_reused` when the key came with another request. A failed
   * `accept()` frees the key for a repeat.
   */
  async run<A extends PushAnswer>(appId: number, key: string, request: unknown, accept: () => Promise<A>): Promise<{ answer: A; replayed: boolean }> {
    const k = this.keys.pushOnce(appId, key);
    const fingerprint = createHash("sha256").update(canonicalJson(request)).digest("base64url");
    // two tries: a claim that lapsed between our SET and GET leaves the key free again
    for (let attempt = 0; attempt < 2; attempt++) {
      const claim = `claim:${fingerprint}:${randomBytes(9).toString("base64url")}`;
      if ((await this.redis.set(k, claim, "PX", CLAIM_TTL_MS, "NX")) === "OK") {
        return { answer: await this.acceptOnce(k, claim, fingerprint, accept), replayed: false };
      }
      const seen = await this.redis.get(k);
      if (seen === null) continue;
      // our own claim: the SET ran, its answer was lost with the connection, and ioredis sent it
      // again (autoResendUnfulfilledCommands), which found the key taken by the first run
      if (seen === claim) return { answer: await this.acceptOnce(k, claim, fingerprint, accept), replayed: false };
      const [kind, seenFingerprint] = seen.split(":", 2);
      if (seenFingerprint !== fingerprint) throw new ImError("idempotency_key_reused", "this Idempotency-Key came with another push: use a new key for a new push");
      if (kind === "claim") throw new ImError("idempotency_conflict", "a push with this Idempotency-Key is still being accepted: repeat it in a moment");
      return { answer: JSON.parse(seen.slice(kind.length + seenFingerprint.length + 2)) as A, replayed: true };
    }
    throw new ImError("idempotency_conflict", "a push with this Idempotency-Key is still being accepted: repeat it in a moment");
  }

  private async acceptOnce<A extends PushAnswer>(k: string, claim: string, fingerprint: string, accept: () => Promise<A>): Promise<A> {
    let answer: A;
    try {
      answer = await accept();
    } catch (err) {
      await (this.redis as unknown as ReleaseScript).imReleaseClaim(k, claim).catch((releaseErr: unknown) => {
        // the claim lapses by itself within CLAIM_TTL_MS; until then a repeat is told to wait
        this.log.warn({ err: releaseErr, key: k }, "could not free an Idempotency-Key after a failed push");
      });
      throw err;
    }
    // the push is accepted (queued): it is answered as such even if the answer cannot be recorded;
    // a repeat after the claim lapsed would then be accepted again
    await this.redis.set(k, `done:${fingerprint}:${JSON.stringify(answer)}`, "EX", ANSWER_TTL_S).catch((err: unknown) => {
      this.log.error({ err, key: k, msgId: answer.msgId }, "could not record a push's Idempotency-Key answer: a repeat may deliver it again");
    });
    return answer;
  }
}

/**
 * `value` as JSON with every object's keys sorted: a JSON object's members have no order (RFC 8259),
 * and a backend's repeat may list them in another (a hash map serialised after a restart), which is
 * the same push, not another one for the key. Arrays keep their order.
 */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === "object" && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}

interface ReleaseScript {
  imReleaseClaim(key: string, claim: string): Promise<number>;
}
