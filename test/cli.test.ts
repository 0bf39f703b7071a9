// The terminal chat client (src/client/cli.ts) as a user runs it: a child process against a real
// node, with its stdin piped and its stdout read.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import { Clients } from "./support/clients";
import { newUserId, openRoom } from "./support/http-api";
import { startInProcessNodes, type InProcessCluster } from "./support/in-process-nodes";
import { record } from "./support/recorder";
import { waitFor } from "./support/wait";

const CLI = join(import.meta.dir, "../src/client/cli.ts");
let cluster: InProcessCluster;
const clients = new Clients();

beforeAll(async () => {
  // the CLI heartbeats every 30 s, like any default ImClient
  cluster = await startInProcessNodes(1, { heartbeatSeconds: 30 });
});
afterAll(async () => {
  clients.closeAll();
  await cluster.stop();
});

/** The CLI in `roomId`, its stdout collected as it comes. */
function chat(roomId: number, stdin: "pipe" | Uint8Array) {
  const proc = Bun.spawn(["bun", CLI, "--user", String(newUserId()), "--room", String(roomId), "--http", cluster.nodes[0].http], { stdin, stdout: "pipe", stderr: "pipe" });
  const out = { text: "" };
  void (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of proc.stdout) out.text += decoder.decode(chunk, { stream: true });
  })();
  return { proc, out };
}

test("lines piped in while it connects are sent to the room, and the end of its input logs it out", async () => {
  const roomId = await openRoom(cluster.nodes[0]);
  const viewer = record(await clients.online(cluster.nodes[0], { roomId }));
  const { proc, out } = chat(roomId, new TextEncoder().encode("hello from a pipe\n"));
  const exit = await Promise.race([proc.exited, Bun.sleep(4000).then(() => "still running after 4 s")]);
  if (typeof exit === "string") proc.kill();
  expect({ exit, out: out.text }).toMatchObject({ exit: 0 });
  await waitFor(() => viewer.room.length > 0, 3000, "the piped line in the room");
  expect(viewer.room.map((r) => r.data.content)).toEqual(["hello from a pipe"]);
});

test("control characters in other users' text are never written to the terminal raw", async () => {
  const roomId = await openRoom(cluster.nodes[0]);
  const sender = await clients.online(cluster.nodes[0], { roomId });
  const { proc, out } = chat(roomId, "pipe");
  try {
    await waitFor(() => out.text.includes("type to talk"), 10_000, "the CLI to log in");
    await sender.sendRoom("hi\x1b]0;owned\x07\x1b[2J\rfake line");
    await waitFor(() => out.text.includes("fake line"), 5000, "the message on the CLI's screen");
    expect(out.text).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
    expect(out.text).toContain("hi\uFFFD]0;owned\uFFFD\uFFFD[2J\uFFFDfake line");
  } finally {
    proc.kill();
  }
});
