/**
 * init(): the rank's world communicator, like MPI_Init. A rank thread started
 * by runThreads() (or `switchboard run --threads`) gets its MessagePort mesh;
 * a process started by `switchboard run` joins its job through the name
 * service; anything else is a world of one rank.
 */
import { isMainThread, workerData } from 'node:worker_threads';
import { Communicator, type CommunicatorOptions } from './communicator.js';
import { Engine } from './engine.js';
import { PortLink, SelfLink } from './port-link.js';
import { THREAD_KEY, type ThreadRankData } from './thread-data.js';
import { worldOnce } from './world.js';

export function init(options: CommunicatorOptions = {}): Promise<Communicator> {
  return worldOnce(async () => {
    const td = isMainThread ? undefined : ((workerData as Record<string, ThreadRankData> | null)?.[THREAD_KEY] as ThreadRankData | undefined);
    if (td !== undefined) {
      const engine = new Engine(new PortLink(td.rank, td.ports));
      return new Communicator(engine, range(td.size), 0, { ...td.options, ...options });
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
