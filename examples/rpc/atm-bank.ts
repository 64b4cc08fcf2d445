/**
 * The seed's ATM and bank (12.2.1) with Switchboard RPC: the bank runs in its
 * own process and exposes a `Bank`; the ATM calls it as if it were local.
 *
 *   npx tsx examples/rpc/atm-bank.ts            # starts the bank process, runs the ATM
 *   npx tsx examples/rpc/atm-bank.ts bank ADDR  # just the bank, on ADDR
 *
 * With a name service running (switchboard ns), the bank also registers as
 * "bank" and ATMs can `connect<Bank>('bank')`.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { close, connect, expose, withOptions } from '../../src/rpc/index.js';
import { createBank, type Bank } from './bank.js';

async function bankMain(address: string): Promise<void> {
  await expose(createBank({ alice: 100, bob: 20 }), { on: address });
  process.stdout.write(`bank listening on ${address}\n`);
  process.stdin.resume(); // until the parent goes away
  process.stdin.on('end', () => process.exit(0));
}

async function atmMain(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sb-atm-'));
  const address = `unix://${join(dir, 'bank.sock')}`;
  const bankProcess = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), 'bank', address], { stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    await new Promise((resolve) => bankProcess.stdout?.once('data', resolve));

    const bank = await connect<Bank>(address);
    console.log('alice has', await bank.balance('alice'));

    const receipt = await bank.withdraw('alice', 30);
    console.log(`dispensed ${receipt.amount}, balance ${receipt.balance}, at ${receipt.at.toISOString()}`);

    try {
      await bank.withdraw('bob', 50);
    } catch (err) {
      const e = err as Error & { code?: string };
      console.log(`refused: ${e.name} (${e.code}): ${e.message}`);
    }

    // A callback crosses as a remote reference; aborting the call ends the watch on the bank's side.
    const stop = new AbortController();
    const watching = withOptions(bank, { signal: stop.signal }).watch('alice', (b) => console.log('alice now has', b));
    await bank.deposit('alice', 5);
    await bank.withdraw('alice', 10);
    stop.abort();
    await watching.catch(() => undefined);

    await close(bank);
  } finally {
    bankProcess.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === 'bank') await bankMain(process.argv[3] ?? 'tcp://127.0.0.1:7300');
else await atmMain();
