// BullMQ queues and workers. Connections come from redis/connections.ts.
import { Queue, Worker, type Job, type Processor } from "bullmq";
import type Redis from "ioredis";
import type { Logger } from "../log";
import type { AckCheckJob, BizBatchJob, PresenceEventsJob } from "./jobs";
import { QueueName } from "./names";

export interface Queues {
  biz: Queue<BizBatchJob>;
  online: Queue<PresenceEventsJob>;
  offline: Queue<PresenceEventsJob>;
  ack: Queue<AckCheckJob>;
  /** The four queues (Bull Board, queue-depth metrics). */
  all(): Queue[];
  /** Close the queues' use of the connection; jobs stay in Redis. Never rejects. */
  close(): Promise<void>;
}

/** A job that failed for good is kept this long for an operator to retry (Bull Board), no longer. */
export const FAILED_JOB_AGE_S = 7 * 24 * 3600;

/**
 * A job holds messages that were already ACKed to their senders, so a failing one is retried for
 * long enough to outlast an outage of Redis or MySQL: 12 tries, 250 ms doubling each time, less up
 * to half of each wait (jitter): 4 to 8.5 minutes in all. One that still fails is kept by age only:
 * a count bound would drop the oldest of them once a longer outage failed more. Completed jobs are
 * trimmed to the last 1,000. A message no handler can route is dropped alone
 * (messaging/biz/processor.ts), not failing its job.
 */
const defaultJobOptions = {
  removeOnComplete: { count: 1000 },
  removeOnFail: { age: FAILED_JOB_AGE_S },
  attempts: 12,
  backoff: { type: "exponential", delay: 250, jitter: 0.5 },
};

export function createQueues(connection: Redis, prefix: string, log: Logger): Queues {
  const make = <T>(name: QueueName) => {
    const queue = new Queue<T>(name, { connection, prefix, defaultJobOptions });
    // without a listener BullMQ prints its errors to the console, outside the JSON log
    queue.on("error", (err) => log.error({ err, queue: name }, "queue error"));
    return queue;
  };
  const q = {
    biz: make<BizBatchJob>(QueueName.biz),
    online: make<PresenceEventsJob>(QueueName.online),
    offline: make<PresenceEventsJob>(QueueName.offline),
    ack: make<AckCheckJob>(QueueName.ack),
  };
  return {
    ...q,
    all: () => Object.values(q) as Queue[],
    async close() {
      await Promise.allSettled(Object.values(q).map((x) => x.close()));
    },
  };
}

/**
 * A job in the hands of a node that died (or froze) is taken over by another node's worker once its
 * lock lapses (JOB_LOCK_MS without renewal; renewed every half of it) and a stalled check, run every
 * STALLED_CHECK_MS, has seen it so twice: within about 20 s, not BullMQ's 30 s + 30 s, since the
 * job holds messages already accepted. A stall is no failure of the job: up to MAX_STALLS of them,
 * where BullMQ's default of 1 would fail for good, unprocessed, a job whose nodes died twice in a
 * row (a crash loop, an OOM killer, a rolling deploy ending in SIGKILL).
 */
const JOB_LOCK_MS = 10_000;
const STALLED_CHECK_MS = 5_000;
const MAX_STALLS = defaultJobOptions.attempts;
/** How long a node's stop waits for its workers to close (see Workers.close): well within main.ts's 10 s. */
const WORKERS_CLOSE_MAX_MS = 5_000;

export interface Processors {
  biz: Processor<BizBatchJob>;
  online: Processor<PresenceEventsJob>;
  offline: Processor<PresenceEventsJob>;
  ack: Processor<AckCheckJob>;
}

export interface Workers {
  /**
   * Finish the jobs in hand, take no new ones. Resolves within WORKERS_CLOSE_MAX_MS: a BullMQ
   * worker whose connection is reconnecting (Redis just went or came back) may never close
   * (taskforcesh/bullmq#4656); its jobs in hand are then left to their lock, which lapses, and
   * another node's worker takes them over.
   */
  close(): Promise<void>;
  /** True while every queue's worker runs (/readyz). */
  running(): boolean;
}

/** Called once a job's completion is stored (metrics; an im-biz job's record log). */
export type JobObserver = (queue: QueueName, job: Job) => void;

export function startWorkers(
  connection: Redis,
  prefix: string,
  processors: Processors,
  concurrency: number,
  log: Logger,
  observe: JobObserver,
): Workers {
  const names: Record<keyof Processors, QueueName> = {
    biz: QueueName.biz,
    online: QueueName.online,
    offline: QueueName.offline,
    ack: QueueName.ack,
  };
  const workers = (Object.keys(names) as Array<keyof Processors>).map((key) => {
    const w = new Worker(names[key], processors[key] as Processor, {
      connection,
      prefix,
      concurrency,
      lockDuration: JOB_LOCK_MS,
      stalledInterval: STALLED_CHECK_MS,
      maxStalledCount: MAX_STALLS,
    });
    w.on("failed", (job: Job | undefined, err: Error) => {
      // BullMQ does not retry an UnrecoverableError (a job stalled more than MAX_STALLS times among them)
      const final = job !== undefined && (err.name === "UnrecoverableError" || job.attemptsMade >= (job.opts.attempts ?? 1));
      // a job given up on stays in the queue's failed set (removeOnFail), where an operator can retry it
      log.error({ err, queue: names[key], jobId: job?.id, attemptsMade: job?.attemptsMade }, final ? "job failed for good" : "job failed; retried");
    });
    w.on("error", (err) => log.error({ err, queue: names[key] }, "worker error"));
    w.on("completed", (job: Job) => observe(names[key], job));
    return w;
  });
  return {
    async close() {
      const open = new Set(workers.map((w) => w.name));
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, WORKERS_CLOSE_MAX_MS)));
      const closing = workers.map((w) => w.close().finally(() => open.delete(w.name)));
      await Promise.race([Promise.allSettled(closing), late]);
      clearTimeout(timer);
      if (open.size > 0) log.warn({ waitedMs: WORKERS_CLOSE_MAX_MS, queues: [...open] }, "workers did not close in time; their jobs in hand go to other nodes once their locks lapse");
    },
    running: () => workers.every((w) => w.isRunning()),
  };
}
