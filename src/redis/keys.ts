// Every Redis key and pub/sub channel of live-im is built here, under one prefix (KEY_PREFIX,
// default "im"), so that several clusters or test runs can share one Redis without meeting.

export type Keys = ReturnType<typeof createKeys>;

/** Heartbeat zsets are sharded by userId % 10000 (ARCHITECTURE.md, "Where state lives"). */
export const HEARTBEAT_SHARDS = 10_000;

/** The value of Keys.livingRoom for a room known not to be live (closed, or never started); the sequencer looks for it too. */
export const LIVING_ROOM_NOT_LIVE = "null";

export function createKeys(prefix: string) {
  const p = prefix;
  return {
    prefix: p,
    /** IM login token → {userId, appId} (string, TTL 300 s). */
    token: (token: string) => `${p}:token:${token}`,
    /** Tokens minted for appId:userId in the current minute (counter, TTL 60 s): bounds a user's live tokens. */
    tokensMinted: (appId: number, userId: number) => `${p}:tokens-minted:${appId}:${userId}`,
    /** appId:userId → "nodeId|connId" (string, TTL 2 heartbeats). */
    binding: (appId: number, userId: number) => `${p}:bind:${appId}:${userId}`,
    /**
     * Heartbeat zset shard: member userId, score last heartbeat ms (the seed's heartbeat index, which
     * issue 2 asks for: who beat lately, for tooling). Routing and online checks use the binding.
     * TTL 2 heartbeats past its newest beat.
     */
    heartbeats: (appId: number, userId: number) => `${p}:hb:${appId}:${userId % HEARTBEAT_SHARDS}`,
    /** Live nodes: zset nodeId → last refresh ms. */
    nodes: () => `${p}:nodes`,
    /** One node's advertised facts (JSON string, TTL). */
    nodeInfo: (nodeId: string) => `${p}:nodeinfo:${nodeId}`,
    /** Held by the live node that cleans up after a dead node (string, TTL). */
    nodeReapLock: (nodeId: string) => `${p}:nodereap:${nodeId}`,
    /** Set when a node was cleaned up after as dead; the node, if alive after all, finds it and re-announces itself. */
    nodeReaped: (nodeId: string) => `${p}:nodereaped:${nodeId}`,
    /** Live rooms a node has had members in (set of roomIds; a room leaves it when it closes), for removing them when the node dies. */
    nodeRooms: (nodeId: string) => `${p}:noderooms:${nodeId}`,
    /** The pub/sub channel of one node (PROTOCOL/ARCHITECTURE: im:node:<nodeId>). */
    nodeChannel: (nodeId: string) => `${p}:node:${nodeId}`,
    /** What precedes the nodeId in nodeChannel: a Lua script that reads node ids from Redis appends them. */
    nodeChannelPrefix: () => `${p}:node:`,
    /** Cluster-wide msgId sequence (INCR). */
    msgIdSeq: () => `${p}:seq:msg`,
    /** Per-room message seq (INCR at intake; TTL a week past the last publish, an hour once the room closed). */
    roomSeq: (roomId: number) => `${p}:room:${roomId}:seq`,
    /** Per-room recent history for recovery: zset of message JSON scored by seq, capped (TTL with the seq's). */
    roomLog: (roomId: number) => `${p}:room:${roomId}:history`,
    /** Set of nodeIds that hold at least one connection in the room. */
    roomNodes: (roomId: number) => `${p}:room:${roomId}:nodes`,
    /** Room membership: hash "appId:userId" → "nodeId|sessionId" (living_room_user_set of the seed). */
    roomMembers: (roomId: number) => `${p}:room:${roomId}:members`,
    /** Present (a day) once the room closed: its membership takes no one any more. */
    roomClosed: (roomId: number) => `${p}:room:${roomId}:closed`,
    /** A user may have kept messages in MySQL: a token renewed after each insert (messaging/kept-marks.ts). */
    keptMark: (appId: number, userId: number) => `${p}:kept:${appId}:${userId}`,
    /** Held (an hour, never released) by the node that ran the cluster's last retention sweep of kept messages. */
    keptSweepLock: () => `${p}:kept:sweep-lock`,
    /** Present once the kept marks cover every kept row. */
    keptMarksReady: () => `${p}:kept:ready`,
    /** Reliable deliveries awaiting the recipient's ACK: hash msgId → "<attempt>" or "<attempt>k" (kept in MySQL). */
    pending: (appId: number, userId: number) => `${p}:pending:${appId}:${userId}`,
    /**
     * The reliable deliveries an im-biz job has recorded as pending, so far ("," + appId:userId:msgId
     * each; string, deleted when the job completes): a retry of the job does not make them again.
     */
    bizJobRecords: (jobId: string) => `${p}:bizjob:${jobId}:recorded`,
    /** Living-room object cache (JSON, or LIVING_ROOM_NOT_LIVE for a known miss). */
    livingRoom: (roomId: number) => `${p}:living:room:${roomId}`,
    /** Per-type list of live rooms (Redis list of JSON rows), rebuilt every second. */
    livingList: (type: number) => `${p}:living:list:${type}`,
    livingListTemp: (type: number, nodeId: string) => `${p}:living:list:${type}:tmp:${nodeId}`,
    /** Lock held by the node that rebuilds the room lists. */
    livingListLock: () => `${p}:living:list-lock`,
    /** Present (with a short TTL) while the type's list was rebuilt lately: an absent list then means no rooms. */
    livingListFresh: (type: number) => `${p}:living:list:${type}:fresh`,
    /** A push's Idempotency-Key: "claim:<fingerprint>:<token>" while accepted, then "done:<fingerprint>:<answer JSON>" (TTL an hour). */
    pushOnce: (appId: number, key: string) => `${p}:push-once:${appId}:${key}`,
    /** The answer of one call of a script that must not act twice (redis/answered-once.ts; string, TTL). */
    scriptCall: (callId: string) => `${p}:call:${callId}`,
    /** BullMQ's own prefix, so queues share the cluster's prefix. */
    bullPrefix: () => `${p}:bull`,
  };
}
