/**
 * CHILD_SA creation inside IKE_AUTH (RFC 7296 §1.2, §2.9, §2.17): the ESP
 * proposal (no KE in IKE_AUTH, the CHILD_SA takes its keys from the IKE SA),
 * TSi/TSr with narrowing, USE_TRANSPORT_MODE (§3.10.1), SPI allocation,
 * KEYMAT = prf+(SK_d, Ni | Nr), and installation through the datapath's
 * narrow IpsecBackend API. A CHILD_SA that cannot be agreed fails alone:
 * the IKE SA stays up and the response carries the error notify (§2.21.3).
 */
import { aeadFor } from '../../crypto/aead.js';
import { deriveChildKeymat, wipe } from '../../crypto/ikev2-keys.js';
import type { IpsecMode, SaLifetimes, SaSpec, PolicySpec, TrafficSelector as EspSelector } from '../../esp/api.js';
import { ExchangeType, NotifyType, PayloadType, notifyTypeName, isErrorNotify } from '../codec/index.js';
import { notify, tsPayload } from '../codec/build.js';
import {
  checkSelectedProposal,
  formatProposal,
  noAcceptableProposal,
  fromProposalSubstructures,
  selectProposal,
  toProposalSubstructure,
  toProposalSubstructures,
  transformOfType,
  withoutKe,
  type Proposal,
  type SelectedProposal,
} from '../proposal/index.js';
import { EsnId, TransformType } from '../transforms.js';
import {
  checkInitiatorTs,
  childrenByFit,
  initiatorTs,
  rangesToPayload,
  selectResponderTs,
  toEspSelectors,
  transportModeAllowed,
  formatRanges,
  type TsRange,
} from '../ts/index.js';
import type { ChildSaRecord, IkeSaContext } from '../sa/context.js';
import { implementedProposals } from '../sa/suites.js';
import type { ChildPeerConfig } from '../sa/peer-config.js';
import { BaseTask, findNotify, firstOfType, notifiesOf, peerRefused, type TaskMessage, type TaskStatus } from './task.js';
import { spiHex } from '../../util/format.js';

/** reqids for children configured without one; configured reqids are small numbers (src/daemon/credentials.ts). */
let nextReqid = 0x100000;

function spiBytes(spi: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(spi >>> 0);
  return b;
}

interface Negotiated {
  config: ChildPeerConfig;
  proposal: SelectedProposal;
  mode: IpsecMode;
  tsi: TsRange[];
  tsr: TsRange[];
}

export class ChildCreateTask extends BaseTask {
  readonly name = 'CHILD_CREATE';
  private inboundSpi?: number;
  /** Initiator: the ESP proposals offered in IKE_AUTH (implemented transforms, no KE); the reply is checked against exactly these. */
  private offered?: Proposal[];
  private proposed?: { tsi: TsRange[]; tsr: TsRange[] };
  private negotiated?: Negotiated;
  /** Responder: the notify that replaces SA/TS in the response when the CHILD_SA failed. */
  private failure?: number;

  /** Initiator: the child to create; responder: undefined, chosen from the request. */
  constructor(
    private readonly sa: IkeSaContext,
    private readonly config?: ChildPeerConfig,
  ) {
    super();
  }

  override buildRequest(msg: TaskMessage): void {
    if (msg.exchangeType !== ExchangeType.IKE_AUTH || !this.config) return;
    const { sa, config } = this;
    this.inboundSpi = sa.backend.allocateSpi();
    this.proposed = initiatorTs({ localConfig: config.localTs, remoteConfig: config.remoteTs, localAddr: sa.local.address, remoteAddr: sa.remote.address });
    this.offered = withoutKe(implementedProposals(config.espProposals));
    if (config.mode === 'transport') msg.payloads.push(notify(NotifyType.USE_TRANSPORT_MODE));
    msg.payloads.push(
      { type: PayloadType.SA, proposals: toProposalSubstructures(this.offered, spiBytes(this.inboundSpi)) },
      tsPayload(PayloadType.TSi, rangesToPayload(this.proposed.tsi)),
      tsPayload(PayloadType.TSr, rangesToPayload(this.proposed.tsr)),
    );
  }

