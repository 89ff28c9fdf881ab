/**
 * Everything the throughput bench starts registers its undo here, so that a
 * failure, an exception or Ctrl-C (SIGINT/SIGTERM/SIGHUP) still deletes the
 * namespaces and stops the daemons (by PID, never by process name).
 */

type Undo = () => Promise<unknown>;

/** Exit codes after a signal (128 + its number), as shells report them. */
export const codes: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 };

export class Cleanups {
  /** Registered undos; `done` is set once one has started, so it runs once and everyone can await it. */
  private readonly items = new Map<number, { label: string; undo: Undo; done?: Promise<void> }>();
  private next = 0;
  private interrupted: NodeJS.Signals | undefined;
  private running: Promise<string[]> | undefined;

  /** Set once a signal arrived: long-running steps check it and stop early. */
  get aborted(): NodeJS.Signals | undefined {
    return this.interrupted;
  }

  /** Throws when a signal arrived, so that no new resources are created while cleaning up. */
  checkAborted(): void {
    if (this.interrupted) throw new Error(`interrupted by ${this.interrupted}`);
  }

  private abortWaiters = new Set<(err: Error) => void>();

  /** `p`, or a rejection as soon as a signal arrives (for waits that would outlive an interrupted run). */
  race<T>(p: Promise<T>): Promise<T> {
    this.checkAborted();
    let reject!: (err: Error) => void;
    const aborted = new Promise<never>((_, rej) => (reject = rej));
    this.abortWaiters.add(reject);
    return Promise.race([p, aborted]).finally(() => this.abortWaiters.delete(reject));
  }

  /**
   * Register an undo; returns a function that runs it now (once; a second call,
   * or one while runAll() is at it, waits for the same run) and unregisters it.
   * Undos run last-registered first.
   */
  add(label: string, undo: Undo): () => Promise<void> {
    const id = this.next++;
    this.items.set(id, { label, undo });
    return () => this.runOne(id);
  }

  private runOne(id: number): Promise<void> {
    const item = this.items.get(id);
    if (!item) return Promise.resolve();
    item.done ??= (async () => {
      try {
        await item.undo();
      } finally {
        this.items.delete(id);
      }
    })();
    return item.done;
  }

  /**
   * Run every registered undo (LIFO), and wait for those already running;
   * errors are collected, never thrown. Concurrent callers (the signal handler
   * and the main flow's `finally`) share one pass.
   */
  runAll(): Promise<string[]> {
    this.running ??= this.undoAll().finally(() => (this.running = undefined));
    return this.running;
  }

  private async undoAll(): Promise<string[]> {
    const errors: string[] = [];
    while (this.items.size) {
      const id = Math.max(...this.items.keys());
      const label = this.items.get(id)!.label;
      try {
        await this.runOne(id);
      } catch (err) {
        errors.push(`${label}: ${(err as Error).message}`);
      }
    }
    return errors;
  }

  /**
   * On SIGINT/SIGTERM/SIGHUP: run every undo, then exit (128 + signal number).
   * Further signals while cleaning up are ignored; a stuck cleanup exits after `hardLimitMs`.
   */
  installSignalHandlers(log: (line: string) => void, hardLimitMs = 90_000): void {
    for (const sig of Object.keys(codes) as NodeJS.Signals[]) {
      process.on(sig, () => {
        if (this.interrupted) {
          log(`${sig}: still cleaning up (exits by itself within ${hardLimitMs / 1000} s)`);
          return;
        }
        this.interrupted = sig;
        for (const reject of this.abortWaiters) reject(new Error(`interrupted by ${sig}`));
        log(`${sig}: stopping, cleaning up (namespaces, daemons)…`);
        setTimeout(() => {
          log('cleanup did not finish in time; exiting anyway');
          process.exit(codes[sig]!);
        }, hardLimitMs).unref();
        void this.runAll().then((errors) => {
          for (const e of errors) log(`cleanup: ${e}`);
          process.exit(codes[sig]!);
        });
      });
    }
  }
}

/** Resolve with `p` (errors swallowed) or after `ms`, whichever is first. */
export async function settle(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    p.then(
      () => undefined,
      () => undefined,
    ),
    new Promise<void>((r) => (timer = setTimeout(r, ms))),
  ]);
  clearTimeout(timer);
}
