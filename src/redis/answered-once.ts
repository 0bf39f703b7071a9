// ioredis sends a command again after a reconnect when the connection dropped before its answer
// came (autoResendUnfulfilledCommands): Redis may have run it already, and then runs it twice.
// Most of our scripts answer a second run as they did the first. The ones that move state (an
// ACK's settle, a resend's advance) would not, and their caller would act on the wrong answer: an
// ACKed kept message taken for a repeat (its row never deleted), a resend never made. Such a
// script is wrapped here: it takes a key of its own call as its last key, keeps there for a while
// an answer a second run would get wrong, and a second run of the call answers that.
import { randomBytes } from "node:crypto";

/** How long a call's answer is kept: longer than ioredis holds a command for a resend (3 reconnect attempts). */
const ANSWER_TTL_S = 60;

const processTag = randomBytes(6).toString("base64url");
let calls = 0;

/** An id for one call of a wrapped script, unique across processes; its key is Keys.scriptCall(id). */
export function newCallId(): string {
  calls = (calls + 1) % Number.MAX_SAFE_INTEGER;
  return `${processTag}.${calls.toString(36)}`;
}

/**
 * `lua`, run at most once per call key (the last of KEYS, which the script itself no longer sees).
 * `mattersTwice`: a Lua function of the answer, true where a second run would answer otherwise in
 * a way the caller must not see; only such answers are kept (most are not: keeping one costs Redis
 * about as much as the script itself). The answer must be JSON-able.
 */
export function answeredOnce(lua: string, mattersTwice: string): string {
  return `local call = table.remove(KEYS)
local answered = redis.call('GET', call)
if answered then return cjson.decode(answered) end
local answer = (function()
${lua}
end)()
if (${mattersTwice})(answer) then redis.call('SET', call, cjson.encode(answer), 'EX', ${ANSWER_TTL_S}) end
return answer`;
}