  override processResponse(msg: TaskMessage): TaskStatus {
    if (msg.exchangeType !== ExchangeType.IKE_AUTH) return 'need_more';
    if (!this.config) return 'done';
    const { sa, config } = this;
    const fail = (why: string): TaskStatus => {
      sa.log.log('warn', `${sa.name}: CHILD_SA ${config.name} failed: ${why}; the IKE_SA stays up`);
      sa.observer.childFailed(config.name, why);
      return 'done';
    };
    const saPayload = firstOfType(msg, PayloadType.SA);
    const tsi = firstOfType(msg, PayloadType.TSi);
    const tsr = firstOfType(msg, PayloadType.TSr);
    if (!saPayload || !tsi || !tsr) {
      const error = notifiesOf(msg).find((n) => isErrorNotify(n.notifyType));
      return fail(error ? peerRefused(error.notifyType, 'ESP', this.offered!) : 'the response carries no SA/TSi/TSr');
    }
    const check = checkSelectedProposal(this.offered!, fromProposalSubstructures(saPayload.proposals));
    if (!check.ok) return fail(check.error);
    const ts = checkInitiatorTs(this.proposed!, { tsi: tsi.selectors, tsr: tsr.selectors });
    if (!ts.ok) return fail(ts.error);
    const transport = findNotify(msg, NotifyType.USE_TRANSPORT_MODE) !== undefined;
    if (config.mode === 'transport' && !transport) return fail('peer did not accept transport mode (no USE_TRANSPORT_MODE in its response)');
    if (config.mode === 'tunnel' && transport) return fail('peer answered USE_TRANSPORT_MODE to a tunnel mode request');
    this.negotiated = { config, proposal: check.selected, mode: config.mode, tsi: ts.tsi, tsr: ts.tsr };
    this.install();
    return 'done';
  }

  override processRequest(msg: TaskMessage): void {
    if (msg.exchangeType !== ExchangeType.IKE_AUTH) return;
    const { sa } = this;
    const saPayload = firstOfType(msg, PayloadType.SA);
    const tsi = firstOfType(msg, PayloadType.TSi);
    const tsr = firstOfType(msg, PayloadType.TSr);
    if (!saPayload || !tsi || !tsr) return; // childless IKE_AUTH (RFC 6023)
    const wantsTransport = findNotify(msg, NotifyType.USE_TRANSPORT_MODE) !== undefined;
    const received = fromProposalSubstructures(saPayload.proposals);
    let reason = 'no CHILD_SA configured';
    let failure = NotifyType.TS_UNACCEPTABLE;
    // a request several children could take is meant for the narrowest that takes it whole
    for (const config of childrenByFit(sa.config.children, { tsi: tsi.selectors, tsr: tsr.selectors }, sa.local.address, sa.remote.address)) {
      const ts = selectResponderTs({
        tsi: tsi.selectors,
        tsr: tsr.selectors,
        localConfig: config.localTs,
        remoteConfig: config.remoteTs,
        localAddr: sa.local.address,
        remoteAddr: sa.remote.address,
      });
      if ('error' in ts) {
        reason = `child ${config.name}: ${ts.reason}`;
        continue;
      }
      const configured = withoutKe(implementedProposals(config.espProposals));
      const proposal = selectProposal(received, configured);
      if (!proposal) {
        reason = `child ${config.name}: ${noAcceptableProposal('ESP', received, configured)}`;
        failure = NotifyType.NO_PROPOSAL_CHOSEN;
        continue;
      }
      if (proposal.spi.length !== 4) {
        reason = `child ${config.name}: ESP proposal with a ${proposal.spi.length}-octet SPI`;
        failure = NotifyType.NO_PROPOSAL_CHOSEN;
        continue;
      }
      if (wantsTransport !== (config.mode === 'transport')) {
        reason = `child ${config.name}: peer requested ${wantsTransport ? 'transport' : 'tunnel'} mode, configured ${config.mode}`;
        failure = NotifyType.NO_PROPOSAL_CHOSEN;
        continue;
      }
      if (config.mode === 'transport') {
        const allowed = transportModeAllowed({ local: ts.tsr, remote: ts.tsi }, sa.local.address, sa.remote.address, { remoteBehindNat: sa.natRemote });
        if (!allowed.allowed) {
          reason = `child ${config.name}: transport mode not possible: ${allowed.reason}`;
          failure = NotifyType.TS_UNACCEPTABLE;
          continue;
        }
      }
      this.negotiated = { config, proposal, mode: config.mode, tsi: ts.tsi, tsr: ts.tsr };
      this.inboundSpi = sa.backend.allocateSpi();
      this.install();
      return;
    }
    this.failure = failure;
    sa.log.log('warn', `${sa.name}: CHILD_SA refused (${notifyTypeName(failure)}): ${reason}; the IKE_SA stays up`);
    sa.observer.childFailed(sa.config.children[0]?.name ?? '(none)', `refused with ${notifyTypeName(failure)}: ${reason}`);
  }

