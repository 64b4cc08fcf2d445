/** Shared by the ONC RPC tests of the polled paths. */

/** `n` bytes of a pattern that depends on `seed`. */
export const bytes = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

/** Did `p` settle before an event-loop turn (a setImmediate queued now) could run? */
export async function settledWithoutLoopTurn<T>(p: Promise<T>): Promise<{ turn: boolean; value?: T; error?: unknown }> {
  let turn = false;
  const imm = setImmediate(() => (turn = true));
  try {
    const value = await p;
    return { turn, value };
  } catch (error) {
    return { turn, error };
  } finally {
    clearImmediate(imm);
  }
}
