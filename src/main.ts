// Starts one node from the environment; SIGTERM/SIGINT stop it gracefully.
import { loadConfig } from "./config";
import { createLogger } from "./log";
import { startNode } from "./node";

/** How long a graceful stop may take after the drain wait before the process exits anyway. */
const STOP_AFTER_DRAIN_MS = 10_000;

const config = loadConfig();
const log = createLogger(config.nodeId, config.logLevel);

try {
  const node = await startNode(config, log);
  const shutdown = (signal: string) => {
    log.info({ signal }, "stopping");
    // the drain wait and spread (DRAIN_MS, DRAIN_SPREAD_MS) are deliberate; what follows gets 10 s before we give up
    const force = setTimeout(() => {
      log.error("graceful stop took too long; exiting");
      process.exit(1);
    }, config.gateway.drainMs + config.gateway.drainSpreadMs + STOP_AFTER_DRAIN_MS);
    node.stop().then(
      () => {
        clearTimeout(force);
        process.exit(0);
      },
      (err) => {
        log.error({ err }, "graceful stop failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
} catch (err) {
  log.fatal({ err }, "node failed to start");
  process.exit(1);
}
