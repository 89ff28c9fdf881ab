/**
 * The timers of one IKE SA as named events (the way wireguard-go's
 * device/timers.go does it): IKE rekey_time, reauth_time and the hard end at
 * the first of them + over_time (each minus a random rand_time), NAT-T
 * keepalives, and one-shots (retries after TEMPORARY_FAILURE, DPD checks)
 * that fire only while the IKE SA is established. CHILD_SA rekey timers are
 * part of each pair's state (./child-state.ts).
 */
import type { IkePeerConfig } from './peer-config.js';

export interface IkeSaTimerEvents {
  /** One-shots fire only while this holds. */
  readonly established: boolean;
  /** rekey_time is reached. */
  ikeRekeyDue(): void;
  /** reauth_time is reached. */
  reauthDue(): void;
  /** Neither rekeyed nor reauthenticated within over_time: the IKE SA ends. */
  hardEnd(reason: string): void;
}

export class IkeSaTimers {
  /** Pending one-shots: a plain array (a Set's hash table is ~0.5 KiB per IKE SA; there are a handful at most). */
  private oneShots: NodeJS.Timeout[] = [];
  private keepalive?: NodeJS.Timeout;
  /** When (ms since the epoch) the IKE rekey, reauthentication and hard end are due; what swanctl --list-sas shows. */
  deadlines: { rekeyAt?: number; reauthAt?: number; endAt?: number } = {};

  constructor(private readonly events: IkeSaTimerEvents) {}

  /** Run `fn` after `ms` if the IKE SA is still established then; stop() cancels it. */
  later(ms: number, fn: () => void): NodeJS.Timeout {
    const t = setTimeout(() => {
      this.forget(t);
      if (this.events.established) fn();
    }, ms);
    t.unref?.();
    this.oneShots.push(t);
    return t;
  }

  /** Run `fn` after `ms` in whatever state the IKE SA is then (a redundant IKE SA is never established); stop() cancels it. */
  whateverState(ms: number, fn: () => void): NodeJS.Timeout {
    const t = setTimeout(() => {
      this.forget(t);
      fn();
    }, ms);
    t.unref?.();
    this.oneShots.push(t);
    return t;
  }

  private forget(t: NodeJS.Timeout): void {
    const i = this.oneShots.indexOf(t);
    if (i >= 0) this.oneShots.splice(i, 1);
  }

  /** IKE rekey, reauthentication and hard end timers of `lifetimes` (none when absent). */
  startLifetimes(l: IkePeerConfig['ikeLifetimes']): void {
    if (!l) return;
    const reauth = l.reauthTime ?? 0;
    const jitter = (limit: number): number => (limit - Math.random() * Math.min(l.randTime, Math.floor(limit / 2))) * 1000;
    const now = Date.now();
    this.deadlines = {};
    if (l.rekeyTime > 0) {
      const ms = jitter(l.rekeyTime);
      this.deadlines.rekeyAt = now + ms;
      this.later(ms, () => this.events.ikeRekeyDue());
    }
    if (reauth > 0) {
      const ms = jitter(reauth);
      this.deadlines.reauthAt = now + ms;
      this.later(ms, () => this.events.reauthDue());
    }
    const first = Math.min(...[l.rekeyTime, reauth].filter((t) => t > 0));
    if (Number.isFinite(first) && l.overTime > 0) {
      const what = reauth > 0 && (l.rekeyTime <= 0 || reauth < l.rekeyTime) ? 'reauthenticated within reauth_time' : 'rekeyed within rekey_time';
      this.deadlines.endAt = now + (first + l.overTime) * 1000;
      this.later((first + l.overTime) * 1000, () => this.events.hardEnd(`IKE_SA not ${what} + over_time (${first + l.overTime}s)`));
    }
  }

  /**
   * RFC 3948 §2.3: behind a NAT, keep its mapping alive with `send` every
   * `intervalMs` (strongSwan's default: 20 s). Simplification: sent on the
   * interval even when other traffic flows. Started once.
   */
  startKeepalives(intervalMs: number, send: () => void): void {
    if (this.keepalive || intervalMs <= 0) return;
    this.keepalive = setInterval(send, intervalMs);
    this.keepalive.unref?.();
  }

  /** Cancel the one-shots and lifetimes (keepalives go on until stopKeepalives). */
  stop(): void {
    for (const t of this.oneShots) clearTimeout(t);
    this.oneShots = [];
    this.deadlines = {};
  }

  stopKeepalives(): void {
    clearInterval(this.keepalive);
  }
}
