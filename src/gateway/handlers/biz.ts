// BIZ c→s: validate, queue on im-biz (messaging/intake.ts), then ACK the sender with the message's msgId.
// The intake checks and the queueing overlap with the connection's next BIZ frames (Session.inIntakeOrder,
// Session.pipeline); places in line and answers keep frame order.
import { Code } from "../../protocol/codes";
import { BizBody } from "../../protocol/bodies";
import { ImError } from "../../protocol/errors";
import { parseJsonObject } from "../../protocol/frame";
import { clientBizHandler } from "../../messaging/biz/registry";
import type { FrameHandler } from "./types";

export const biz: FrameHandler<typeof BizBody> = {
  code: Code.BIZ,
  schema: BizBody,
  async handle(session, body, gateway) {
    const handler = clientBizHandler(body.bizCode);
    if (!handler) throw new ImError("unknown_biz_code", `bizCode ${body.bizCode} cannot be sent by a client`);
    let raw: unknown = body.data;
    if (typeof raw === "string") {
      const parsed = parseJsonObject(raw);
      if (!parsed.ok) throw new ImError("invalid_body", `data: ${parsed.reason}`);
      raw = parsed.value;
    }
    const checked = handler.schema.safeParse(raw);
    if (!checked.success) {
      throw new ImError("invalid_body", checked.error.issues.map((i) => `data.${i.path.join(".")}: ${i.message}`).join("; "));
    }
    const sender = session.user!;
    // the checks may ask Redis (is the room live?): the next BIZ frames' checks go meanwhile, and
    // the message takes its place in line after theirs before it (Session.inIntakeOrder); a refusal
    // is answered in its turn (Session.pipeline)
    const accepted = handler.accept(checked.data, sender, gateway.deps);
    // submit() takes the message's place in line at once; the next BIZ frame need not wait for the
    // queue (Session.pipeline)
    const queued = session.inIntakeOrder(accepted, () =>
      gateway.deps.intake.submit({
        appId: sender.appId,
        senderId: sender.userId,
        bizCode: body.bizCode,
        data: checked.data as Record<string, unknown>,
        ts: Date.now(),
        roomId: handler.roomOf(checked.data),
        ...handler.extraFields(checked.data, sender),
      }),
    );
    session.pipeline(
      queued.then((message) => () => {
        gateway.log.debug({ msgId: message.msgId, userId: sender.userId, bizCode: body.bizCode }, "biz accepted");
        session.send(Code.ACK, { clientMsgId: body.clientMsgId, msgId: message.msgId });
      }),
      body.clientMsgId,
    );
  },
};
