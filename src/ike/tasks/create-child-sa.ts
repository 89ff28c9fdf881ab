/**
 * CREATE_CHILD_SA (RFC 7296 §1.3): the request/response work of the three
 * uses of the exchange, in the shape of libcharon's child_rekey / ike_rekey /
 * child_create tasks — the exchange engine (../sa/ike-sa.ts) decides when to
 * run them and what happens to the old SAs:
 * - §1.3.3 rekeying a CHILD_SA (REKEY_SA notify naming the SA; KE with the
 *   PFS group of the ESP proposal, KEYMAT from g^ir, §2.17);
 * - §1.3.1 a new CHILD_SA (responder side);
 * - §1.3.2 rekeying the IKE SA (new SPIs, SKEYSEED from the old SK_d, §2.18).
 */
import { keyExchangeGroup } from '../../crypto/ke/index.js';
import { CryptoError, type KeyExchangePrivate } from '../../crypto/types.js';
import { ExchangeType, NotifyType, PayloadType, isErrorNotify } from '../codec/index.js';
import { nonce, notify, tsPayload } from '../codec/build.js';
import {
  checkKeGroup,
  checkSelectedProposal,
  fromProposalSubstructures,
  initialKeGroup,
  keGroupOf,
  noAcceptableProposal,
  offersKeGroup,
  promoteKeGroup,
  selectProposal,
  toProposalSubstructure,
  toProposalSubstructures,
  type Proposal,
  type SelectedProposal,
} from '../proposal/index.js';
import { ProtocolId } from '../transforms.js';
import type { IpsecMode } from '../../esp/api.js';
import { checkInitiatorTs, childrenByFit, initiatorTs, rangesToPayload, selectResponderTs, transportModeAllowed, type TsRange } from '../ts/index.js';
import { IkeSaContext, type ChildSaRecord } from '../sa/context.js';
import { deriveKeyset } from '../sa/keyset.js';
import { implementedProposals } from '../sa/suites.js';
import type { ChildPeerConfig } from '../sa/peer-config.js';
import { randomSpi, NONCE_LENGTH } from './ike-init.js';
import { allocateReqid, installChildSa } from './child-create.js';
import { findNotify, firstOfType, notifiesOf, peerRefused, type TaskMessage } from './task.js';

function spiBytes(spi: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(spi >>> 0);
  return b;
}

function groupData(group: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(group);
  return b;
}

/** A refusal: the notify answered, and the operator's line. */
export class CreateChildRefusal extends Error {
  constructor(
    readonly notifyType: number,
    message: string,
    readonly data?: Buffer,
  ) {
    super(message);
  }
}

/** What a responder did with a CREATE_CHILD_SA request. */
export type CreateChildOutcome =
  | { kind: 'child-rekey'; old: ChildSaRecord; record: ChildSaRecord; nonces: Buffer[] }
  | { kind: 'child-new'; record: ChildSaRecord }
  | { kind: 'ike-rekey'; ctx: IkeSaContext; nonces: Buffer[] };

/** g^ir for a KE payload, the peer's invalid value being its error (INVALID_SYNTAX). */
function sharedSecret(ke: KeyExchangePrivate, peer: Buffer): Buffer {
  try {
    return ke.computeSharedSecret(peer);
  } catch (err) {
    if (err instanceof CryptoError) throw new CreateChildRefusal(NotifyType.INVALID_SYNTAX, `peer's KE payload is invalid: ${err.message}`);
    throw err;
  }
}

/**
 * Responder: select, key and install (the new inbound SA is in the SAD before
 * the response leaves; a rekey's outbound SA is installed but not switched to
 * — that waits for the initiator's Delete of the old SA). Fills `response`.
 * `findRekeyed` maps the REKEY_SA SPI (the initiator's inbound = our
 * outbound SPI) to the current CHILD_SA.
 */
