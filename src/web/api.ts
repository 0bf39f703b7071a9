// The node's HTTP API as the page uses it (PROTOCOL.md section 6), on the page's own origin.

export interface LiveRoom {
  id: number;
  anchorId: number;
  roomName: string;
  watchNum: number;
}

export interface RoomInfo {
  /** -1 when the room is not live. */
  roomId: number;
  anchorId?: number;
  roomName?: string;
  isAnchor: boolean;
}

async function call<T>(method: "GET" | "POST", path: string, jwt?: string, body?: object): Promise<T> {
  const headers: Record<string, string> = {};
  if (jwt) headers.authorization = `Bearer ${jwt}`;
  if (body) headers["content-type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body ? JSON.stringify(body) : undefined, signal: AbortSignal.timeout(10_000) });
  const json = (await res.json().catch(() => null)) as { error?: { message?: string } } | null;
  if (!res.ok) throw new Error(json?.error?.message ?? `${method} ${path}: HTTP ${res.status}`);
  return json as T;
}

export const api = {
  devLogin: (userId: number, nickName?: string) => call<{ token: string }>("POST", "/api/dev/login", undefined, { userId, nickName }),
  liveRooms: () => call<{ list: LiveRoom[] }>("GET", "/api/living/list?type=1&page=1&pageSize=50").then((r) => r.list),
  startRoom: (jwt: string, roomName?: string) => call<{ roomId: number }>("POST", "/api/living/start", jwt, { type: 1, roomName }).then((r) => r.roomId),
  closeRoom: (jwt: string, roomId: number) => call<{ ok: true }>("POST", "/api/living/close", jwt, { roomId }),
  room: (jwt: string, roomId: number) => call<RoomInfo>("GET", `/api/living/${roomId}`, jwt),
  onlineCount: (roomId: number) => call<{ count: number }>("GET", `/api/living/${roomId}/online`).then((r) => r.count),
};
