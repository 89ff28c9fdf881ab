/**
 * The public-key work of an exchange's tasks ahead of their synchronous
 * steps (Task.prepareRequest / prepareResponse / prepareRespond), and the
 * gate that holds an IKE SA while it runs: whatever arrives for the SA
 * meanwhile (a retransmission, the next message) waits and is handled after,
 * in arrival order, so an exchange is never processed out of order. With
 * inline crypto no hook returns a promise and nothing is held.
 */
import type { Task } from './task.js';

/** Datagrams held per IKE SA while it waits (more are dropped: the peer retransmits). */
const HELD_MAX = 32;

/** Run `hook` on every task; a promise when any work is under way (settles when all has). */
export function prepareTasks(tasks: readonly Task[], hook: (t: Task) => Promise<void> | undefined): Promise<void> | undefined {
  const pending = tasks.map(hook).filter((p): p is Promise<void> => p !== undefined);
  return pending.length === 0 ? undefined : Promise.all(pending).then(() => undefined);
}

export class PrepareGate {
  private held: Array<() => void> = [];
  private waiting = false;

  constructor(
    /** False once the IKE SA is gone: a continuation and held work are dropped. */
    private readonly alive: () => boolean,
    /** A continuation threw. */
    private readonly onError: (err: unknown) => void,
    /** After a continuation and the held work: let the next request of ours go. */
    private readonly resume: () => void,
  ) {}

  /** Work for the IKE SA is under way: hold everything else. */
  get busy(): boolean {
    return this.waiting;
  }

  /** While busy: keep `job` for later (true); otherwise false, run it now. */
  hold(job: () => void): boolean {
    if (!this.waiting) return false;
    if (this.held.length < HELD_MAX) this.held.push(job);
    return true;
  }

  /** Run `then` once `pending` settles, holding the IKE SA until then; then what was held, in order. */
  wait(pending: Promise<void>, then: () => void): void {
    this.waiting = true;
    pending.then(
      () => this.release(then),
      (err: unknown) => this.release(() => this.onError(err)),
    );
  }

  private release(then: () => void): void {
    this.waiting = false;
    if (!this.alive()) {
      this.held = [];
      return;
    }
    this.run(then);
    while (!this.waiting && this.held.length > 0 && this.alive()) this.run(this.held.shift()!);
    if (!this.waiting && this.alive()) this.run(this.resume);
  }

  private run(job: () => void): void {
    try {
      job();
    } catch (err) {
      this.onError(err);
    }
  }
}