  override buildResponse(msg: TaskMessage): TaskStatus {
    if (msg.exchangeType !== ExchangeType.IKE_AUTH) return 'need_more';
    if (this.failure !== undefined) {
      msg.payloads.push(notify(this.failure));
      return 'done';
    }
    const n = this.negotiated;
    if (!n) return 'done';
    if (n.mode === 'transport') msg.payloads.push(notify(NotifyType.USE_TRANSPORT_MODE));
    msg.payloads.push(
      { type: PayloadType.SA, proposals: [toProposalSubstructure(n.proposal, n.proposal.number, spiBytes(this.inboundSpi!))] },
      tsPayload(PayloadType.TSi, rangesToPayload(n.tsi)),
      tsPayload(PayloadType.TSr, rangesToPayload(n.tsr)),
    );
    return 'done';
  }

  /** KEYMAT (§2.17) and the inbound + outbound SAs and policies. */
  private install(): void {
    const { sa } = this;
    const n = this.negotiated!;
    const initiator = sa.originalInitiator;
    const record = installChildSa(sa, {
      config: n.config,
      proposal: n.proposal,
      mode: n.mode,
      localRanges: initiator ? n.tsi : n.tsr,
      remoteRanges: initiator ? n.tsr : n.tsi,
      inboundSpi: this.inboundSpi!,
      Ni: sa.Ni!,
      Nr: sa.Nr!,
      weInitiated: initiator,
      reqid: n.config.reqid ?? nextReqid++,
      policies: true,
      activate: true,
    });
    sa.children.push(record);
    this.sa.pendingChildEvents.push(record);
  }
}

export interface ChildInstall {
  config: ChildPeerConfig;
  proposal: SelectedProposal;
  mode: IpsecMode;
  /** Our side's / the peer's selectors. */
  localRanges: TsRange[];
  remoteRanges: TsRange[];
  inboundSpi: number;
  /** The nonces of the exchange creating the CHILD_SA (IKE_SA_INIT's for IKE_AUTH). */
  Ni: Buffer;
  Nr: Buffer;
  /** g^ir of a CREATE_CHILD_SA with KE payloads (PFS). */
  gir?: Buffer;
  /** We sent the request of the exchange creating it (KEYMAT's direction, §2.17). */
  weInitiated: boolean;
  reqid: number;
  /** Install the policies (a new CHILD_SA), or keep the ones there (a rekey: same reqid). */
  policies: boolean;
  /** Switch the reqid's outbound traffic to the new outbound SA now. */
  activate: boolean;
}

/** A fresh reqid for a CHILD_SA whose configuration has none. */
export function allocateReqid(config: ChildPeerConfig): number {
  return config.reqid ?? nextReqid++;
}

/**
 * KEYMAT (§2.17) and the inbound + outbound SAs (and, for a new CHILD_SA,
 * its policies) through the IpsecBackend; returns the CHILD_SA's record.
 */
