/** Withdraw at the ATM: `npx tsx examples/bank/run-atm.ts alice 25.00 [tcp://host:port]`. */
import { atmSession, findBank } from './atm.js';

const [account = 'alice', units = '10.00', address] = process.argv.slice(2);
const bank = await findBank(address ? { address } : {});
try {
  await atmSession(bank, account, BigInt(Math.round(Number(units) * 100)), (line) => console.log(line));
} finally {
  await bank.close();
}
