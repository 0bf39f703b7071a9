// Time that several nodes compare (liveness, heartbeat scores) is Redis's, never a node's own:
// nodes in several regions do not share one clock, and one running ahead would take the others'
// entries for stale.

/** Lua that sets `now` to Redis's clock in ms (TIME); a script starts with it. */
export const LUA_REDIS_NOW_MS = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;