export function respondCreateChildSa(
  sa: IkeSaContext,
  msg: TaskMessage,
  response: TaskMessage,
  findRekeyed: (outboundSpi: number) => ChildSaRecord | undefined,
): CreateChildOutcome {
  const saPayload = firstOfType(msg, PayloadType.SA);
  const ni = firstOfType(msg, PayloadType.NONCE);
  const ke = firstOfType(msg, PayloadType.KE);
  if (!saPayload || !ni) throw new CreateChildRefusal(NotifyType.INVALID_SYNTAX, 'CREATE_CHILD_SA request without SA or Nonce');
  const received = fromProposalSubstructures(saPayload.proposals);
  const Ni = Buffer.from(ni.nonce);
  const Nr = sa.nonces(NONCE_LENGTH);

  // §1.3.2: IKE SA rekey — IKE proposals, no TS.
  if (received.some((p) => p.protocol === ProtocolId.IKE)) {
    const ours = implementedProposals(sa.config.ikeProposals);
    const selected = selectProposal(received, ours, ke ? { preferKeGroup: ke.dhGroup } : {});
    if (!selected || selected.spi.length !== 8) {
      throw new CreateChildRefusal(NotifyType.NO_PROPOSAL_CHOSEN, `IKE_SA rekey: ${noAcceptableProposal('IKE', received, ours)}`);
    }
    const decision = checkKeGroup(selected, ke?.dhGroup);
    if (decision.action === 'invalid-ke') {
      throw new CreateChildRefusal(
        NotifyType.INVALID_KE_PAYLOAD,
        `IKE_SA rekey: peer sent KE group ${ke?.dhGroup ?? '(none)'}, answering INVALID_KE_PAYLOAD for ${decision.requestGroup}`,
        groupData(decision.requestGroup),
      );
    }
    if (decision.action !== 'accept' || !ke) throw new CreateChildRefusal(NotifyType.NO_PROPOSAL_CHOSEN, 'IKE_SA rekey without a key exchange');
    const group = keyExchangeGroup(decision.group);
    if (!group) throw new CreateChildRefusal(NotifyType.NO_PROPOSAL_CHOSEN, `key exchange group ${decision.group} is not implemented`);
    const own = group.generate();
    const gir = sharedSecret(own, ke.keyExchangeData);
    const spiI = Buffer.from(selected.spi);
    const spiR = randomSpi();
    const keys = sa.keys!;
    const ctx = successorContext(sa, false, spiI, spiR);
    ctx.selected = selected;
    ctx.Ni = Ni;
    ctx.Nr = Nr;
    ctx.keys = deriveKeyset({ selected, Ni, Nr, gir, spiI, spiR, rekeyOf: { skD: keys.skD, prf: keys.prf } });
    gir.fill(0);
    response.payloads.push({ type: PayloadType.SA, proposals: [toProposalSubstructure(selected, selected.number, spiR)] }, nonce(Nr), {
      type: PayloadType.KE,
      dhGroup: decision.group,
      keyExchangeData: own.publicValue,
    });
    return { kind: 'ike-rekey', ctx, nonces: [Ni, Nr] };
  }

  const tsi = firstOfType(msg, PayloadType.TSi);
  const tsr = firstOfType(msg, PayloadType.TSr);
  if (!tsi || !tsr) throw new CreateChildRefusal(NotifyType.INVALID_SYNTAX, 'CREATE_CHILD_SA request for a CHILD_SA without TSi/TSr');
  const wantsTransport = findNotify(msg, NotifyType.USE_TRANSPORT_MODE) !== undefined;
  const rekey = notifiesOf(msg).find((n) => n.notifyType === NotifyType.REKEY_SA && n.protocolId === ProtocolId.ESP);

  let old: ChildSaRecord | undefined;
  let config: ChildPeerConfig | undefined;
  let localRanges: TsRange[] = [];
  let remoteRanges: TsRange[] = [];
  let reason = 'no CHILD_SA configured';
  let failure: number = NotifyType.TS_UNACCEPTABLE;
  const candidates: ChildPeerConfig[] = [];
  if (rekey) {
    old = rekey.spi.length === 4 ? findRekeyed(rekey.spi.readUInt32BE(0)) : undefined;
    if (!old?.config || !old.localRanges || !old.remoteRanges) {
      throw new CreateChildRefusal(
        NotifyType.CHILD_SA_NOT_FOUND,
        `peer wants to rekey CHILD_SA with SPI ${rekey.spi.toString('hex')}, which does not exist (any more)`,
      );
    }
    candidates.push(old.config);
  } else {
    // a request several children could take is meant for the narrowest that takes it whole
    candidates.push(...childrenByFit(sa.config.children, { tsi: tsi.selectors, tsr: tsr.selectors }, sa.local.address, sa.remote.address));
  }
  let selected: SelectedProposal | undefined;
  for (const c of candidates) {
    const ts = selectResponderTs({
      tsi: tsi.selectors,
      tsr: tsr.selectors,
      localConfig: c.localTs,
      remoteConfig: c.remoteTs,
      localAddr: sa.local.address,
      remoteAddr: sa.remote.address,
    });
    if ('error' in ts) {
      reason = `child ${c.name}: ${ts.reason}`;
      continue;
    }
    const configured = implementedProposals(c.espProposals);
    const p = selectProposal(received, configured, ke ? { preferKeGroup: ke.dhGroup } : {});
    if (!p || p.spi.length !== 4) {
      reason = `child ${c.name}: ${noAcceptableProposal('ESP', received, configured)}`;
      failure = NotifyType.NO_PROPOSAL_CHOSEN;
      continue;
    }
    if (wantsTransport !== (c.mode === 'transport')) {
      reason = `child ${c.name}: peer requested ${wantsTransport ? 'transport' : 'tunnel'} mode, configured ${c.mode}`;
      failure = NotifyType.NO_PROPOSAL_CHOSEN;
      continue;
    }
    if (
      c.mode === 'transport' &&
      !transportModeAllowed({ local: ts.tsr, remote: ts.tsi }, sa.local.address, sa.remote.address, { remoteBehindNat: sa.natRemote }).allowed
    ) {
      reason = `child ${c.name}: transport mode not possible`;
      failure = NotifyType.TS_UNACCEPTABLE;
      continue;
    }
    config = c;
    selected = p;
    localRanges = ts.tsr;
    remoteRanges = ts.tsi;
    break;
  }
  if (!config || !selected) throw new CreateChildRefusal(failure, `CHILD_SA ${old ? 'rekey' : 'creation'} refused: ${reason}`);
  const decision = checkKeGroup(selected, ke?.dhGroup);
  if (decision.action === 'invalid-ke') {
    throw new CreateChildRefusal(
      NotifyType.INVALID_KE_PAYLOAD,
      `CHILD_SA ${config.name}: peer sent KE group ${ke?.dhGroup ?? '(none)'}, the selected proposal uses ${decision.requestGroup}: answering INVALID_KE_PAYLOAD`,
      groupData(decision.requestGroup),
    );
  }
  let gir: Buffer | undefined;
  let ownKe: Buffer | undefined;
  if (decision.action === 'accept') {
    const group = keyExchangeGroup(decision.group);
    if (!group) throw new CreateChildRefusal(NotifyType.NO_PROPOSAL_CHOSEN, `key exchange group ${decision.group} is not implemented`);
    const own = group.generate();
    gir = sharedSecret(own, ke!.keyExchangeData);
    ownKe = own.publicValue;
  }
  const inboundSpi = sa.backend.allocateSpi();
  const record = installChildSa(sa, {
    config,
    proposal: selected,
    mode: config.mode,
    localRanges,
    remoteRanges,
    inboundSpi,
    Ni,
    Nr,
    ...(gir ? { gir } : {}),
    weInitiated: false,
    reqid: old ? old.reqid : allocateReqid(config),
    policies: !old,
    activate: !old,
  });
  gir?.fill(0);
  if (config.mode === 'transport') response.payloads.push(notify(NotifyType.USE_TRANSPORT_MODE));
  response.payloads.push({ type: PayloadType.SA, proposals: [toProposalSubstructure(selected, selected.number, spiBytes(inboundSpi))] }, nonce(Nr));
  if (ownKe && decision.action === 'accept') response.payloads.push({ type: PayloadType.KE, dhGroup: decision.group, keyExchangeData: ownKe });
  response.payloads.push(tsPayload(PayloadType.TSi, rangesToPayload(remoteRanges)), tsPayload(PayloadType.TSr, rangesToPayload(localRanges)));
  return old ? { kind: 'child-rekey', old, record, nonces: [Ni, Nr] } : { kind: 'child-new', record };
}

