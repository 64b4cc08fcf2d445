/**
 * The bank of the seed's ATM example as an ONC RPC server: balance,
 * withdraw and deposit on accounts held in memory (amounts in cents). It
 * registers itself as `bank` in the name service when one answers, and can
 * also register with the system rpcbind.
 */
import { RpcServer, type AddressLike } from '../../src/oncrpc/index.js';
import { formatAddress, type Address } from '../../src/transport/index.js';
import { NameClient } from '../../src/naming/index.js';
import { BANK_PROG, BANK_V1, bank_status, bankV1Procedures, type BankV1Handlers, type bank_result, type transfer } from './generated/bank.js';

export interface BankServerOptions {
  /** Where to listen (default tcp://127.0.0.1:0). */
  listen?: AddressLike[];
  /** Opening balances in cents (default alice 1000.00, bob 50.00). */
  accounts?: Record<string, bigint>;
  /** Register in the name service: its address, true for the default one, false not to (default true, skipped if none answers). */
  nameServer?: string | boolean;
  /** Name to register (default "bank"). */
  name?: string;
  /** Also register with the system rpcbind (default false). */
  rpcbind?: boolean;
  log?: (line: string) => void;
}

export interface BankServer {
  server: RpcServer;
  addresses: Address[];
  /** Where it registered: "name service", "rpcbind", both, or nothing. */
  registered: string[];
  balances(): Record<string, bigint>;
  close(): Promise<void>;
}

/** The bank's logic, independent of the transport. */
export function bankHandlers(accounts: Map<string, bigint>): BankV1Handlers {
  const ok = (balance: bigint): bank_result => ({ status: bank_status.BANK_OK, balance });
  return {
    balance(name) {
      const b = accounts.get(name);
      return b === undefined ? { status: bank_status.BANK_NO_ACCOUNT } : ok(b);
    },
    withdraw({ account, amount }: transfer) {
      if (amount <= 0n) return { status: bank_status.BANK_BAD_AMOUNT };
      const b = accounts.get(account);
      if (b === undefined) return { status: bank_status.BANK_NO_ACCOUNT };
      if (b < amount) return { status: bank_status.BANK_NO_FUNDS };
      accounts.set(account, b - amount);
      return ok(b - amount);
    },
    deposit({ account, amount }: transfer) {
      if (amount <= 0n) return { status: bank_status.BANK_BAD_AMOUNT };
      const b = (accounts.get(account) ?? 0n) + amount;
      accounts.set(account, b);
      return ok(b);
    },
  };
}

export async function startBankServer(options: BankServerOptions = {}): Promise<BankServer> {
  const log = options.log ?? (() => undefined);
  const accounts = new Map(Object.entries(options.accounts ?? { alice: 100_000n, bob: 5_000n }));
  const server = new RpcServer();
  server.addProgram(BANK_PROG, BANK_V1, bankV1Procedures(bankHandlers(accounts)));
  const addresses: Address[] = [];
  for (const a of options.listen ?? ['tcp://127.0.0.1:0']) addresses.push(await server.listen(a));
  const registered: string[] = [];
  let names: NameClient | undefined;
  try {
    if (options.nameServer !== false) {
      try {
        names = await NameClient.connect({
          ...(typeof options.nameServer === 'string' ? { address: options.nameServer } : {}),
          clientName: 'bank-server',
          timeoutMs: 2000,
        });
      } catch (err) {
        if (typeof options.nameServer === 'string') throw err;
        log(`no name service answers (${(err as Error).message}); clients must be given the address`);
      }
      if (names) {
        const first = addresses[0] as Address;
        await names.register(options.name ?? 'bank', { address: formatAddress(first), protocol: 'oncrpc', program: BANK_PROG, version: BANK_V1 });
        registered.push('name service');
      }
    }
    if (options.rpcbind) {
      await server.register();
      registered.push('rpcbind');
    }
  } catch (err) {
    await names?.close();
    await server.close();
    throw err;
  }
  log(`bank serving program ${BANK_PROG} version ${BANK_V1} on ${addresses.map(formatAddress).join(', ')}${registered.length ? `, registered in ${registered.join(' and ')}` : ''}`);
  return {
    server,
    addresses,
    registered,
    balances: () => Object.fromEntries(accounts),
    async close() {
      await names?.close();
      await server.close();
    },
  };
}
