// The browser page: dev login, the live-room list, one live room (chat, online count) and private
// messages, over one WebSocket ImClient at a time (connection.ts).
import type { Delivered, ImClient, LoginInfo, PrivateData, RoomData } from "../client/browser";
import { BizCode } from "../protocol/codes";
import { api, type LiveRoom } from "./api";
import { PageConnection } from "./connection";
import { byId, clock, el, guarded, onSubmit } from "./dom";
import { MessageList } from "./message-list";

const ONLINE_POLL_MS = 3000;
const LIST_POLL_MS = 5000;
/** Survives a reload of the tab, not the tab itself. */
const SESSION_KEY = "live-im.session";

interface User {
  userId: number;
  nickName: string;
  jwt: string;
}
interface Room {
  id: number;
  name: string;
  isAnchor: boolean;
}

const ui = {
  me: byId("me"),
  status: byId("status"),
  logout: byId<HTMLButtonElement>("logout"),
  loginView: byId("login-view"),
  loginForm: byId<HTMLFormElement>("login-form"),
  loginUser: byId<HTMLInputElement>("login-user"),
  loginNick: byId<HTMLInputElement>("login-nick"),
  loginError: byId("login-error"),
  lobbyView: byId("lobby-view"),
  roomList: byId("room-list"),
  roomsEmpty: byId("rooms-empty"),
  roomsRefresh: byId<HTMLButtonElement>("rooms-refresh"),
  startForm: byId<HTMLFormElement>("start-form"),
  startName: byId<HTMLInputElement>("start-name"),
  lobbyError: byId("lobby-error"),
  roomView: byId("room-view"),
  roomTitle: byId("room-title"),
  roomOnline: byId("room-online"),
  roomRole: byId("room-role"),
  roomForm: byId<HTMLFormElement>("room-form"),
  roomInput: byId<HTMLInputElement>("room-input"),
  roomClose: byId<HTMLButtonElement>("room-close"),
  roomLeave: byId<HTMLButtonElement>("room-leave"),
  roomError: byId("room-error"),
  privateView: byId("private-view"),
  privateForm: byId<HTMLFormElement>("private-form"),
  privateTo: byId<HTMLInputElement>("private-to"),
  privateInput: byId<HTMLInputElement>("private-input"),
  privateError: byId("private-error"),
};
const roomLines = new MessageList(byId<HTMLOListElement>("room-messages"));
const privateLines = new MessageList(byId<HTMLOListElement>("private-messages"));

let user: User | null = null;
let room: Room | null = null;
let stopPolling = () => {};
const connection = new PageConnection(listen);

function setStatus(state: "online" | "connecting" | "offline", detail = ""): void {
  ui.status.dataset.state = state;
  ui.status.textContent = state;
  ui.status.title = detail;
}

function show(view: "login" | "lobby" | "room"): void {
  ui.loginView.hidden = view !== "login";
  ui.lobbyView.hidden = view !== "lobby";
  ui.roomView.hidden = view !== "room";
  ui.privateView.hidden = view === "login";
  ui.logout.hidden = view === "login";
}

/** Run `fn` now and every `ms` until the next poll() call replaces it. */
function poll(ms: number, fn: () => Promise<void>): void {
  stopPolling();
  const tick = () => void fn().catch((err: unknown) => console.warn("poll failed", err));
  tick();
  const timer = setInterval(tick, ms);
  stopPolling = () => clearInterval(timer);
}

// ---- connection

/** Replace the connection by one that watches `roomId` (or no room). */
async function connect(roomId?: number): Promise<void> {
  setStatus("connecting");
  try {
    await connection.open(user!.jwt, roomId);
  } catch (err) {
    // no client event says so when the first login fails: the status must not stay "connecting"
    setStatus("offline", err instanceof Error ? err.message : String(err));
    throw err;
  }
}

function listen(c: ImClient, isCurrent: () => boolean): void {
  // events of a replaced client are stale: only the current one may touch the page
  const current =
    <T>(fn: (payload: T) => void) =>
    (payload: T) => {
      if (isCurrent()) fn(payload);
    };
  c.on("login", current(onLogin));
  c.on("reconnecting", current((r) => setStatus("connecting", `reconnecting: ${r.reason}`)));
  c.on("closed", current((r) => setStatus("offline", r.reason)));
  c.on("kicked", current(() => privateLines.add("notice", "You signed in somewhere else: this page is disconnected.")));
  c.on("room", current(onRoomMessage));
  c.on("private", current(onPrivateMessage));
  c.on("push", current((d) => privateLines.add("notice", `push ${d.bizCode}: ${JSON.stringify(d.data)}`)));
  c.on("error", current((err) => console.warn("live-im:", err.reason, err.message)));
}

function onLogin(info: LoginInfo): void {
  setStatus("online", `node ${info.nodeId}`);
  // a LOGIN into a room that is not live succeeds outside any room: no roomSeq in the answer
  if (room && info.roomSeq === undefined) roomLines.add("notice", "This room is not live any more.");
  if (info.recovered === false) roomLines.add("notice", "Some messages were missed while reconnecting.");
}

// ---- login

async function logIn(userId: number, nickName: string): Promise<void> {
  if (!Number.isSafeInteger(userId) || userId <= 0) throw new Error("the user id must be a positive integer");
  const { token } = await api.devLogin(userId, nickName || undefined);
  user = { userId, nickName, jwt: token };
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(user));
  await begin();
}

async function begin(): Promise<void> {
  const me = user!;
  ui.me.textContent = me.nickName ? `${me.nickName} (${me.userId})` : `user ${me.userId}`;
  privateLines.clear();
  enterLobby();
  try {
    await connect();
  } catch (err) {
    // a refused JWT (expired, or another secret) or no node to reach: back to the login form
    await logOut();
    throw err;
  }
}