/** The context of the IKE SA that replaces `old` (§2.18): the rekey's initiator is the new SA's original initiator. */
function successorContext(old: IkeSaContext, weInitiated: boolean, spiI: Buffer, spiR: Buffer): IkeSaContext {
  const ctx = new IkeSaContext(weInitiated, old.config, old.local, old.remote, old.backend, old.log, spiI);
  ctx.spiR = spiR;
  ctx.natLocal = old.natLocal;
  ctx.natRemote = old.natRemote;
  ctx.peerFragmentation = old.peerFragmentation;
  ctx.peerSignatureHashes = old.peerSignatureHashes;
  ctx.peerCertReqs = old.peerCertReqs;
  ctx.nonces = old.nonces;
  if (old.peerId) ctx.peerId = old.peerId;
  if (old.peerCertificate) ctx.peerCertificate = old.peerCertificate;
  if (old.peerAuth) ctx.peerAuth = old.peerAuth;
  ctx.onAuthRefused = old.onAuthRefused;
  return ctx;
}

/**
 * RFC 7296 §2.8.1: of two colliding rekeys, the exchange holding the lowest of
 * the four nonces made the redundant SA. Whether that is `ours` (our exchange's
 * Ni and Nr) rather than `theirs`.
 */
export function lowestNonceIn(ours: Buffer[], theirs: Buffer[]): boolean {
  const lowest = (list: Buffer[]): Buffer => list.reduce((a, b) => (Buffer.compare(a, b) <= 0 ? a : b));
  return Buffer.compare(lowest(ours), lowest(theirs)) < 0;
}

