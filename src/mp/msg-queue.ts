/**
 * A FIFO of messages with O(1) take from the front (an array and a head
 * index). Array.prototype.shift copies the whole array once it holds more
 * than a few thousand entries (V8: 2 us per shift at 20,000, 8 us at
 * 100,000), which made a receiver that fell behind a fast sender slower the
 * further behind it was. The unexpected queue of the engine is one of these.
 */
export class MsgQueue<T> {
  #items: (T | undefined)[] = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  /** The i-th entry from the front (0 <= i < length). */
  at(i: number): T {
    return this.#items[this.#head + i] as T;
  }

  push(x: T): void {
    this.#items.push(x);
  }

  /** Put back at the front. */
  unshift(x: T): void {
    if (this.#head > 0) this.#items[--this.#head] = x;
    else this.#items.unshift(x);
  }

  /** Remove the i-th entry from the front: O(1) for the first, a splice otherwise. */
  removeAt(i: number): void {
    if (i !== 0) {
      this.#items.splice(this.#head + i, 1);
      return;
    }
    this.#items[this.#head++] = undefined;
    const n = this.#items.length;
    if (this.#head === n) {
      // empty: start over (the usual case in a ping-pong, which never lets the array grow)
      this.#items.length = 0;
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= n) {
      // the taken half goes, in one copy of the rest
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
  }
}
