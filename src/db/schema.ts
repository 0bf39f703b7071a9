// Drizzle schema (MySQL). Migrations are generated from it into drizzle/ with `bun run db:generate`.
import { bigint, datetime, index, int, mediumtext, mysqlTable, primaryKey, tinyint, uniqueIndex, varchar } from "drizzle-orm/mysql-core";
import { sql } from "drizzle-orm";
import { DEFAULT_APP_ID } from "../protocol/codes";

/**
 * Kept reliable messages (5556 and pushes): one row per (recipient, message) whose recipient was
 * offline, or did not ACK its deliveries (messaging/reliable-delivery.ts). A user's next login
 * replays its rows in msg_id order; the recipient's ACK deletes a row (one whose delete MySQL
 * refused is skipped by the replay: its ACK is noted in Redis), and so does the optional retention
 * (KEPT_RETENTION_DAYS).
 */
export const imMessage = mysqlTable(
  "im_message",
  {
    appId: int("app_id").notNull(),
    userId: bigint("user_id", { mode: "number", unsigned: true }).notNull(),
    msgId: bigint("msg_id", { mode: "number", unsigned: true }).notNull(),
    senderId: bigint("sender_id", { mode: "number", unsigned: true }).notNull(),
    bizCode: int("biz_code").notNull(),
    /** The delivered `data`: a JSON string. */
    data: mediumtext("data").notNull(),
    /** Server time the message was accepted, ms. */
    ts: bigint("ts", { mode: "number" }).notNull(),
  },
  // by ts: the retention sweep (KEPT_RETENTION_DAYS) deletes the oldest rows
  (t) => [primaryKey({ columns: [t.appId, t.userId, t.msgId] }), index("im_message_ts").on(t.ts)],
);

const roomColumns = {
  id: int("id", { unsigned: true }).autoincrement().primaryKey(),
  /** The anchor's app: the same userId in another app is another person (a user JWT's appId claim). */
  appId: int("app_id").notNull().default(DEFAULT_APP_ID),
  anchorId: bigint("anchor_id", { mode: "number", unsigned: true }).notNull(),
  /** 1 normal, 2 pk. */
  type: tinyint("type").notNull().default(1),
  /** 1 live (valid), 0 not. */
  status: tinyint("status").notNull().default(1),
  roomName: varchar("room_name", { length: 60 }).notNull().default(""),
  covertImg: varchar("covert_img", { length: 255 }),
  watchNum: int("watch_num").notNull().default(0),
  goodNum: int("good_num").notNull().default(0),
  startTime: datetime("start_time", { mode: "date", fsp: 3 }).notNull().default(sql`CURRENT_TIMESTAMP(3)`),
  updateTime: datetime("update_time", { mode: "date", fsp: 3 }),
};

/**
 * Rooms that are live now (seed: t_living_room). At most one per anchor (app and user): the unique
 * index is what keeps concurrent starts by one anchor from opening several rooms (LivingRooms.start).
 */
export const livingRoom = mysqlTable("living_room", roomColumns, (t) => [
  index("living_room_type_id").on(t.type, t.id),
  uniqueIndex("living_room_app_anchor_unique").on(t.appId, t.anchorId),
]);

/** Rooms that were live (seed: t_living_room_record); a closed room moves here. */
export const livingRoomRecord = mysqlTable(
  "living_room_record",
  { ...roomColumns, id: int("id", { unsigned: true }).primaryKey(), endTime: datetime("end_time", { mode: "date", fsp: 3 }) },
  (t) => [index("living_room_record_anchor").on(t.anchorId)],
);