/** Initiator outcomes of a CREATE_CHILD_SA response. */
export type RequestResult<T> =
  | { status: 'ok'; value: T; nonces: Buffer[] }
  /** INVALID_KE_PAYLOAD with a group we offer: send again with it. */
  | { status: 'retry' }
  /** TEMPORARY_FAILURE (§2.25): try again a little later. */
  | { status: 'temporary' }
  | { status: 'not-found' }
  | { status: 'failed'; reason: string };

function responseError<T>(
  msg: TaskMessage,
  keGroup: number | undefined,
  proposals: Proposal[],
  retries: { n: number },
  onGroup: (g: number) => void,
): RequestResult<T> | undefined {
  const invalidKe = findNotify(msg, NotifyType.INVALID_KE_PAYLOAD);
  if (invalidKe) {
    const wanted = invalidKe.data.length === 2 ? invalidKe.data.readUInt16BE(0) : undefined;
    if (wanted === undefined || wanted === keGroup || !offersKeGroup(proposals, wanted) || ++retries.n > 3) {
      return { status: 'failed', reason: `peer answered INVALID_KE_PAYLOAD asking for group ${wanted ?? '(malformed)'}, which we do not offer` };
    }
    onGroup(wanted);
    return { status: 'retry' };
  }
  if (findNotify(msg, NotifyType.TEMPORARY_FAILURE)) return { status: 'temporary' };
  if (findNotify(msg, NotifyType.CHILD_SA_NOT_FOUND)) return { status: 'not-found' };
  const error = notifiesOf(msg).find((n) => isErrorNotify(n.notifyType));
  if (error) return { status: 'failed', reason: peerRefused(error.notifyType, proposals[0]?.protocol === ProtocolId.IKE ? 'IKE' : 'ESP', proposals) };
  return undefined;
}

/** What a CREATE_CHILD_SA request we send creates: a rekey's replacement or a new CHILD_SA. */
interface ChildTarget {
  config: ChildPeerConfig;
  mode: IpsecMode;
  /** The selectors we propose (ours = TSi, the peer's = TSr). */
  localRanges: TsRange[];
  remoteRanges: TsRange[];
  reqid: number;
  /** A rekey: the CHILD_SA replaced (REKEY_SA names its inbound SPI, policies stay). */
  rekeys?: ChildSaRecord;
}

/**
 * Initiator of CREATE_CHILD_SA for a CHILD_SA (§1.3.1 new, §1.3.3 rekey), with
 * PFS when the ESP proposals carry a KE group (the KE payload is optional for a
 * new CHILD_SA and sent when configured, as for a rekey).
 */
abstract class ChildSaRequest {
  private readonly proposals: Proposal[];
  private keGroup: number | undefined;
  private ke?: KeyExchangePrivate;
  private Ni?: Buffer;
  private inboundSpi?: number;
  private readonly retries = { n: 0 };

  constructor(
    protected readonly sa: IkeSaContext,
    protected readonly target: ChildTarget,
  ) {
    this.proposals = implementedProposals(target.config.espProposals);
    this.keGroup = initialKeGroup(this.proposals);
  }

  /** The nonce of our request (collision resolution, §2.8.1). */
  get nonce(): Buffer | undefined {
    return this.Ni;
  }

