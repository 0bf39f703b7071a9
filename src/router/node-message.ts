// Node-to-node messages: one tagged union, carried as JSON on the channel of the receiving node.
// Pure: no I/O here, only the shapes and the one switch that dispatches them.

/** One reliable delivery (5556 and pushes) to one user. `data` is already a JSON string. */
export interface Delivery {
  appId: number;
  userId: number;
  msgId: string;
  bizCode: number;
  data: string;
  ts: number;
}

/** A room message as published once per room; its `seq` (given at intake) travels beside it. */
export interface RoomMessage {
  msgId: string;
  appId: number;
  bizCode: number;
  ts: number;
  /** The delivered data without `seq`; `data.userId` is the sender (excluded from the fan-out). */
  data: { userId: number; roomId: number; [field: string]: unknown };
  /** The room was closed: after this message, nodes drop the room's members. */
  closesRoom?: boolean;
}

export type NodeMessage =
  | { t: "deliver"; deliveries: Delivery[] }
  | { t: "room"; roomId: number; seq: number; msg: RoomMessage }
  | { t: "kick"; appId: number; userId: number; connId: string };

export interface NodeMessageHandlers {
  deliver(deliveries: Delivery[]): void;
  room(roomId: number, seq: number, msg: RoomMessage): void;
  kick(appId: number, userId: number, connId: string): void;
}

/** Route one node message to its handler. Unknown tags are reported, never thrown. */
export function dispatchNodeMessage(msg: NodeMessage, handlers: NodeMessageHandlers): "ok" | "unknown" {
  switch (msg.t) {
    case "deliver":
      handlers.deliver(msg.deliveries);
      return "ok";
    case "room":
      handlers.room(msg.roomId, msg.seq, msg.msg);
      return "ok";
    case "kick":
      handlers.kick(msg.appId, msg.userId, msg.connId);
      return "ok";
    default:
      return "unknown";
  }
}

/** Whether `msg` was sent by this user (of this app: users of two apps may share a userId). */
export function sentBy(msg: RoomMessage, appId: number, userId: number): boolean {
  return msg.data.userId === userId && msg.appId === appId;
}

/** The delivered `data` string of a room message: its data with its seq. */
function roomDataJson(msg: RoomMessage, seq: number): string {
  return JSON.stringify({ ...msg.data, seq });
}

/** The BIZ frame body every member of the room gets for a room message. */
export function roomBodyJson(msg: RoomMessage, seq: number): string {
  return JSON.stringify({ msgId: msg.msgId, appId: msg.appId, bizCode: msg.bizCode, data: roomDataJson(msg, seq), ts: msg.ts });
}

/** The BIZ frame body a recipient gets for a reliable delivery. */
export function deliveryBodyJson(d: Delivery): string {
  return JSON.stringify({ msgId: d.msgId, appId: d.appId, userId: d.userId, bizCode: d.bizCode, data: d.data, ts: d.ts });
}
