// The Bun / Node entry of the client: ImClient with both transports. Browsers use browser.ts.
import { connectTcp } from "./transport-tcp";
import { connectWs } from "./transport-ws";
import type { Connector, TransportKind } from "./transport";

export * from "./browser";
export { connectTcp } from "./transport-tcp";

/** Pass as `connectors` to let an ImClient use TCP as well as WebSocket. */
export const nativeConnectors: Record<TransportKind, Connector> = { tcp: connectTcp, ws: connectWs };