  build(msg: TaskMessage): void {
    const { sa, target } = this;
    msg.exchangeType = ExchangeType.CREATE_CHILD_SA;
    if (this.inboundSpi === undefined) this.inboundSpi = sa.backend.allocateSpi();
    this.Ni ??= sa.nonces(NONCE_LENGTH);
    const offered = this.keGroup === undefined ? this.proposals : promoteKeGroup(this.proposals, this.keGroup);
    if (this.keGroup !== undefined && this.ke?.group.groupId !== this.keGroup) {
      const group = keyExchangeGroup(this.keGroup);
      if (!group) throw new Error(`key exchange group ${this.keGroup} is not implemented`);
      this.ke = group.generate();
    }
    if (target.rekeys) msg.payloads.push(notify(NotifyType.REKEY_SA, { protocolId: ProtocolId.ESP, spi: spiBytes(target.rekeys.inboundSpi) }));
    if (target.mode === 'transport') msg.payloads.push(notify(NotifyType.USE_TRANSPORT_MODE));
    msg.payloads.push({ type: PayloadType.SA, proposals: toProposalSubstructures(offered, spiBytes(this.inboundSpi)) }, nonce(this.Ni));
    if (this.ke) msg.payloads.push({ type: PayloadType.KE, dhGroup: this.keGroup!, keyExchangeData: this.ke.publicValue });
    msg.payloads.push(tsPayload(PayloadType.TSi, rangesToPayload(target.localRanges)), tsPayload(PayloadType.TSr, rangesToPayload(target.remoteRanges)));
  }

  /** Install the new SAs (outbound switched at once; a new CHILD_SA gets its policies) or say why not. */
  process(msg: TaskMessage): RequestResult<ChildSaRecord> {
    const { sa, target } = this;
    const err = responseError<ChildSaRecord>(msg, this.keGroup, this.proposals, this.retries, (g) => (this.keGroup = g));
    if (err) return err;
    const saPayload = firstOfType(msg, PayloadType.SA);
    const nr = firstOfType(msg, PayloadType.NONCE);
    const tsi = firstOfType(msg, PayloadType.TSi);
    const tsr = firstOfType(msg, PayloadType.TSr);
    if (!saPayload || !nr || !tsi || !tsr) return { status: 'failed', reason: 'the CREATE_CHILD_SA response lacks SA, Nonce or TS' };
    const offered = this.keGroup === undefined ? this.proposals : promoteKeGroup(this.proposals, this.keGroup);
    const check = checkSelectedProposal(offered, fromProposalSubstructures(saPayload.proposals));
    if (!check.ok) return { status: 'failed', reason: check.error };
    if (check.selected.spi.length !== 4) return { status: 'failed', reason: 'ESP proposal without a 4-octet SPI' };
    const ts = checkInitiatorTs({ tsi: target.localRanges, tsr: target.remoteRanges }, { tsi: tsi.selectors, tsr: tsr.selectors });
    if (!ts.ok) return { status: 'failed', reason: ts.error };
    const transport = findNotify(msg, NotifyType.USE_TRANSPORT_MODE) !== undefined;
    // A new CHILD_SA must get the mode asked for (§1.3.1); a rekey keeps the mode it had.
    if (!target.rekeys && (target.mode === 'transport') !== transport)
      return { status: 'failed', reason: `peer answered ${transport ? 'transport' : 'tunnel'} mode to a ${target.mode} mode request` };
    const decision = checkKeGroup(check.selected, this.ke ? this.keGroup : undefined);
    let gir: Buffer | undefined;
    if (decision.action === 'accept') {
      const ke = firstOfType(msg, PayloadType.KE);
      if (!ke || ke.dhGroup !== decision.group || !this.ke) return { status: 'failed', reason: 'the response lacks the KE payload of the selected group' };
      try {
        gir = sharedSecret(this.ke, ke.keyExchangeData);
      } catch (e) {
        return { status: 'failed', reason: (e as Error).message };
      }
    } else if (decision.action === 'invalid-ke') {
      return { status: 'failed', reason: 'the peer selected a proposal with another KE group than it was sent' };
    }
    const Nr = Buffer.from(nr.nonce);
    const record = installChildSa(sa, {
      config: target.config,
      proposal: check.selected,
      mode: target.mode,
      localRanges: ts.tsi,
      remoteRanges: ts.tsr,
      inboundSpi: this.inboundSpi!,
      Ni: this.Ni!,
      Nr,
      ...(gir ? { gir } : {}),
      weInitiated: true,
      reqid: target.reqid,
      policies: !target.rekeys,
      activate: true,
    });
    gir?.fill(0);
    this.ke = undefined;
    return { status: 'ok', value: record, nonces: [this.Ni!, Nr] };
  }

  /** The request failed for good: release the reserved SPI. */
  abandon(): void {
    if (this.inboundSpi !== undefined) this.sa.backend.deleteSa(this.inboundSpi, 'in');
  }
}

