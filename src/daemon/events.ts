/**
 * IKE and CHILD SA life-cycle events for the log (and later the control
 * socket): `ike_established`, `child_established`, `child_failed`,
 * `ike_destroyed`, from the SA manager's events.
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

export class SaEventReporter {
  constructor(private readonly log: DaemonLogger) {}

  /** Log every IKE/CHILD SA life-cycle event of the manager as a JSON event line. */
  attach(manager: IkeSaManager): void {
    manager.on('established', (sa) => this.established(sa));
    manager.on('childEstablished', (sa, child) => this.childEstablished(sa, child));
    manager.on('childFailed', (sa, name, reason) => this.childFailed(sa, name, reason));
    manager.on('destroyed', (sa, reason) => this.destroyed(sa, reason));
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

  private childFailed(sa: IkeSa, name: string, reason: string): void {
    this.log.event('ike', 'child_failed', `CHILD_SA ${name} of ${sa.ctx.config.name} failed: ${reason}`, {
      name,
      conn: sa.ctx.config.name,
      spi_i: sa.ctx.spiI.toString('hex'),
      spi_r: sa.ctx.spiR.toString('hex'),
      reason,
    });
  }

  private destroyed(sa: IkeSa, reason: string): void {
    const ctx = sa.ctx;
    const spiI = ctx.spiI.toString('hex');
    const spiR = ctx.spiR.toString('hex');
    const wasEstablished = ctx.establishedAt !== undefined;
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
