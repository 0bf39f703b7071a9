// Starts one node from the environment; SIGTERM/SIGINT stop it gracefully.
import { loadConfig } from "./config";
import { createLogger } from "./log";
import { startNode } from "./node";

const config = loadConfig();
const log = createLogger(config.nodeId, config.logLevel);

try {
  const node = await startNode(config, log);
  const shutdown = (signal: string) => {
    log.info({ signal }, "stopping");
    const force = setTimeout(() => {
      log.error("graceful stop took too long; exiting");
      process.exit(1);
    }, 10_000);
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
