// Reliable delivery (5556 and pushes): keep first, then deliver to whoever is online.
//
// Keeping every message in MySQL before the presence lookup closes the race with a login: either
// the login's replay query sees the kept row, or this lookup sees the new binding (or both, and the
// client de-duplicates by msgId). Nothing falls between the two.
import type { Router } from "../router/router";
import type { AckTracker } from "./ack-tracker";
import type { KeptMessage, KeptStore } from "./kept-store";

export class ReliableDelivery {
  constructor(
    private readonly kept: KeptStore,
    private readonly router: Router,
    private readonly acks: AckTracker,
  ) {}

  async send(messages: KeptMessage[]): Promise<void> {
    await this.kept.keep(messages);
    const deliveries = messages.map(({ senderId: _sender, ...d }) => d);
    const byNode = await this.router.locate(deliveries);
    await this.acks.track([...byNode.values()].flat(), 1);
    await this.router.publish(byNode);
  }
}
