/** `switchboard services NAME|PORT`: look up the services(5) database. */
import type { Command } from 'commander';
import { ServiceDatabase, systemServices, DEFAULT_SERVICES_FILE } from '../../naming/services.js';
import { SwitchboardError } from '../../errors.js';

export function register(program: Command): void {
  program
    .command('services')
    .description('look up a well-known service by name or port in /etc/services (getservbyname/getservbyport)')
    .argument('<name-or-port>', 'service name or alias (finger) or port number (79)')
    .option('-p, --protocol <proto>', 'protocol: tcp, udp, ...')
    .option('-f, --file <path>', `services file to read instead of ${DEFAULT_SERVICES_FILE}`)
    .option('--json', 'print JSON')
    .action((key: string, opts: { protocol?: string; file?: string; json?: boolean }) => {
      const db = opts.file ? ServiceDatabase.fromFile(opts.file) : systemServices();
      const entries = /^\d+$/.test(key)
        ? db.entries.filter((e) => e.port === Number(key) && (!opts.protocol || e.protocol === opts.protocol))
        : db.entries.filter((e) => (e.name === key || e.aliases.includes(key)) && (!opts.protocol || e.protocol === opts.protocol));
      if (entries.length === 0) throw new SwitchboardError('ENOENT', `no service "${key}"${opts.protocol ? ` for ${opts.protocol}` : ''}`);
      if (opts.json) {
        process.stdout.write(JSON.stringify(entries) + '\n');
        return;
      }
      for (const e of entries) {
        process.stdout.write(`${e.port}/${e.protocol}${/^\d+$/.test(key) ? `\t${e.name}` : ''}${e.aliases.length ? `\t(aliases: ${e.aliases.join(' ')})` : ''}\n`);
      }
    });
}
