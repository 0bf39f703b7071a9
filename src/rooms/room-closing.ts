// Closing a live room end to end: move it to the records, clear its membership, and tell its
// connections (bizCode 5557, one room message that also makes every node drop the room's members).
import type { Logger } from "../log";
import { BizCode } from "../protocol/codes";
import type { Sequencer } from "../messaging/sequencer";
import type { Broker, RoomLogEntry } from "../router/broker";
import type { LivingRooms, Room } from "./living-rooms";
import type { RoomMembership } from "./membership";

/**
 * Waits before each new try to announce a close whose first try failed (Redis out of reach for a
 * moment): about 20 s in all, then the failure is logged for good.
 */
const ANNOUNCE_RETRY_DELAYS_MS = [250, 1000, 4000, 15_000];

export class RoomClosing {
  constructor(
    private readonly rooms: LivingRooms,
    private readonly membership: RoomMembership,
    private readonly broker: Broker,
    private readonly sequencer: Sequencer,
    private readonly log: Logger,
    private readonly retryDelaysMs: readonly number[] = ANNOUNCE_RETRY_DELAYS_MS,
  ) {}

  /**
   * Close the anchor's room (404 not live, 403 not the anchor, a user of app `appId`) and tell
   * everyone in it. Resolves once the room is closed in MySQL and, normally, announced; should the
   * announcement (Redis) fail, the room is still closed (a repeated close would get 404), so the
   * announcement is retried in the background.
   */
  async close(appId: number, userId: number, roomId: number): Promise<void> {
    const announcement = new Announcement(await this.rooms.close(appId, userId, roomId));
    try {
      await this.announce(announcement);
    } catch (err) {
      this.log.warn({ err, roomId }, "the room closed, but telling its members failed; retrying");
      void this.announceLater(announcement);
    }
  }

  private async announceLater(announcement: Announcement): Promise<void> {
    const roomId = announcement.room.id;
    for (const delay of this.retryDelaysMs) {
      await Bun.sleep(delay);
      try {
        await this.announce(announcement);
        this.log.info({ roomId }, "the room's close was announced after all");
        return;
      } catch (err) {
        this.log.warn({ err, roomId }, "announcing the room's close failed again");
      }
    }
    this.log.error({ roomId }, "the room closed, but its members could not be told: they stay until they reconnect");
  }

  /**
   * The room cached as closed, an empty membership that takes no one any more (the closed mark),
   * then the 5557 notice to the room. The mark comes first: every publish to the room from the
   * notice on, a room message accepted before the close among them, then finds it and shortens the
   * history's TTL (RedisBroker.publishToRoom); one published between the notice and the mark set
   * the live room's week again. A retry sends the same notice (same msgId and seq): one already in
   * the room's history is not sent twice.
   */
  private async announce(announcement: Announcement): Promise<void> {
    const { room } = announcement;
    // the cache write, the notice's msgId and seq (at its first try) and the read of the nodes the
    // closed mark needs go to Redis together: one round trip, where each awaited the one before
    // (none needs another's answer); the mark and the notice follow, in that order
    const [nodes] = await Promise.all([this.membership.nodeIds(), this.rooms.cacheClosed(room.id), announcement.entry === null ? this.makeNotice(announcement) : null]);
    await this.membership.closeRoom(room.id, nodes);
    await this.broker.publishToRoom(room.id, [announcement.entry!]);
  }

  /** The notice of the close, with its msgId and seq: kept once reserved, so a retry sends the same one. */
  private async makeNotice(announcement: Announcement): Promise<void> {
    const { room } = announcement;
    const now = Date.now();
    // the room is cached as closed by now (sent before this): its own notice still takes a seq
    const [{ msgId, seq }] = await this.sequencer.reserve([room.id], { evenIfClosed: true });
    const msg = {
      msgId,
      // the room's app: the anchor's
      appId: room.appId,
      bizCode: BizCode.ROOM_CLOSED,
      ts: now,
      // userId 0: a notice from the system, so no connection is left out (not even the anchor's)
      data: { userId: 0, roomId: room.id, anchorId: room.anchorId, createTime: now },
      closesRoom: true,
    };
    announcement.entry = { seq: seq!, msg };
  }
}

/** One closed room's notice, made once (at its first try) and the same at every retry. */
class Announcement {
  entry: RoomLogEntry | null = null;
  constructor(readonly room: Room) {}
}
