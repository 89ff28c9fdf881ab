/**
 * `inactivity` (swanctl's child setting): an IKE SA whose CHILD_SAs all saw
 * no packet, in or out, for their child's inactivity time is deleted — the
 * way idle instances of a group connection go away, their trap policy then
 * negotiating again on the next packet. Time without traffic is counted from
 * the SAs' last packet (the SAD's `lastUsed`, whole seconds) or, before any,
 * from when the CHILD_SA was installed. A child without `inactivity` keeps
 * its IKE SA (tunsec deletes IKE SAs, not single CHILD_SAs, here).
 */
import type { SecurityAssociationDatabase } from '../esp/sadb.js';
import type { IkeSa } from '../ike/sa/ike-sa.js';
import type { DaemonView } from './initiation.js';

/** How often idle SAs are looked for; the inactivity times are whole seconds. */
const CHECK_INTERVAL_MS = 1000;

export class InactivityCheck {
  private timer?: NodeJS.Timeout;
  /** IKE SAs deleted for inactivity since the start. */
  closed = 0;

  constructor(
    private readonly host: DaemonView,
    private readonly sad: SecurityAssociationDatabase,
  ) {}

  /** Run the check while any connection has a child with `inactivity` (called at start and after a reload). */
  update(): void {
    const wanted = this.host.connections().some((c) => Object.values(c.inactivity).some((s) => s > 0));
    if (wanted && !this.timer) {
      this.timer = setInterval(() => this.check(Date.now()), CHECK_INTERVAL_MS);
      this.timer.unref();
    } else if (!wanted && this.timer) {
      this.stop();
    }
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Delete the established IKE SAs whose every CHILD_SA is idle past its child's inactivity. */
  check(nowMs: number): void {
    const manager = this.host.manager();
    if (!manager) return;
    for (const sa of manager.sas) {
      const idle = this.idleSeconds(sa, nowMs);
      if (idle === undefined) continue;
      this.closed++;
      this.host.log.log(
        'daemon',
        'info',
        `${sa.ctx.name}${sa.ctx.config.instancePeer === undefined ? '' : ` (${sa.ctx.config.name}[${sa.ctx.config.instancePeer}])`}: no traffic for ${idle} s (inactivity): deleting the IKE_SA`,
        { conn: sa.ctx.config.name },
      );
      sa.delete(`inactive for ${idle} s`);
    }
  }

  /** How long `sa`'s CHILD_SAs have all been idle, when that exceeds their inactivity; else undefined. */
  private idleSeconds(sa: IkeSa, nowMs: number): number | undefined {
    if (sa.state !== 'established' || sa.successor || sa.ctx.children.length === 0) return undefined;
    const c = this.host.connections().find((x) => x.name === sa.ctx.config.name);
    if (!c) return undefined;
    const now = nowMs / 1000;
    let shortest = Infinity;
    for (const child of sa.ctx.children) {
      const limit = c.inactivity[child.name] ?? 0;
      if (limit <= 0) return undefined;
      const last = Math.max(
        this.sad.querySa(child.inboundSpi, 'in')?.lastUsed ?? 0,
        this.sad.querySa(child.outboundSpi, 'out')?.lastUsed ?? 0,
        Math.floor(child.installedAt / 1000),
      );
      // lastUsed is whole seconds: count it as the end of that second
      const idle = now - (last + 1);
      if (idle < limit) return undefined;
      shortest = Math.min(shortest, Math.floor(idle));
    }
    return shortest;
  }
}
