/** A manual clock implementing the exchange Timers interface: time moves only in advance(). */
import type { TimerHandle, Timers } from '../../../src/ike/exchange/timers.js';

interface Pending {
  id: number;
  at: number;
  fn: () => void;
}

export class FakeTimers implements Timers {
  now = 0;
  #nextId = 1;
  #pending: Pending[] = [];

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = this.#nextId++;
    this.#pending.push({ id, at: this.now + ms, fn });
    return id;
  }

  clearTimeout(handle: TimerHandle): void {
    this.#pending = this.#pending.filter((p) => p.id !== handle);
  }

  get pendingCount(): number {
    return this.#pending.length;
  }

  /** Runs every timer due within `ms`, in time order, moving `now` to each one's due time. */
  advance(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      const due = this.#pending.filter((p) => p.at <= end).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (due === undefined) break;
      this.#pending = this.#pending.filter((p) => p !== due);
      this.now = due.at;
      due.fn();
    }
    this.now = end;
  }

  /** Runs timers until none is left (bounded, so a runaway schedule fails the test). */
  runAll(limit = 1000): void {
    for (let i = 0; i < limit && this.#pending.length > 0; i++) {
      const next = [...this.#pending].sort((a, b) => a.at - b.at || a.id - b.id)[0]!;
      this.advance(next.at - this.now);
    }
    if (this.#pending.length > 0) throw new Error('timers still pending');
  }
}
