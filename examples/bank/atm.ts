/**
 * The ATM of the seed's example: it finds the bank (an address it is given,
 * else the name `bank` in the name service, else rpcbind), then withdraws
 * with a typed call: `await bank.withdraw({ account: 'alice', amount: 10n })`.
 */
import { rpcbindLookup } from '../../src/oncrpc/index.js';
import { NameClient } from '../../src/naming/index.js';
import { SwitchboardError } from '../../src/errors.js';
import { BANK_PROG, BANK_V1, BankV1Client, bank_status, type bank_result } from './generated/bank.js';

export interface FindBankOptions {
  /** The bank's address; skips discovery. */
  address?: string;
  /** The name service to ask (default: the usual discovery). */
  nameServer?: string;
  name?: string;
  /** How long to wait for the name to appear (default 5000 ms). */
  waitMs?: number;
}

export async function findBank(options: FindBankOptions = {}): Promise<BankV1Client> {
  if (options.address) return BankV1Client.connect(options.address);
  let names: NameClient | undefined;
  try {
    names = await NameClient.connect({ ...(options.nameServer ? { address: options.nameServer } : {}), clientName: 'atm', timeoutMs: 2000 });
  } catch {
    names = undefined;
  }
  if (names) {
    try {
      const rec = await names.waitFor(options.name ?? 'bank', { timeoutMs: options.waitMs ?? 5000 });
      if (rec.contact.protocol !== 'oncrpc' || rec.contact.program !== BANK_PROG) {
        throw new SwitchboardError('EPROTO', `"${rec.name}" is not a bank (protocol ${rec.contact.protocol}, program ${String(rec.contact.program)})`);
      }
      return await BankV1Client.connect(rec.contact.address);
    } finally {
      await names.close();
    }
  }
  return BankV1Client.connect(await rpcbindLookup(BANK_PROG, BANK_V1, 'tcp'));
}

const statusNames: Record<number, string> = Object.fromEntries(Object.entries(bank_status).map(([k, v]) => [v, k]));

/** Text for a bank answer, amounts in cents shown as units. */
export function describe(r: bank_result): string {
  if (r.status === bank_status.BANK_OK) return `ok, balance ${(Number(r.balance) / 100).toFixed(2)}`;
  return statusNames[r.status] ?? `status ${r.status}`;
}

/** One ATM session: balance, withdraw `amount` cents, balance. */
export async function atmSession(bank: BankV1Client, account: string, amount: bigint, print: (line: string) => void = () => undefined): Promise<bank_result> {
  print(`balance of ${account}: ${describe(await bank.balance(account))}`);
  const r = await bank.withdraw({ account, amount });
  print(`withdraw ${(Number(amount) / 100).toFixed(2)} from ${account}: ${describe(r)}`);
  return r;
}
