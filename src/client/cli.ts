// A terminal chat client on ImClient, for trying a node by hand:
//   bun run chat -- --user 10042 --room 7 [--http http://127.0.0.1:8080] [--tcp]
// It gets a user JWT from POST /api/dev/login (dev nodes only), connects, prints room and private
// messages, and sends each stdin line to the room; "/to 10043 text" sends a private message,
// "/quit" (or Ctrl-C) logs out.
import readline from "node:readline";
import { parseArgs } from "node:util";
import { ImClient, nativeConnectors, type ImClientError } from "./index";

const USAGE = "usage: bun run chat -- --user <userId> [--room <roomId>] [--http <base>] [--tcp]";

function options(): { userId: number; roomId?: number; http: string; tcp: boolean } {
  const { values } = parseArgs({
    options: { user: { type: "string" }, room: { type: "string" }, http: { type: "string" }, tcp: { type: "boolean" } },
  });
  const userId = Number(values.user);
  const roomId = values.room === undefined ? undefined : Number(values.room);
  if (!Number.isSafeInteger(userId) || userId <= 0 || (roomId !== undefined && (!Number.isSafeInteger(roomId) || roomId <= 0))) {
    console.error(USAGE);
    process.exit(2);
  }
  return { userId, roomId, http: values.http ?? "http://127.0.0.1:8080", tcp: values.tcp ?? false };
}

async function devJwt(http: string, userId: number): Promise<string> {
  const res = await fetch(`${http}/api/dev/login`, { method: "POST", body: JSON.stringify({ userId }), signal: AbortSignal.timeout(10_000) });
  const json = (await res.json().catch(() => null)) as { token?: string } | null;
  if (!res.ok || typeof json?.token !== "string") throw new Error(`POST ${http}/api/dev/login: HTTP ${res.status} (is dev login on?)`);
  return json.token;
}

/**
 * Control characters other users put in their text (escape sequences could retitle the terminal,
 * clear it or forge lines) are shown as U+FFFD, never written raw.
 */
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

function say(line: string): void {
  process.stdout.write(`${line.replace(CONTROL, "\uFFFD")}\n`);
}

function report(what: string) {
  return (err: ImClientError) => console.error(`! ${what}: ${err.reason}: ${err.message}`);
}

async function main(): Promise<void> {
  const opts = options();
  const client = await ImClient.fromConfig(opts.http, await devJwt(opts.http, opts.userId), {
    userId: opts.userId,
    roomId: opts.roomId,
    transport: opts.tcp ? "tcp" : "ws",
    connectors: nativeConnectors,
  });
  client.on("login", (l) => {
    say(`* logged in as ${l.userId} on ${l.nodeId}${l.reconnected ? " (reconnected)" : ""}`);
    if (opts.roomId !== undefined && l.roomSeq === undefined) say(`* room ${opts.roomId} is not live: no room messages will come`);
  });
  client.on("room", ({ bizCode, data }) => {
    // userId 0: the server's own (a room push of the shop's backend, the room-closed notice)
    if (data.userId === 0) return say(`[room ${data.roomId} #${data.seq}] notice ${bizCode}: ${JSON.stringify(data)}`);
    say(`[room ${data.roomId} #${data.seq}] ${data.senderName ?? data.userId}: ${data.content ?? JSON.stringify(data)}`);
  });
  client.on("private", ({ data }) => say(`[private] ${data.userId}: ${data.content}`));
  client.on("push", (p) => say(`[push ${p.bizCode}] ${JSON.stringify(p.data)}`));
  client.on("kicked", ({ message }) => say(`* kicked: ${message}`));
  client.on("reconnecting", (r) => say(`* connection lost (${r.reason}); reconnect ${r.attempt} in ${r.delayMs} ms`));
  client.on("error", report("error"));
  client.on("closed", ({ reason }) => {
    say(`* closed: ${reason}`);
    process.exit(reason === "logged out" ? 0 : 1);
  });
  await client.connect();
  // read stdin only now, with its listeners in place: lines (and an EOF) that came while connecting
  // are then handled, not lost
  const lines = readline.createInterface({ input: process.stdin });
  say(opts.roomId === undefined ? '* "/to <userId> text" sends a private message, "/quit" leaves' : '* type to talk in the room; "/to <userId> text" is private, "/quit" leaves');

  const quit = () => void client.logout();
  process.on("SIGINT", quit);
  lines.on("close", quit);
  lines.on("line", (line) => {
    const text = line.trim();
    if (text === "") return;
    if (text === "/quit") return quit();
    const to = /^\/to\s+(\d+)\s+(.+)$/.exec(text);
    if (to) return void client.sendPrivate(Number(to[1]), to[2]).catch(report("not sent"));
    if (text.startsWith("/")) return say('* commands: "/to <userId> text", "/quit"');
    if (opts.roomId === undefined) return say("* no --room given: use /to <userId> text");
    void client.sendRoom(text).catch(report("not sent"));
  });
}

main().catch((err: unknown) => {
  console.error(`! ${(err as Error).message}`);
  process.exit(1);
});
