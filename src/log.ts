// Structured JSON logs (pino). Every line carries the nodeId; a message's lines carry its msgId.
import pino from "pino";

export type Logger = pino.Logger;

export function createLogger(nodeId: string, level: string): Logger {
  return pino({ level, base: { nodeId }, timestamp: pino.stdTimeFunctions.epochTime });
}
