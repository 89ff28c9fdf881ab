/**
 * Dead peer detection (RFC 7296 §2.4, strongSwan's ike_dpd.c and dpd_delay):
 * when nothing authenticated came from the peer — no IKE message, no ESP
 * packet on one of our CHILD_SAs' inbound SAs — for dpd_delay, send an empty
 * INFORMATIONAL request. An unanswered one (after the retransmission schedule)
 * ends the IKE SA with cause `dead-peer` (the IKE SA's retransmitter does
 * that). A request already under way checks the peer just as well, so none
 * is added then.
 */
import { ExchangeType } from '../codec/index.js';
import type { ExchangeHost } from './task.js';

export interface DpdHost extends ExchangeHost {
  /** A one-shot timer that fires only while the IKE SA is established (../sa/timers.ts). */
  later(ms: number, fn: () => void): void;
  /** No request of ours outstanding or queued. */
  readonly idle: boolean;
  /** A liveness check was sent (the IKE SA's event). */
  livenessCheck(): void;
}

export class Dpd {
  /** Liveness checks sent. */
  checks = 0;
  /** When the peer last sent an authenticated IKE message (ms); ESP counts too, through the SAD. */
  private lastHeard = Date.now();

  constructor(private readonly host: DpdHost) {}

  /** An authenticated IKE message came from the peer. */
  heard(): void {
    this.lastHeard = Date.now();
  }

  start(): void {
    const { ctx } = this.host;
    const delayMs = (ctx.config.dpdDelay ?? 0) * 1000;
    if (delayMs <= 0) return;
    const check = (): void => {
      const idleMs = Date.now() - this.lastInbound();
      if (idleMs < delayMs) return void this.host.later(delayMs - idleMs, check);
      if (this.host.idle) this.host.enqueue(() => this.sendLivenessCheck());
      this.host.later(delayMs, check);
    };
    this.host.later(delayMs, check);
  }

  /** The latest authenticated traffic from the peer: IKE, or ESP on an inbound SA of ours (the SAD's coarse seconds clock). */
  private lastInbound(): number {
    const { ctx } = this.host;
    let last = this.lastHeard;
    for (const c of ctx.children) {
      const used = ctx.backend.querySa(c.inboundSpi, 'in')?.lastUsed ?? 0;
      // lastUsed is whole seconds: count it as the end of that second
      if (used > 0) last = Math.max(last, Math.min(Date.now(), used * 1000 + 999));
    }
    return last;
  }

  /** §2.4: an INFORMATIONAL request with no payloads; the answer (or the retransmissions' end) tells. */
  private sendLivenessCheck(): void {
    const { ctx } = this.host;
    if (ctx.state !== 'established') return;
    this.checks++;
    this.host.livenessCheck();
    ctx.log.log('info', `${ctx.name}: no traffic from ${ctx.remote.address} for dpd_delay ${ctx.config.dpdDelay}s, sending a liveness check (DPD)`);
    this.host.request({ exchangeType: ExchangeType.INFORMATIONAL, messageId: this.host.nextMessageId, payloads: [] }, () =>
      ctx.log.log('debug', `${ctx.name}: liveness check answered`),
    );
  }
}
