// The browser entry of the client: ImClient over WebSocket only. Nothing here may import node:* or
// Bun APIs (test/client.test.ts bundles it for the browser and checks).
export { ImClient, type ClientState, type FromConfigOptions } from "./im-client";
export type { ImClientOptions } from "./options";
export type { ImClientEvents, LoginInfo, Delivered, RoomData, PrivateData } from "./events";
export type { SendResult } from "./pending-sends";
export type { Endpoint, Connector, TransportKind, WsForm } from "./transport";
export { ImClientError } from "./errors";
export { connectWs } from "./transport-ws";
