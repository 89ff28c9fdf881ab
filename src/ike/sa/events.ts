/**
 * What an IKE SA reports to the manager and the daemon. Generic in the IKE SA
 * type so that this module needs nothing of ./ike-sa.ts. Each IKE SA has
 * one emitter, and the manager (../manager.ts) one that every IKE SA's events
 * are forwarded into. A listener that throws is logged and the others still
 * run: one subscriber's bug never stops an exchange.
 */
import type { ChildSaRecord, IkeSaEndCause } from './context.js';
import type { Logger } from '../log.js';

export interface SaEvents<S> {
  established(sa: S): void;
  /** The IKE SA is gone (deleted, failed, timed out); `reason` is the operator's log line. */
  destroyed(sa: S, reason: string, cause: IkeSaEndCause): void;
  childEstablished(sa: S, child: ChildSaRecord): void;
  /** A CHILD_SA could not be negotiated; the IKE SA stays up. */
  childFailed(sa: S, name: string, reason: string): void;
  /** A CHILD_SA was rekeyed (either side initiated): `fresh` replaces `old` (same reqid). */
  childRekeyed(sa: S, old: ChildSaRecord, fresh: ChildSaRecord): void;
  /** The IKE SA was rekeyed (§2.18): `successor` carries its CHILD_SAs now; this one is deleted next. */
  ikeRekeyed(sa: S, successor: S): void;
  /** The peer deleted a CHILD_SA (not a rekey's old pair) while the IKE SA stays (§1.4.1): close_action applies. */
  childClosed(sa: S, child: ChildSaRecord): void;
  /** We deleted a CHILD_SA (deleteChild: `tunsec down --child`, `swanctl --terminate --child`) and the peer answered; the IKE SA stays. */
  childDeleted(sa: S, child: ChildSaRecord): void;
  /** reauth_time is reached: a new IKE SA with a fresh IKE_AUTH should replace this one (the manager does it). */
  reauthDue(sa: S): void;
  /** A liveness check (DPD, §2.4) was sent. */
  livenessCheck(sa: S): void;
}

type Listener<S> = SaEvents<S>[keyof SaEvents<S>];

export class SaEventEmitter<S> {
  /**
   * Listeners of all events in the order they were added, flat: event name,
   * then handler (or an emitter forwarded to, for every event). One array per
   * IKE SA instead of one per event and a forwarding closure per event: there
   * is an emitter per IKE SA, and most events have no listener of their own.
   */
  private readonly entries: Array<keyof SaEvents<S> | Listener<S> | SaEventEmitter<S> | undefined> = [];

  constructor(
    private readonly log: Logger,
    /** The IKE SA's name in the log line of a failed listener. */
    private readonly name: (sa: S) => string,
  ) {}

  on<K extends keyof SaEvents<S>>(event: K, handler: SaEvents<S>[K]): void {
    this.entries.push(event, handler);
  }

  /** Every event of this emitter is emitted by `target` too (the manager's, for all its IKE SAs). */
  forwardTo(target: SaEventEmitter<S>): void {
    this.entries.push(undefined, target);
  }

  emit<K extends keyof SaEvents<S>>(event: K, ...args: Parameters<SaEvents<S>[K]>): void {
    // live, as an array of listeners per event was: one added while emitting this event runs too
    const entries = this.entries;
    for (let i = 0; i < entries.length; i += 2) {
      const [on, h] = [entries[i], entries[i + 1]];
      if (h instanceof SaEventEmitter) {
        h.emit(event, ...args);
        continue;
      }
      if (on !== event) continue;
      try {
        (h as (...a: Parameters<SaEvents<S>[K]>) => void)(...args);
      } catch (err) {
        this.log.log('error', `${this.name(args[0])}: ${event} listener failed: ${(err as Error).stack ?? String(err)}`);
      }
    }
  }
}
