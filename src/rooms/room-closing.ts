// Closing a live room end to end: move it to the records, tell its connections (bizCode 5557, one
// room message that also makes every node drop the room's members), and clear its membership.
import { BizCode } from "../protocol/codes";
import type { Sequencer } from "../messaging/sequencer";
import type { Broker } from "../router/broker";
import type { LivingRooms } from "./living-rooms";
import type { RoomMembership } from "./membership";

export class RoomClosing {
  constructor(
    private readonly rooms: LivingRooms,
    private readonly membership: RoomMembership,
    private readonly broker: Broker,
    private readonly sequencer: Sequencer,
    private readonly appId: number,
  ) {}

  /** Close the anchor's room (404 not live, 403 not the anchor) and notify everyone in it. */
  async close(userId: number, roomId: number): Promise<void> {
    const room = await this.rooms.close(userId, roomId);
    const now = Date.now();
    const [{ msgId, seq }] = await this.sequencer.reserve([roomId]);
    const msg = {
      msgId,
      appId: this.appId,
      bizCode: BizCode.ROOM_CLOSED,
      ts: now,
      // userId 0: a notice from the system, so no connection is left out (not even the anchor's)
      data: { userId: 0, roomId, anchorId: room.anchorId, createTime: now },
      closesRoom: true,
    };
    await this.broker.publishToRoom(roomId, [{ seq: seq!, msg }]);
    await this.membership.clear(roomId);
  }
}
