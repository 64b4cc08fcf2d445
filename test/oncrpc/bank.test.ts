import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNameServer } from '../../src/naming/index.js';
import { formatAddress } from '../../src/transport/index.js';
import { startBankServer } from '../../examples/bank/bank-server.js';
import { atmSession, findBank, describe } from '../../examples/bank/atm.js';
import { bank_status } from '../../examples/bank/generated/bank.js';

test('the ATM finds the bank through the name service and withdraws', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bank-'));
  const ns = await startNameServer({ listen: [`unix://${join(dir, 'ns.sock')}`] });
  try {
    const bank = await startBankServer({ nameServer: ns.addresses[0] as string, listen: [`unix://${join(dir, 'bank.sock')}`] });
    try {
      assert.deepEqual(bank.registered, ['name service']);
      const atm = await findBank({ nameServer: ns.addresses[0] as string });
      try {
        const lines: string[] = [];
        const r = await atmSession(atm, 'alice', 2_500n, (l) => lines.push(l));
        assert.deepEqual(r, { status: bank_status.BANK_OK, balance: 97_500n });
        assert.deepEqual(lines, ['balance of alice: ok, balance 1000.00', 'withdraw 25.00 from alice: ok, balance 975.00']);
        assert.equal(bank.balances().alice, 97_500n);
      } finally {
        await atm.close();
      }
    } finally {
      await bank.close();
    }
  } finally {
    await ns.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bank rules over a direct TCP address: no funds, no account, bad amount, deposit', async () => {
  const bank = await startBankServer({ nameServer: false });
  try {
    const atm = await findBank({ address: formatAddress(bank.addresses[0]!) });
    try {
      assert.equal((await atm.withdraw({ account: 'bob', amount: 10_000n })).status, bank_status.BANK_NO_FUNDS);
      assert.equal((await atm.withdraw({ account: 'carol', amount: 1n })).status, bank_status.BANK_NO_ACCOUNT);
      assert.equal((await atm.withdraw({ account: 'bob', amount: -5n })).status, bank_status.BANK_BAD_AMOUNT);
      assert.deepEqual(await atm.deposit({ account: 'carol', amount: 700n }), { status: bank_status.BANK_OK, balance: 700n });
      assert.equal(describe(await atm.balance('carol')), 'ok, balance 7.00');
      await atm.ping();
    } finally {
      await atm.close();
    }
  } finally {
    await bank.close();
  }
});
