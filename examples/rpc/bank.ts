/**
 * The seed's bank (12.2.1): the business logic that can only run on the
 * bank's central computer. The interface is the whole RPC contract; the ATM
 * imports only the type.
 */
import { callContext } from '../../src/rpc/index.js';

export interface Withdrawal {
  account: string;
  amount: number;
  balance: number;
  at: Date;
}

export interface Bank {
  balance(account: string): number;
  /** Check that the balance suffices, then take the money out (atomically, here on the bank's side). */
  withdraw(account: string, amount: number): Withdrawal;
  deposit(account: string, amount: number): number;
  /** Calls `onChange` every time the account changes, until the signal of the call aborts. */
  watch(account: string, onChange: (balance: number) => void): Promise<void>;
}

export class InsufficientFunds extends Error {
  override name = 'InsufficientFunds';
  readonly code = 'EFUNDS';
}

export function createBank(accounts: Record<string, number>): Bank {
  const balances = new Map(Object.entries(accounts));
  const watchers = new Map<string, Set<(balance: number) => void>>();
  const notify = (account: string): void => {
    for (const w of watchers.get(account) ?? []) w(balances.get(account) ?? 0);
  };
  const known = (account: string): number => {
    const b = balances.get(account);
    if (b === undefined) throw Object.assign(new Error(`no account ${account}`), { code: 'ENOACCOUNT' });
    return b;
  };
  return {
    balance: known,
    withdraw(account, amount) {
      const b = known(account);
      if (!(amount > 0)) throw new RangeError('the amount must be positive');
      if (b < amount) throw new InsufficientFunds(`balance ${b} is less than ${amount}`);
      balances.set(account, b - amount);
      notify(account);
      return { account, amount, balance: b - amount, at: new Date() };
    },
    deposit(account, amount) {
      const b = known(account) + amount;
      balances.set(account, b);
      notify(account);
      return b;
    },
    watch(account, onChange) {
      const { signal } = callContext(); // before the first await
      known(account);
      const set = watchers.get(account) ?? new Set();
      watchers.set(account, set);
      set.add(onChange);
      return new Promise<void>((resolve) => {
        signal.addEventListener('abort', () => {
          set.delete(onChange);
          resolve();
        });
      });
    },
  };
}
