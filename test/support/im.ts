// Old import path, kept only for test/messaging.test.ts until it imports http-api.ts and clients.ts
// instead; nothing else may import it.
export { api, APP_ID, connectTestRedis as redis, imToken, newUserId, openRoom } from "./http-api";
export { Clients } from "./clients";