export function installChildSa(sa: IkeSaContext, n: ChildInstall): ChildSaRecord {
  // §1.4.1: an IKE SA being deleted takes its CHILD_SAs with it on both sides; one whose
  // CREATE_CHILD_SA was answered meanwhile is not installed (no SA, no policy, no route).
  if (sa.state === 'deleting' || sa.state === 'destroyed') throw new Error(`the IKE_SA is being deleted: CHILD_SA ${n.config.name} not installed`);
  const encr = transformOfType(n.proposal, TransformType.ENCR)!;
  const aead = aeadFor(encr.id, encr.keyLength ?? 0);
  if (!aead) throw new Error(`ESP: ${formatProposal(n.proposal)} selected but not implemented`);
  const keys = sa.keys!;
  const keymat = deriveChildKeymat({
    prf: keys.prf,
    skD: keys.skD,
    Ni: n.Ni,
    Nr: n.Nr,
    gir: n.gir,
    encrKeyMaterialLength: aead.keyMaterialLength,
    integKeyLength: 0,
  });
  const inKeys = n.weInitiated ? keymat.responderToInitiator : keymat.initiatorToResponder;
  const outKeys = n.weInitiated ? keymat.initiatorToResponder : keymat.responderToInitiator;
  const outboundSpi = n.proposal.spi.readUInt32BE(0);
  const reqid = n.reqid;
  const lifetimes = jitteredLifetimes(n.config);
  const localTs = toEspSelectors(n.localRanges);
  const remoteTs = toEspSelectors(n.remoteRanges);
  const encap = sa.udpEncapsulation ? { localPort: sa.local.port, remotePort: sa.remote.port } : undefined;
  const esn = transformOfType(n.proposal, TransformType.ESN)?.id === EsnId.ESN;
  const common = {
    localAddress: sa.local.address,
    remoteAddress: sa.remote.address,
    mode: n.mode,
    ...(encap ? { encap } : {}),
    esn,
    lifetimes,
    reqid,
    localSelectors: localTs,
    remoteSelectors: remoteTs,
  };
  const inbound: SaSpec = {
    ...common,
    spi: n.inboundSpi,
    direction: 'in',
    aead: { transformId: encr.id, keyBits: encr.keyLength ?? 0, keyMaterial: inKeys.encr },
    replayWindow: n.config.replayWindow,
  };
  const outbound: SaSpec = {
    ...common,
    spi: outboundSpi,
    direction: 'out',
    aead: { transformId: encr.id, keyBits: encr.keyLength ?? 0, keyMaterial: outKeys.encr },
    replayWindow: 0,
  };
  try {
    sa.backend.addSa(inbound);
    sa.backend.addSa(outbound);
  } finally {
    wipe(keymat);
  }
  const policy = (direction: 'in' | 'out', local: EspSelector[], remote: EspSelector[]): PolicySpec => ({
    reqid,
    direction,
    local,
    remote,
    action: 'protect',
    failureMode: n.config.policy,
    priority: 100,
    mode: n.mode,
    localAddress: sa.local.address,
    remoteAddress: sa.remote.address,
  });
  if (n.policies) {
    sa.backend.addPolicy(policy('out', localTs, remoteTs));
    sa.backend.addPolicy(policy('in', localTs, remoteTs));
  }
  if (n.activate) sa.backend.setOutboundSa(reqid, outboundSpi);
  const record: ChildSaRecord = {
    name: n.config.name,
    reqid,
    mode: n.mode,
    encap: encap !== undefined,
    proposal: n.proposal,
    inboundSpi: n.inboundSpi,
    outboundSpi,
    localTs: n.localRanges.map((r) => formatRanges([r])),
    remoteTs: n.remoteRanges.map((r) => formatRanges([r])),
    installedAt: Date.now(),
    config: n.config,
    rekeySeconds: lifetimes.softSeconds,
    localRanges: n.localRanges,
    remoteRanges: n.remoteRanges,
  };
  sa.log.log(
    'info',
    `${sa.name}: CHILD_SA ${n.config.name}{${reqid}} ${n.policies ? 'established' : 'rekeyed'} with SPIs ${spiHex(n.inboundSpi)}_i ${spiHex(outboundSpi)}_o, ${n.mode}${encap ? ' (UDP-encapsulated)' : ''}, ${formatProposal(n.proposal)}${n.gir ? ' (PFS)' : ''}, TS ${formatRanges(n.localRanges)} === ${formatRanges(n.remoteRanges)}`,
  );
  return record;
}

/**
 * The SA lifetimes with the rekey (soft) limits lowered by a random amount up
 * to rand_time / rand_bytes / rand_packets (default life − rekey, as
 * strongSwan), at most half the rekey limit: the two peers' rekeys rarely
 * start together.
 */
export function jitteredLifetimes(config: ChildPeerConfig): SaLifetimes {
  const l = config.lifetimes;
  const jitter = (soft: number, hard: number, rand: number | undefined): number => {
    if (soft <= 0) return soft;
    const span = Math.min(rand ?? Math.max(0, hard - soft), Math.floor(soft / 2));
    return span > 0 ? soft - Math.floor(Math.random() * (span + 1)) : soft;
  };
  return {
    ...l,
    softSeconds: jitter(l.softSeconds, l.hardSeconds, config.rand?.seconds),
    softBytes: jitter(l.softBytes, l.hardBytes, config.rand?.bytes),
    softPackets: jitter(l.softPackets, l.hardPackets, config.rand?.packets),
  };
}
