/** `switchboard shm ls|rm`: the shared-memory objects Switchboard left in /dev/shm. */
import type { Command } from 'commander';
import { SwitchboardError } from '../../errors.js';

function human(bytes: number): string {
  if (bytes >= 1 << 30) return `${(bytes / (1 << 30)).toFixed(1)}G`;
  if (bytes >= 1 << 20) return `${(bytes / (1 << 20)).toFixed(1)}M`;
  if (bytes >= 1 << 10) return `${(bytes / (1 << 10)).toFixed(1)}K`;
  return `${bytes}`;
}

export function register(program: Command): void {
  const shm = program
    .command('shm')
    .description('list or remove the shared-memory regions and semaphores Switchboard created (/dev/shm/sb.*, /dev/shm/sem.sb.*)');

  shm
    .command('ls')
    .description('list Switchboard regions and named semaphores, with attached processes; "stale" = no live process attached')
    .option('--json', 'print JSON')
    .option('--stale', 'list only stale regions')
    .action(async (opts: { json?: boolean; stale?: boolean }) => {
      const { listRegions } = await import('../../shm/index.js');
      let entries = listRegions();
      if (opts.stale) entries = entries.filter((e) => e.stale === true);
      if (opts.json) {
        process.stdout.write(JSON.stringify(entries) + '\n');
        return;
      }
      if (entries.length === 0) {
        process.stdout.write('no Switchboard shared-memory objects\n');
        return;
      }
      process.stdout.write('KIND       NAME                             SIZE    CREATOR  ATTACHED                 STATE\n');
      for (const e of entries) {
        const attached = e.attached ? e.attached.map((a) => `${a.pid}${a.count > 1 ? `x${a.count}` : ''}${a.alive ? '' : '(dead)'}`).join(',') || '-' : '-';
        const state = e.note ?? (e.stale ? 'stale' : e.kind === 'semaphore' ? '' : 'in use');
        process.stdout.write(
          `${e.kind.padEnd(10)} ${e.name.padEnd(32)} ${human(e.size ?? e.bytes).padStart(6)}  ${String(e.creatorPid ?? '-').padStart(7)}  ${attached.padEnd(24)} ${state}\n`,
        );
      }
    });

  shm
    .command('rm')
    .description('remove Switchboard regions/semaphores by name, or every stale region (mappings in use stay valid; only the names go)')
    .argument('[names...]', 'names as shown by "switchboard shm ls"')
    .option('--stale', 'remove every region no live process is attached to')
    .option('--all', 'remove every Switchboard region and semaphore')
    .option('-n, --dry-run', 'only print what would be removed')
    .action(async (names: string[], opts: { stale?: boolean; all?: boolean; dryRun?: boolean }) => {
      const { listRegions, removeRegions } = await import('../../shm/index.js');
      if (names.length === 0 && !opts.stale && !opts.all) throw new SwitchboardError('EINVAL', 'give names, --stale or --all');
      if (names.length > 0 && (opts.stale || opts.all)) throw new SwitchboardError('EINVAL', 'give either names or --stale/--all');
      let removed;
      if (opts.dryRun) {
        const all = listRegions();
        removed = opts.all ? all : opts.stale ? all.filter((e) => e.kind === 'region' && e.stale === true) : all.filter((e) => names.includes(e.name));
      } else {
        removed = removeRegions(opts.all ? { all: true } : opts.stale ? { stale: true } : { names });
      }
      for (const e of removed) process.stdout.write(`${opts.dryRun ? 'would remove' : 'removed'} ${e.kind} ${e.name}\n`);
    });
}
