import { InteropV1Client, interopV1Procedures, type item, kind } from './interop.js';
import { RpcServer } from "/work/main/src/oncrpc/index.js";
export async function use(c: InteropV1Client): Promise<bigint> {
  const i: item = { label: 'a', value: 1n, uvalue: 2n, ratio: 0.5, flag: true, codes: [1, 2, 3], tag: new Uint8Array(5), next: null };
  const p = await c.echoPayload({ k: kind.KIND_NUMBER, number: 5n });
  if (p.k === kind.KIND_NUMBER) return p.number + (await c.sum(i));
  new RpcServer().addProgram(InteropV1Client.program, InteropV1Client.version, interopV1Procedures({
    echoRecord: (r) => r, echoPayload: (x) => x, sum: (x) => x.value, echoBlob: (b) => b, greet: async (n) => n,
  }));
  return 0n;
}