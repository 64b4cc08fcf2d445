/**
 * One ref'd handle that keeps the event loop alive while message-passing
 * operations are pending, so idle connections (unref'd) never keep a finished
 * program from exiting, and a pending receive never lets it exit early.
 */
export class KeepAlive {
  private timer: NodeJS.Timeout | undefined;

  set(active: boolean): void {
    if (active) {
      if (this.timer === undefined) this.timer = setInterval(() => undefined, 1 << 30);
      else this.timer.ref();
    } else {
      this.timer?.unref();
    }
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }
}
