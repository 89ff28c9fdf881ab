/**
 * IKE and CHILD SA life-cycle events for the log and for the control
 * socket's subscribers (`tunsec monitor`, DaemonLogger.subscribe):
 * `ike_established`, `child_established`, `child_failed`, `child_rekeyed`,
 * `ike_rekeyed`, `child_closed`, `child_deleted`, `ike_destroyed`, from the
 * SA manager's events.
 */
import { formatProposal } from '../ike/proposal/index.js';
import type { IkeSaManager } from '../ike/manager.js';
import type { IkeSa, IkeSaEndCause } from '../ike/sa/ike-sa.js';
import type { ChildSaRecord } from '../ike/sa/context.js';
import { describeIdentity } from './credentials.js';
import type { DaemonLogger } from './logger.js';
import { spiHex } from '../util/format.js';

export class SaEventReporter {
  constructor(private readonly log: DaemonLogger) {}

  /** Log every IKE/CHILD SA life-cycle event of the manager as a JSON event line. */
  attach(manager: IkeSaManager): void {
    manager.on('established', (sa) => this.established(sa));
    manager.on('childEstablished', (sa, child) => this.childEstablished(sa, child));
    manager.on('childFailed', (sa, name, reason) => this.childFailed(sa, name, reason));
    manager.on('destroyed', (sa, reason, cause) => this.destroyed(sa, reason, cause));
    manager.on('childRekeyed', (sa, old, fresh) => this.childRekeyed(sa, old, fresh));
    manager.on('ikeRekeyed', (sa, successor) => this.ikeRekeyed(sa, successor));
    manager.on('childClosed', (sa, child) => this.childClosed(sa, child));
    manager.on('childDeleted', (sa, child) => this.childDeleted(sa, child));
  }

  private childRekeyed(sa: IkeSa, old: ChildSaRecord, fresh: ChildSaRecord): void {
    this.log.event(
      'ike',
      'child_rekeyed',
      `CHILD_SA ${fresh.name}{${fresh.reqid}} rekeyed: ${spiHex(old.inboundSpi)}_i ${spiHex(old.outboundSpi)}_o → ${spiHex(fresh.inboundSpi)}_i ${spiHex(fresh.outboundSpi)}_o`,
      {
        name: fresh.name,
        conn: sa.ctx.config.name,
        reqid: fresh.reqid,
        old_spi_in: spiHex(old.inboundSpi),
        old_spi_out: spiHex(old.outboundSpi),
        spi_in: spiHex(fresh.inboundSpi),
        spi_out: spiHex(fresh.outboundSpi),
        proposal: formatProposal(fresh.proposal),
      },
    );
  }

  private ikeRekeyed(sa: IkeSa, successor: IkeSa): void {
    const old = `${sa.ctx.spiI.toString('hex')}_i ${sa.ctx.spiR.toString('hex')}_r`;
    const next = `${successor.ctx.spiI.toString('hex')}_i ${successor.ctx.spiR.toString('hex')}_r`;
    this.log.event('ike', 'ike_rekeyed', `IKE_SA ${sa.ctx.config.name}[${old}] rekeyed to [${next}]`, {
      name: sa.ctx.config.name,
      old_spi_i: sa.ctx.spiI.toString('hex'),
      old_spi_r: sa.ctx.spiR.toString('hex'),
      spi_i: successor.ctx.spiI.toString('hex'),
      spi_r: successor.ctx.spiR.toString('hex'),
    });
  }

  private childClosed(sa: IkeSa, child: ChildSaRecord): void {
    this.log.event(
      'ike',
      'child_closed',
      `CHILD_SA ${child.name}{${child.reqid}} closed by the peer (${spiHex(child.inboundSpi)}_i ${spiHex(child.outboundSpi)}_o)`,
      {
        name: child.name,
        conn: sa.ctx.config.name,
        reqid: child.reqid,
        spi_in: spiHex(child.inboundSpi),
        spi_out: spiHex(child.outboundSpi),
      },
    );
  }

  private childDeleted(sa: IkeSa, child: ChildSaRecord): void {
    this.log.event(
      'ike',
      'child_deleted',
      `CHILD_SA ${child.name}{${child.reqid}} deleted (${spiHex(child.inboundSpi)}_i ${spiHex(child.outboundSpi)}_o); the IKE_SA stays`,
      {
        name: child.name,
        conn: sa.ctx.config.name,
        reqid: child.reqid,
        spi_in: spiHex(child.inboundSpi),
        spi_out: spiHex(child.outboundSpi),
      },
    );
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

  private destroyed(sa: IkeSa, reason: string, cause: IkeSaEndCause): void {
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
      cause,
      was_established: wasEstablished,
    });
  }
}
