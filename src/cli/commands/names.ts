/** `switchboard names register|lookup|list|watch|rm`: talk to the name server. */
import type { Command } from 'commander';
import { ArgumentError } from '../../errors.js';
import type { ContactInfo, NameClient, NameRecord } from '../../naming/index.js';

interface Global {
  server?: string;
  secret?: string;
  json?: boolean;
}

async function client(g: Global): Promise<NameClient> {
  const { NameClient } = await import('../../naming/index.js');
  const secret = g.secret ?? process.env['SWITCHBOARD_NS_SECRET'];
  return NameClient.connect({
    clientName: 'switchboard-cli',
    ...(g.server !== undefined ? { address: g.server } : {}),
    ...(secret !== undefined ? { secret } : {}),
  });
}

function ago(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  return `${Math.round(s / 3600)}h`;
}

function owner(r: NameRecord): string {
  return `${r.owner.client}${r.owner.pid !== undefined ? `[${r.owner.pid}]` : ''}`;
}

function proto(c: ContactInfo): string {
  return `${c.protocol}${c.program !== undefined ? ` prog ${c.program}` : ''}${c.version !== undefined ? ` v${c.version}` : ''}`;
}

function lease(r: NameRecord): string {
  return r.leaseExpiresAt === undefined ? 'live' : `${ago(r.leaseExpiresAt - Date.now())} left`;
}

function describe(r: NameRecord): string {
  const md = r.contact.metadata && Object.keys(r.contact.metadata).length > 0 ? `\n  metadata: ${JSON.stringify(r.contact.metadata)}` : '';
  return `${r.name}\n  address:  ${r.contact.address}\n  protocol: ${proto(r.contact)}\n  owner:    ${owner(r)}${r.owner.uid !== undefined ? ` uid ${r.owner.uid}` : ''}\n  since:    ${new Date(r.since).toISOString()} (${ago(Date.now() - r.since)} ago)\n  lease:    ${lease(r)}${md}`;
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ')).join('\n');
}

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
}

