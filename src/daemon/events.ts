/**
 * IKE and CHILD SA life-cycle events for the log (and later the control
 * socket): `ike_established`, `child_established`, `ike_destroyed`.
 *
 * The SA manager creates responder SAs itself and keeps the one 'destroyed'
 * handler an IkeSa has for its own bookkeeping, so the daemon does not hook
 * SAs one by one. It compares the manager's SAs with what it has reported:
 * after every datagram, after every initiation, and whenever the IKE layer
 * logs that an SA was established or destroyed (the line that also carries the
 * reason). Every SA is reported established once and destroyed once.
 */
import { formatProposal } from '../ike/proposal/index.js';
import type { IkeSaManager } from '../ike/manager.js';
import type { IkeSa } from '../ike/sa/ike-sa.js';
import type { ChildSaRecord } from '../ike/sa/context.js';
import { describeIdentity } from './credentials.js';
import type { DaemonLogger } from './logger.js';

/** An SPI as the 8 hex digits `ip xfrm` and swanctl print. */
export function spiHex(spi: number): string {
  return (spi >>> 0).toString(16).padStart(8, '0');
}

/** `moon-sun[0011223344556677_i 8899aabbccddeeff_r]: IKE_SA destroyed: reason` */
const LIFECYCLE = /^([A-Za-z0-9][A-Za-z0-9_.-]*)\[([0-9a-f]{16})_i ([0-9a-f]{16})_r\]: IKE_SA (established|destroyed)(?:: ([\s\S]*))?$/;

interface Tracked {
  established: boolean;
}

export class SaEventReporter {
  private readonly tracked = new Map<IkeSa, Tracked>();
  /** SAs reported destroyed: the manager may still list them for a while. */
  private readonly finished = new WeakSet<IkeSa>();
  /** Destroy reasons seen in the log, by `spiI_spiR`, until the SA is reported. */
  private readonly reasons = new Map<string, string>();

  constructor(
    private readonly manager: () => IkeSaManager | undefined,
    private readonly log: DaemonLogger,
  ) {}

  /** Every message of the IKE layer passes here (before level filtering). */
  observe(message: string): void {
    const m = LIFECYCLE.exec(message);
    if (!m) return;
    const [, name, spiI, spiR, what, reason] = m;
    const key = `${spiI}_${spiR}`;
    if (what === 'destroyed') this.reasons.set(key, reason ?? 'unknown');
    this.reconcile();
    if (what === 'destroyed' && this.reasons.has(key)) {
      // An SA the manager never listed (a responder SA that failed in its first exchange).
      this.reasons.delete(key);
      this.log.event('ike', 'ike_destroyed', `IKE_SA ${name}[${spiI}_i ${spiR}_r] destroyed: ${reason ?? 'unknown'}`, {
        name,
        spi_i: spiI,
        spi_r: spiR,
        reason: reason ?? 'unknown',
        was_established: false,
      });
    }
  }

  /** Report what changed since the last look. */
  reconcile(): void {
    const manager = this.manager();
    if (manager) for (const sa of manager.sas) if (!this.tracked.has(sa) && !this.finished.has(sa)) this.tracked.set(sa, { established: false });
    for (const [sa, t] of this.tracked) {
      try {
        if (!t.established && sa.state === 'established') {
          t.established = true;
          this.established(sa);
        }
        if (sa.state === 'destroyed') {
          this.tracked.delete(sa);
          this.finished.add(sa);
          this.destroyed(sa, t.established);
        }
      } catch (err) {
        this.tracked.delete(sa);
        this.finished.add(sa);
        this.log.log('daemon', 'error', `internal error reporting an SA event: ${(err as Error).stack ?? String(err)}`);
      }
    }
  }

  private established(sa: IkeSa): void {
    const ctx = sa.ctx;
    const spiI = ctx.spiI.toString('hex');
    const spiR = ctx.spiR.toString('hex');
    const proposal = ctx.selected ? formatProposal(ctx.selected) : '';
    const localId = describeIdentity(ctx.config.localId);
    const remoteId = describeIdentity(ctx.peerId);
    this.log.event(
      'ike',
      'ike_established',
      `IKE_SA ${ctx.config.name}[${spiI}_i ${spiR}_r] established between ${ctx.local.address}[${localId}]...${ctx.remote.address}[${remoteId}] with ${proposal}`,
      {
        name: ctx.config.name,
        spi_i: spiI,
        spi_r: spiR,
        initiator: ctx.originalInitiator,
        local: { address: ctx.local.address, port: ctx.local.port },
        remote: { address: ctx.remote.address, port: ctx.remote.port },
        local_id: localId,
        remote_id: remoteId,
        proposal,
        nat_local: ctx.natLocal,
        nat_remote: ctx.natRemote,
      },
    );
    for (const child of ctx.children) this.childEstablished(sa, child);
  }

  private childEstablished(sa: IkeSa, child: ChildSaRecord): void {
    const proposal = formatProposal(child.proposal);
    this.log.event(
      'ike',
      'child_established',
      `CHILD_SA ${child.name}{${child.reqid}} established in ${child.mode} mode with SPIs ${spiHex(child.inboundSpi)}_i ${spiHex(child.outboundSpi)}_o and TS ${child.localTs.join(' ')} === ${child.remoteTs.join(' ')}`,
      {
        name: child.name,
        conn: sa.ctx.config.name,
        spi_i: sa.ctx.spiI.toString('hex'),
        spi_r: sa.ctx.spiR.toString('hex'),
        reqid: child.reqid,
        mode: child.mode,
        encap: child.encap,
        spi_in: spiHex(child.inboundSpi),
        spi_out: spiHex(child.outboundSpi),
        proposal,
        local_ts: child.localTs,
        remote_ts: child.remoteTs,
      },
    );
  }

  private destroyed(sa: IkeSa, wasEstablished: boolean): void {
    const ctx = sa.ctx;
    const spiI = ctx.spiI.toString('hex');
    const spiR = ctx.spiR.toString('hex');
    const key = `${spiI}_${spiR}`;
    const reason = this.reasons.get(key) ?? 'unknown';
    this.reasons.delete(key);
    this.log.event('ike', 'ike_destroyed', `IKE_SA ${ctx.config.name}[${spiI}_i ${spiR}_r] destroyed: ${reason}`, {
      name: ctx.config.name,
      spi_i: spiI,
      spi_r: spiR,
      local: { address: ctx.local.address, port: ctx.local.port },
      remote: { address: ctx.remote.address, port: ctx.remote.port },
      reason,
      was_established: wasEstablished,
    });
  }
}
