// Every benchmark is bounded in time and cleans up after itself: a watchdog ends a run that takes
// too long, Ctrl-C ends it early, and in every case the registered cleanups (stopping the nodes it
// started, removing its Redis keys and database) run before the process exits.

const cleanups: Array<() => Promise<void> | void> = [];
let exiting = false;

/** Register a cleanup; they run last-registered first. */
export function onCleanup(fn: () => Promise<void> | void): void {
  cleanups.push(fn);
}

async function finish(code: number): Promise<never> {
  if (exiting) return new Promise<never>(() => {});
  exiting = true;
  // a cleanup that hangs must not keep the run alive past its bound either
  const force = setTimeout(() => process.exit(code || 3), 30_000);
  while (cleanups.length > 0) {
    const fn = cleanups.pop()!;
    try {
      await fn();
    } catch (err) {
      console.error("cleanup failed:", err);
    }
  }
  clearTimeout(force);
  // open client sockets would keep the event loop alive: exit explicitly
  process.exit(code);
}

/** Run a benchmark's main with a hard time limit; a number it returns is the exit code (a check that found problems). */
export function runMain(name: string, maxSeconds: number, main: () => Promise<void | number>): void {
  const watchdog = setTimeout(() => {
    console.error(`\n${name}: time limit of ${maxSeconds} s reached; stopping everything`);
    void finish(2);
  }, maxSeconds * 1000);
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.on(sig, () => {
      console.error(`\n${name}: ${sig}; stopping everything`);
      void finish(130);
    });
  }
  main().then(
    (code) => {
      clearTimeout(watchdog);
      void finish(code ?? 0);
    },
    (err) => {
      clearTimeout(watchdog);
      console.error(`${name} failed:`, err);
      void finish(1);
    },
  );
}