/** Initiator of a CHILD_SA rekey (§1.3.3). */
export class ChildRekeyRequest extends ChildSaRequest {
  constructor(
    sa: IkeSaContext,
    readonly old: ChildSaRecord,
  ) {
    super(sa, { config: old.config!, mode: old.mode, localRanges: old.localRanges!, remoteRanges: old.remoteRanges!, reqid: old.reqid, rekeys: old });
  }
}

/** Initiator of an additional CHILD_SA on an established IKE SA (§1.3.1): a configured child, or one an acquire asks for. */
export class NewChildRequest extends ChildSaRequest {
  constructor(
    sa: IkeSaContext,
    readonly config: ChildPeerConfig,
  ) {
    const proposed = initiatorTs({ localConfig: config.localTs, remoteConfig: config.remoteTs, localAddr: sa.local.address, remoteAddr: sa.remote.address });
    super(sa, { config, mode: config.mode, localRanges: proposed.tsi, remoteRanges: proposed.tsr, reqid: allocateReqid(config) });
  }
}

/** Initiator of an IKE SA rekey (§1.3.2, §2.18). */
export class IkeRekeyRequest {
  private readonly proposals: Proposal[];
  private keGroup: number | undefined;
  private ke?: KeyExchangePrivate;
  private readonly Ni: Buffer;
  private readonly spiI = randomSpi();
  private readonly retries = { n: 0 };

  constructor(private readonly sa: IkeSaContext) {
    this.Ni = sa.nonces(NONCE_LENGTH);
    this.proposals = implementedProposals(sa.config.ikeProposals);
    this.keGroup = sa.selected ? (keGroupOf(sa.selected) ?? initialKeGroup(this.proposals)) : initialKeGroup(this.proposals);
  }

  get nonce(): Buffer {
    return this.Ni;
  }

  build(msg: TaskMessage): void {
    msg.exchangeType = ExchangeType.CREATE_CHILD_SA;
    if (this.keGroup === undefined) throw new Error('no IKE proposal with a key exchange group');
    if (this.ke?.group.groupId !== this.keGroup) {
      const group = keyExchangeGroup(this.keGroup);
      if (!group) throw new Error(`key exchange group ${this.keGroup} is not implemented`);
      this.ke = group.generate();
    }
    msg.payloads.push({ type: PayloadType.SA, proposals: toProposalSubstructures(promoteKeGroup(this.proposals, this.keGroup), this.spiI) }, nonce(this.Ni), {
      type: PayloadType.KE,
      dhGroup: this.keGroup,
      keyExchangeData: this.ke.publicValue,
    });
  }

  process(msg: TaskMessage): RequestResult<IkeSaContext> {
    const err = responseError<IkeSaContext>(msg, this.keGroup, this.proposals, this.retries, (g) => (this.keGroup = g));
    if (err) return err;
    const saPayload = firstOfType(msg, PayloadType.SA);
    const nr = firstOfType(msg, PayloadType.NONCE);
    const ke = firstOfType(msg, PayloadType.KE);
    if (!saPayload || !nr || !ke) return { status: 'failed', reason: 'the IKE_SA rekey response lacks SA, Nonce or KE' };
    const check = checkSelectedProposal(promoteKeGroup(this.proposals, this.keGroup!), fromProposalSubstructures(saPayload.proposals));
    if (!check.ok) return { status: 'failed', reason: check.error };
    if (check.selected.spi.length !== 8 || ke.dhGroup !== this.keGroup || !this.ke)
      return { status: 'failed', reason: 'the IKE_SA rekey response has a bad SPI or KE group' };
    let gir: Buffer;
    try {
      gir = sharedSecret(this.ke, ke.keyExchangeData);
    } catch (e) {
      return { status: 'failed', reason: (e as Error).message };
    }
    const Nr = Buffer.from(nr.nonce);
    const spiR = Buffer.from(check.selected.spi);
    const keys = this.sa.keys!;
    const ctx = successorContext(this.sa, true, this.spiI, spiR);
    ctx.selected = check.selected;
    ctx.Ni = this.Ni;
    ctx.Nr = Nr;
    ctx.keys = deriveKeyset({ selected: check.selected, Ni: this.Ni, Nr, gir, spiI: this.spiI, spiR, rekeyOf: { skD: keys.skD, prf: keys.prf } });
    gir.fill(0);
    this.ke = undefined;
    return { status: 'ok', value: ctx, nonces: [this.Ni, Nr] };
  }
}
