/** Run the bank: `npx tsx examples/bank/run-server.ts [tcp://127.0.0.1:7200]` (Ctrl-C stops it and unregisters). */
import { startBankServer } from './bank-server.js';

const bank = await startBankServer({
  listen: [process.argv[2] ?? 'tcp://127.0.0.1:0'],
  rpcbind: process.env.BANK_RPCBIND === '1',
  log: (line) => console.log(line),
});
const stop = () => void bank.close().then(() => process.exit(0));
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
