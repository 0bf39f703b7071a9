import { describe, expect, test } from "bun:test";
import { RoomOrder } from "../src/gateway/room-order";
import { waitFor } from "./support/wait";

/** `history`: what each room's history holds, by seq (empty unless a test fills it). */
function recorder(gapWaitMs = 50) {
  const out: Array<[number, number, string]> = [];
  const history = new Map<number, Map<number, string>>();
  const reads: Array<[number, number, number]> = [];
  const order = new RoomOrder<string>(
    gapWaitMs,
    (roomId, seq, msg) => out.push([roomId, seq, msg]),
    async (roomId, fromSeq, toSeq) => {
      reads.push([roomId, fromSeq, toSeq]);
      return [...(history.get(roomId) ?? [])]
        .filter(([seq]) => seq >= fromSeq && seq <= toSeq)
        .sort(([a], [b]) => a - b)
        .map(([seq, msg]) => ({ seq, msg }));
    },
  );
  return { out, order, history, reads };
}

describe("RoomOrder", () => {
  test("passes messages in seq order, holding one that comes after a gap until the gap fills", () => {
    const { out, order } = recorder();
    order.push(7, 10, "a");
    order.push(7, 12, "c");
    expect(out).toEqual([[7, 10, "a"]]);
    order.push(7, 11, "b");
    expect(out).toEqual([[7, 10, "a"], [7, 11, "b"], [7, 12, "c"]]);
    order.clear();
  });

  test("a room started at the seq a login read orders even its first messages here", () => {
    const { out, order } = recorder();
    order.start(4, 20);
    order.push(4, 22, "second");
    expect(out).toEqual([]);
    order.push(4, 21, "first");
    expect(out.map(([, seq]) => seq)).toEqual([21, 22]);
    order.start(4, 0);
    order.push(4, 23, "third");
    expect(out.map(([, seq]) => seq)).toEqual([21, 22, 23]);
    order.forgetRooms(() => false);
    order.push(4, 30, "after forgetting");
    expect(out.map(([, seq]) => seq)).toEqual([21, 22, 23, 30]);
    order.clear();
  });

  test("a room followed before and started again (its last member left moments ago) follows on from the new join at once", () => {
    const { out, order } = recorder(60_000);
    order.push(4, 5, "before");
    // seq 7 waits for 6, which this node was not sent once its last member had left
    order.push(4, 7, "held");
    order.start(4, 100);
    // what was held at or before the new join's seq goes now; the next live message does not wait
    order.push(4, 101, "live");
    expect(out.map(([, seq, msg]) => `${seq}:${msg}`)).toEqual(["5:before", "7:held", "101:live"]);
    // started again behind where it already is (messages came during the join): nothing changes
    order.push(4, 103, "after a gap");
    order.start(4, 90);
    expect(out).toHaveLength(3);
    order.push(4, 102, "fills it");
    expect(out.map(([, seq]) => seq)).toEqual([5, 7, 101, 102, 103]);
    order.clear();
  });

  test("a join where the room is followed already says where this node is: the seq it passes on next, even behind a gap", () => {
    const { out, order } = recorder(60_000);
    expect(order.joined(4, 10, true)).toBe(11);
    order.push(4, 11, "a");
    order.push(4, 13, "c");
    // a later join read the history up to 13, but 12 is still to come here: 12 and 13 come live
    expect(order.joined(4, 13, false)).toBe(12);
    order.push(4, 12, "b");
    expect(out.map(([, seq]) => seq)).toEqual([11, 12, 13]);
    expect(order.joined(4, 13, false)).toBe(14);
    // a join that gets here before the room's first one is started by it
    expect(order.joined(9, 3, false)).toBe(4);
    order.clear();
  });

  test("rooms are ordered independently", () => {
    const { out, order } = recorder();
    order.push(1, 5, "r1-5");
    order.push(2, 9, "r2-9");
    order.push(1, 7, "r1-7");
    order.push(2, 10, "r2-10");
    expect(out.map(([, , m]) => m)).toEqual(["r1-5", "r2-9", "r2-10"]);
    order.clear();
  });

  test("a gap that does not fill is skipped after the wait; the late message still comes, once", async () => {
    const { out, order } = recorder(30);
    order.push(3, 1, "one");
    order.push(3, 3, "three");
    order.push(3, 4, "four");
    await waitFor(() => out.length === 3, 1000, "the messages after the gap");
    expect(out.map(([, seq]) => seq)).toEqual([1, 3, 4]);
    order.push(3, 2, "two");
    expect(out.map(([, seq]) => seq)).toEqual([1, 3, 4, 2]);
    order.push(3, 5, "five");
    expect(out.map(([, seq]) => seq)).toEqual([1, 3, 4, 2, 5]);
    order.clear();
  });

  test("a gap that does not fill in time is read from the room's history (this node may have missed it); only what that lacks is skipped", async () => {
    const { out, order, history, reads } = recorder(30);
    order.push(3, 1, "one");
    order.push(3, 5, "five");
    // published while this node was not listening: 2 and 4 are in the history, 3 is not (yet)
    history.set(3, new Map([[2, "two"], [4, "four"], [5, "five"]]));
    await waitFor(() => out.length === 4, 1000, "the gap read from the history");
    expect(reads).toEqual([[3, 2, 4]]);
    expect(out.map(([, seq, msg]) => `${seq}:${msg}`)).toEqual(["1:one", "2:two", "4:four", "5:five"]);
    order.clear();
  });

  test("after a lost subscription, catchUp passes on what each followed room's history holds from the seq expected next, in order", async () => {
    const { out, order, history } = recorder(60_000);
    order.start(1, 10);
    order.push(1, 11, "live");
    order.push(2, 40, "other room");
    order.push(2, 43, "after a gap");
    history.set(1, new Map([[10, "replayed at login"], [11, "live"], [12, "missed"], [13, "missed too"]]));
    history.set(2, new Map([[41, "missed"], [42, "missed"], [43, "after a gap"]]));
    await order.catchUp();
    expect(out.filter(([room]) => room === 1).map(([, seq]) => seq)).toEqual([11, 12, 13]);
    expect(out.filter(([room]) => room === 2).map(([, seq]) => seq)).toEqual([40, 41, 42, 43]);
    // the pub/sub copies of what the history gave, still on their way then, are repeats: dropped
    order.push(1, 13, "missed too");
    order.push(2, 41, "missed");
    // a late message the history did not give still comes
    order.push(1, 9, "late");
    expect(out.map(([room, seq]) => `${room}:${seq}`)).toEqual(["1:11", "2:40", "1:12", "1:13", "2:41", "2:42", "2:43", "1:9"]);
    order.clear();
  });

  test("after restart() (Redis lost the seqs and histories) each room follows on from seq 1 again: what waited behind a gap goes at once, the new history is read by catchUp", async () => {
    const { out, order, history } = recorder(60_000);
    order.push(4, 50, "old");
    order.push(4, 52, "old, after a gap");
    history.set(4, new Map([[1, "new 1"], [2, "new 2"]]));
    order.restart();
    expect(out.map(([, seq, msg]) => `${seq}:${msg}`)).toEqual(["50:old", "52:old, after a gap"]);
    await order.catchUp();
    // seq 3 comes by pub/sub after the history was read; seq 2's pub/sub copy is a repeat
    order.push(4, 2, "new 2");
    order.push(4, 3, "new 3");
    expect(out.slice(2).map(([, seq, msg]) => `${seq}:${msg}`)).toEqual(["1:new 1", "2:new 2", "3:new 3"]);
    order.clear();
  });
});
