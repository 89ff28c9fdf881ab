/**
 * What an IKE SA reports to the manager and the daemon. Generic in the IKE SA
 * type so that this module needs nothing of ./ike-sa.ts. A listener that
 * throws is logged and the others still run: one subscriber's bug never
 * stops an exchange.
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

export class SaEventEmitter<S> {
  private readonly listeners: { [K in keyof SaEvents<S>]: Array<SaEvents<S>[K]> } = {
    established: [],
    destroyed: [],
    childEstablished: [],
    childFailed: [],
    childRekeyed: [],
    ikeRekeyed: [],
    childClosed: [],
    childDeleted: [],
    reauthDue: [],
    livenessCheck: [],
  };

  constructor(
    private readonly log: Logger,
    private readonly name: () => string,
  ) {}

  on<K extends keyof SaEvents<S>>(event: K, handler: SaEvents<S>[K]): void {
    this.listeners[event].push(handler);
  }

  emit<K extends keyof SaEvents<S>>(event: K, ...args: Parameters<SaEvents<S>[K]>): void {
    for (const h of this.listeners[event]) {
      try {
        (h as (...a: Parameters<SaEvents<S>[K]>) => void)(...args);
      } catch (err) {
        this.log.log('error', `${this.name()}: ${event} listener failed: ${(err as Error).stack ?? String(err)}`);
      }
    }
  }
}
