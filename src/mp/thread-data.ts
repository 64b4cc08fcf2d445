/** What a rank thread is given at start (workerData.switchboardMp). */
import type { MessagePort } from 'node:worker_threads';
import type { CommunicatorOptions } from './communicator.js';
import type { ThreadRing } from './thread-rings.js';

export const THREAD_KEY = 'switchboardMp';

export interface ThreadRankData {
  job: string;
  rank: number;
  size: number;
  ports: (MessagePort | null)[];
  /** Shared-memory ring pairs to every other rank (absent: messages go over the ports). */
  rings?: (ThreadRing | null)[] | undefined;
  /** With rings: the job's count of attached ranks (thread-rings.ts attachAndWait). */
  attached?: SharedArrayBuffer | undefined;
  /** URL of the module to run. */
  module: string;
  /** Export to call as fn(comm, args); absent: the module is an app that calls init() itself. */
  export?: string | undefined;
  args?: unknown;
  options: CommunicatorOptions;
}

/** Messages a rank thread posts to its parent. */
export type ThreadReport =
  | { switchboardMp: 'done'; result: unknown }
  | { switchboardMp: 'error'; error: { name: string; message: string; code?: string | undefined; stack?: string | undefined; lostRank?: number | undefined } };