async function logOut(): Promise<void> {
  stopPolling();
  user = null;
  room = null;
  sessionStorage.removeItem(SESSION_KEY);
  ui.me.textContent = "";
  setStatus("offline");
  show("login");
  await connection.close();
}

// ---- lobby

function enterLobby(): void {
  room = null;
  show("lobby");
  poll(LIST_POLL_MS, refreshRooms);
}

async function refreshRooms(): Promise<void> {
  renderRooms(await api.liveRooms());
}

function renderRooms(rooms: LiveRoom[]): void {
  ui.roomsEmpty.hidden = rooms.length > 0;
  ui.roomList.replaceChildren(
    ...rooms.map((r) => {
      const enter = el("button", null, r.anchorId === user?.userId ? "Open" : "Enter");
      enter.addEventListener("click", () => void guarded(ui.lobbyError, () => enterRoom(r.id)));
      const name = el("span", "name", r.roomName || `Room ${r.id}`, el("span", "who", `#${r.id} · anchor ${r.anchorId} · ${r.watchNum} watching`));
      return el("li", null, name, enter);
    }),
  );
}

async function goLive(): Promise<void> {
  const roomId = await api.startRoom(user!.jwt, ui.startName.value.trim() || undefined);
  ui.startName.value = "";
  await enterRoom(roomId);
}

// ---- room

async function enterRoom(roomId: number): Promise<void> {
  const info = await api.room(user!.jwt, roomId);
  if (info.roomId === -1) throw new Error(`room ${roomId} is not live`);
  room = { id: roomId, name: info.roomName || `Room ${roomId}`, isAnchor: info.isAnchor };
  roomLines.clear();
  ui.roomTitle.textContent = room.name;
  ui.roomRole.textContent = room.isAnchor ? "You are the anchor of this room." : `Anchor: user ${info.anchorId}`;
  ui.roomClose.hidden = !room.isAnchor;
  ui.roomInput.disabled = false;
  ui.roomError.textContent = "";
  show("room");
  poll(ONLINE_POLL_MS, refreshOnline);
  await guarded(ui.roomError, () => connect(roomId));
}

async function refreshOnline(): Promise<void> {
  if (!room) return;
  const count = await api.onlineCount(room.id);
  ui.roomOnline.textContent = `${count} online`;
}

function onRoomMessage(d: Delivered<RoomData>): void {
  if (!room || d.data.roomId !== room.id) return;
  if (d.bizCode === BizCode.ROOM_CLOSED) {
    roomLines.add("notice", "The anchor ended this live.");
    ui.roomInput.disabled = true;
    ui.roomClose.hidden = true;
    stopPolling();
    return;
  }
  const who = d.data.senderName ?? `user ${d.data.userId}`;
  if (d.bizCode === BizCode.ROOM_CHAT) roomLines.add("theirs", String(d.data.content ?? ""), `${who} · ${clock(d.data.createTime ?? d.ts)}`);
  // userId 0: the shop's backend (POST /api/living/:roomId/push), a gift or an order banner; its `text`, if any, is shown
  else if (d.data.userId === 0) roomLines.add("notice", typeof d.data.text === "string" ? d.data.text : `Shop notice ${d.bizCode}`);
  else roomLines.add("notice", `${who}: room message ${d.bizCode}`);
}

async function sendRoom(): Promise<void> {
  const content = ui.roomInput.value.trim();
  if (!content) return;
  ui.roomInput.value = "";
  roomLines.addPending(content, `me · ${clock(Date.now())}`, connection.current.sendRoom(content));
}

async function leaveRoom(): Promise<void> {
  enterLobby();
  await connect();
}

async function endLive(): Promise<void> {
  await api.closeRoom(user!.jwt, room!.id);
  await guarded(ui.lobbyError, leaveRoom);
}

// ---- private messages

function onPrivateMessage(d: Delivered<PrivateData>): void {
  privateLines.add("theirs", d.data.content, `from user ${d.data.userId} · ${clock(d.data.createTime ?? d.ts)}`);
  // replying is the likely next step
  if (!ui.privateTo.value) ui.privateTo.value = String(d.data.userId);
}

async function sendPrivate(): Promise<void> {
  const to = Number(ui.privateTo.value);
  const content = ui.privateInput.value.trim();
  if (!Number.isSafeInteger(to) || to <= 0) throw new Error("the recipient must be a user id");
  if (!content) return;
  ui.privateInput.value = "";
  privateLines.addPending(content, `to user ${to} · ${clock(Date.now())}`, connection.current.sendPrivate(to, content));
}

// ---- wiring

onSubmit(ui.loginForm, ui.loginError, () => logIn(Number(ui.loginUser.value), ui.loginNick.value.trim()));
onSubmit(ui.startForm, ui.lobbyError, goLive);
onSubmit(ui.roomForm, ui.roomError, sendRoom);
onSubmit(ui.privateForm, ui.privateError, sendPrivate);
ui.roomsRefresh.addEventListener("click", () => void guarded(ui.lobbyError, refreshRooms));
ui.roomLeave.addEventListener("click", () => void guarded(ui.lobbyError, leaveRoom));
ui.roomClose.addEventListener("click", () => void guarded(ui.roomError, endLive));
ui.logout.addEventListener("click", () => void logOut());

function resume(): void {
  const saved = sessionStorage.getItem(SESSION_KEY);
  if (!saved) return show("login");
  user = JSON.parse(saved) as User;
  void guarded(ui.loginError, begin);
}

resume();
