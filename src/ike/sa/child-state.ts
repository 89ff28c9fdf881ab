/**
 * The state of each CHILD_SA an IKE SA knows (RFC 7296 §1.3.3, §2.8, §2.8.1),
 * one record per SA pair with the timer that belongs to it — the way
 * strongSwan's child_sa_t carries a child_sa_state_t. The IKE SA holds one
 * ChildStates; handing CHILD_SAs to a rekeyed IKE SA moves this one table.
 *
 * A CHILD_SA we are creating (CREATE_CHILD_SA, §1.3.1) is `installing`, keyed
 * by its configured child's name until the pair exists. A pair in ctx.children
 * is `installed`, `rekeying` or `retrying`; a pair that left it (replaced by a
 * rekey, the losing pair of a collision, an old inbound SA on its grace
 * period) is `superseded`, `redundant` or `rekeyed`. A pair without an entry
 * is installed with no rekey timer.
 */
import type { ChildSaRecord } from './context.js';

/** §2.8.1: the peer rekeyed a CHILD_SA we are rekeying too; its pair and its exchange's nonces. */
export interface ChildRekeyCollision {
  peerPair: ChildSaRecord;
  nonces: Buffer[];
}

/** Our CREATE_CHILD_SA for a configured child is queued or sent (§1.3.1); no pair exists yet. */
export interface Installing {
  kind: 'installing';
  why: string;
}

export type ChildState =
  /** Carries traffic; `rekeyTimer` fires at its rekey_time. */
  | { kind: 'installed'; rekeyTimer?: NodeJS.Timeout }
  /** Our CREATE_CHILD_SA rekeying it is queued or sent; `want`: due again during an IKE rekey (moves with it). */
  | { kind: 'rekeying'; rekeyTimer?: NodeJS.Timeout; want?: string }
  /**
   * Due for a rekey that waits: with `retryTimer`, for a retry after the peer's
   * TEMPORARY_FAILURE (§2.25); without, for the IKE rekey under way to finish.
   */
  | { kind: 'retrying'; why: string; retryTimer?: NodeJS.Timeout; rekeyTimer?: NodeJS.Timeout }
  /**
   * Responder of its rekey (or a collision, §2.8.1): replaced by `successor`,
   * waiting for the initiator's Delete; outbound moves to the successor at the
   * latest when `switchTimer` fires. `collision`: our own rekey of it is still
   * outstanding. `redundantOutbound`: our losing pair's outbound SA, still used
   * until the winner is known to have its inbound SA.
   */
  | {
      kind: 'superseded';
      successor: ChildSaRecord;
      switched: boolean;
      switchTimer?: NodeJS.Timeout;
      redundantOutbound?: number;
      collision?: ChildRekeyCollision;
    }
  /** The losing pair of a collision, made by the peer's exchange: the peer deletes it, we do when `graceTimer` fires. */
  | { kind: 'redundant'; graceTimer: NodeJS.Timeout }
  /** Deleted; its inbound SA accepts packets in flight for a grace period (the SAD removes it then). */
  | { kind: 'rekeyed' };

type Of<K extends ChildState['kind']> = Extract<ChildState, { kind: K }>;

function timersOf(s: ChildState): Array<NodeJS.Timeout | undefined> {
  switch (s.kind) {
    case 'installed':
    case 'rekeying':
      return [s.rekeyTimer];
    case 'retrying':
      return [s.rekeyTimer, s.retryTimer];
    case 'superseded':
      return [s.switchTimer];
    case 'redundant':
      return [s.graceTimer];
    case 'rekeyed':
      return [];
  }
}

export class ChildStates {
  private readonly map = new Map<ChildSaRecord, ChildState>();
  /** CHILD_SAs being created, by configured child name (one at a time per child). */
  private readonly installs = new Map<string, Installing>();

  /** Start creating a CHILD_SA of child `name`; false when one is being created already. */
  startInstalling(name: string, why: string): boolean {
    if (this.installs.has(name)) return false;
    this.installs.set(name, { kind: 'installing', why });
    return true;
  }

  /** The creation of child `name` ended (installed, failed or abandoned). */
  endInstalling(name: string): void {
    this.installs.delete(name);
  }

  installing(name: string): Installing | undefined {
    return this.installs.get(name);
  }

  get(child: ChildSaRecord): ChildState | undefined {
    return this.map.get(child);
  }

  /** The state if it is of `kind`. */
  is<K extends ChildState['kind']>(child: ChildSaRecord, kind: K): Of<K> | undefined {
    const s = this.map.get(child);
    return s?.kind === kind ? (s as Of<K>) : undefined;
  }

  set(child: ChildSaRecord, state: ChildState): void {
    this.map.set(child, state);
  }

  /** Forget a pair, stopping its timers. */
  delete(child: ChildSaRecord): void {
    const s = this.map.get(child);
    if (s) for (const t of timersOf(s)) clearTimeout(t);
    this.map.delete(child);
  }

  /** The pending rekey_time timer of a pair, if any. */
  rekeyTimer(child: ChildSaRecord): NodeJS.Timeout | undefined {
    const s = this.map.get(child);
    return s && (s.kind === 'installed' || s.kind === 'rekeying' || s.kind === 'retrying') ? s.rekeyTimer : undefined;
  }

  /** The pairs in state `kind`. */
  *all<K extends ChildState['kind']>(kind: K): IterableIterator<[ChildSaRecord, Of<K>]> {
    for (const [c, s] of [...this.map]) if (s.kind === kind) yield [c, s as Of<K>];
  }

  find<K extends ChildState['kind']>(kind: K, match: (child: ChildSaRecord) => boolean): [ChildSaRecord, Of<K>] | undefined {
    for (const entry of this.all(kind)) if (match(entry[0])) return entry;
    return undefined;
  }

  has(kind: ChildState['kind']): boolean {
    for (const s of this.map.values()) if (s.kind === kind) return true;
    return false;
  }

  /**
   * Stop the rekey, retry and switch timers (the IKE SA is retired or going);
   * the states stay. A redundant pair's grace timer keeps running.
   */
  stopTimers(): void {
    for (const s of this.map.values()) {
      if (s.kind === 'installed' || s.kind === 'rekeying' || s.kind === 'retrying') {
        clearTimeout(s.rekeyTimer);
        delete s.rekeyTimer;
      }
      if (s.kind === 'retrying') {
        clearTimeout(s.retryTimer);
        delete s.retryTimer;
      }
      if (s.kind === 'superseded') clearTimeout(s.switchTimer);
    }
  }

  /** Take every entry out (timers stopped by the caller as each state requires). */
  drain(): Array<[ChildSaRecord, ChildState]> {
    const entries = [...this.map];
    this.map.clear();
    return entries;
  }

  /** Forget everything, stopping every timer. */
  clear(): void {
    this.installs.clear();
    for (const c of [...this.map.keys()]) this.delete(c);
  }
}