export function register(program: Command): void {
  const names = program
    .command('names')
    .description('register, look up, list, watch and remove names in the name server')
    .option('--server <address>', 'name server address (default $SWITCHBOARD_NAMESERVER, the well-known Unix socket, tcp://127.0.0.1:7117)')
    .option('--secret <secret>', 'shared secret for a TCP name server (also $SWITCHBOARD_NS_SECRET)')
    .option('--json', 'print JSON');
  const g = (): Global => names.opts<Global>();

  names
    .command('register')
    .description('register NAME with contact ADDRESS and hold it until interrupted (the lease ends when this process does)')
    .argument('<name>', 'the name, e.g. printer/floor2')
    .argument('<address>', 'contact address, e.g. tcp://127.0.0.1:5000 or unix:///run/x.sock')
    .option('-p, --protocol <protocol>', 'protocol spoken there', 'switchboard-rpc')
    .option('--program <n>', 'ONC RPC program number')
    .option('--prog-version <n>', 'program or protocol version')
    .option('-m, --meta <key=value>', 'metadata (repeatable)', collect)
    .option('--ttl <ms>', 'lease TTL, renewed while this process runs')
    .option('--replace <token>', 'take the name over from the holder of this token')
    .option('--token <token>', 'claim the name back with its own earlier token')
    .action(async (name: string, address: string, o: { protocol: string; program?: string; progVersion?: string; meta?: string[]; ttl?: string; replace?: string; token?: string }) => {
      const contact: ContactInfo = { address, protocol: o.protocol };
      const num = (v: string, what: string): number => {
        if (!/^\d+$/.test(v)) throw new ArgumentError(`${what} must be a number, got "${v}"`);
        return Number(v);
      };
      if (o.program !== undefined) contact.program = num(o.program, '--program');
      if (o.progVersion !== undefined) contact.version = num(o.progVersion, '--prog-version');
      if (o.meta !== undefined) {
        contact.metadata = {};
        for (const kv of o.meta) {
          const i = kv.indexOf('=');
          if (i <= 0) throw new ArgumentError(`--meta must be key=value, got "${kv}"`);
          contact.metadata[kv.slice(0, i)] = kv.slice(i + 1);
        }
      }
      const c = await client(g());
      try {
        const reg = await c.register(name, contact, {
          ...(o.ttl !== undefined ? { ttlMs: num(o.ttl, '--ttl') } : {}),
          ...(o.replace !== undefined ? { replace: o.replace } : {}),
          ...(o.token !== undefined ? { token: o.token } : {}),
        });
        c.on('lost', (n: string, err: Error) => process.stderr.write(`switchboard: lost "${n}": ${err.message}\n`));
        if (g().json) process.stdout.write(`${JSON.stringify({ name: reg.name, token: reg.token, contact })}\n`);
        else process.stdout.write(`registered ${reg.name} -> ${address} (${proto(contact)})\nowner token: ${reg.token}\nholding the name until interrupted (Ctrl-C)\n`);
        await untilSignal();
        await c.unregister(name).catch(() => undefined);
      } finally {
        await c.close();
      }
    });

  names
    .command('lookup')
    .description('print the contact information registered for NAME')
    .argument('<name>')
    .option('-w, --wait <ms>', 'wait up to this long for someone to register it')
    .action(async (name: string, o: { wait?: string }) => {
      const c = await client(g());
      try {
        const r = o.wait !== undefined ? await c.waitFor(name, { timeoutMs: Number(o.wait) }) : await c.lookup(name);
        process.stdout.write(g().json ? `${JSON.stringify(r)}\n` : `${describe(r)}\n`);
      } finally {
        await c.close();
      }
    });

  names
    .command('list')
    .description('list registered names, optionally only those starting with PREFIX')
    .argument('[prefix]', 'name prefix', '')
    .action(async (prefix: string) => {
      const c = await client(g());
      try {
        const recs = await c.list(prefix);
        if (g().json) {
          process.stdout.write(`${JSON.stringify(recs)}\n`);
          return;
        }
        if (recs.length === 0) {
          process.stdout.write(prefix ? `no names start with "${prefix}"\n` : 'no names registered\n');
          return;
        }
        const rows = [['NAME', 'ADDRESS', 'PROTOCOL', 'OWNER', 'SINCE', 'LEASE']];
        for (const r of recs) rows.push([r.name, r.contact.address, proto(r.contact), owner(r), `${ago(Date.now() - r.since)} ago`, lease(r)]);
        process.stdout.write(`${table(rows)}\n`);
      } finally {
        await c.close();
      }
    });

  names
    .command('watch')
    .description('print changes to NAME (or to every name starting with it, with --prefix) until interrupted')
    .argument('<name>')
    .option('--prefix', 'watch every name starting with NAME')
    .action(async (name: string, o: { prefix?: boolean }) => {
      const c = await client(g());
      const ac = new AbortController();
      const stop = (): void => ac.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      try {
        const w = c.watch(name, { prefix: o.prefix === true, signal: ac.signal });
        await w.ready;
        process.stderr.write(`watching ${o.prefix ? `names starting with "${name}"` : `"${name}"`} (Ctrl-C to stop)\n`);
        for await (const ev of w) {
          if (g().json) process.stdout.write(`${JSON.stringify({ at: Date.now(), ...ev })}\n`);
          else process.stdout.write(`${new Date().toISOString()} ${ev.type.padEnd(10)} ${ev.record.name} -> ${ev.record.contact.address} (${owner(ev.record)})\n`);
        }
      } finally {
        await c.close();
      }
    });

  names
    .command('rm')
    .description('remove NAME (needs its owner token)')
    .argument('<name>')
    .option('-t, --token <token>', 'the owner token printed by register')
    .action(async (name: string, o: { token?: string }) => {
      const c = await client(g());
      try {
        await c.unregister(name, o.token);
        process.stdout.write(g().json ? `${JSON.stringify({ removed: name })}\n` : `removed ${name}\n`);
      } finally {
        await c.close();
      }
    });
}
