/** Frame codes of PROTOCOL.md section 3. */
export const Code = {
  LOGIN: 1001,
  LOGOUT: 1002,
  BIZ: 1003,
  HEARTBEAT: 1004,
  ACK: 1005,
  ERROR: 1006,
} as const;

/** Biz codes of PROTOCOL.md section 5 (any other bizCode is a backend push). */
export const BizCode = {
  ROOM_CHAT: 5555,
  PRIVATE_CHAT: 5556,
  ROOM_CLOSED: 5557,
} as const;

/** Live-room types (seed living_room.type): 1 normal, 2 PK. */
export const ROOM_TYPES = [1, 2] as const;

export const MAGIC = 18673;
export const HEADER_BYTES = 10;
export const DEFAULT_APP_ID = 10001;
