/**
 * init(): the rank's world communicator, like MPI_Init. A rank thread started
 * by runThreads() (or `switchboard run --threads`) gets its ring mesh (or
 * MessagePort mesh);
 * a process started by `switchboard run` joins its job through the name
 * service; anything else is a world of one rank.
 */
import { isMainThread, workerData } from 'node:worker_threads';
import { Communicator, DEFAULT_MAX_MESSAGE, type CommunicatorOptions } from './communicator.js';
import type { Link } from './link.js';
import { Engine } from './engine.js';
import { PortLink, SelfLink } from './port-link.js';
import { THREAD_KEY, type ThreadRankData } from './thread-data.js';
import { worldOnce } from './world.js';

/** How long a rank thread waits for the others to attach their rings. */
const ATTACH_TIMEOUT_MS = 60_000;

export function init(options: CommunicatorOptions = {}): Promise<Communicator> {
  return worldOnce(async () => {
    const td = isMainThread ? undefined : ((workerData as Record<string, ThreadRankData> | null)?.[THREAD_KEY] as ThreadRankData | undefined);
    if (td !== undefined) {
      const o = { ...td.options, ...options };
      let link: Link;
      if (td.rings !== undefined && td.attached !== undefined) {
        const { ThreadRingLink, attachAndWait } = await import('./thread-rings.js');
        link = new ThreadRingLink(td.rank, td.rings, td.ports, o.maxMessageSize ?? DEFAULT_MAX_MESSAGE);
        await attachAndWait(td.attached, td.size, ATTACH_TIMEOUT_MS);
      } else {
        link = new PortLink(td.rank, td.ports);
      }
      return new Communicator(new Engine(link), range(td.size), 0, o);
    }
    if (process.env['SWITCHBOARD_MP_JOB'] !== undefined) {
      const { joinJobFromEnv } = await import('./join.js');
      return joinJobFromEnv(options);
    }
    return new Communicator(new Engine(new SelfLink()), [0], 0, options);
  });
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
