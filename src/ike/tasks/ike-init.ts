/**
 * IKE_SA_INIT (RFC 7296 §1.2, §2.6, §2.10, §2.14): SA, KE and Nonce, the
 * capability notifies (IKEV2_FRAGMENTATION_SUPPORTED, RFC 7383 §2.3;
 * SIGNATURE_HASH_ALGORITHMS, RFC 7427 §4), INVALID_KE_PAYLOAD retries (§1.2)
 * and COOKIE echoing (§2.6), then SKEYSEED and the IKE SA keys.
 */
import { randomBytes } from 'node:crypto';
import { keyExchangeGroup } from '../../crypto/ke/index.js';
import { CryptoError, type KeyExchangeGroup, type KeyExchangePrivate } from '../../crypto/types.js';
import { CryptoWorkerError, type KeyExchangeHandle } from '../../crypto/pool/types.js';
import { encodeSignatureHashAlgorithms, decodeSignatureHashAlgorithms, SignatureHashAlgorithm } from '../../crypto/rfc7427.js';
import { ExchangeType, NotifyType, PayloadType, isErrorNotify } from '../codec/index.js';
import { notify, nonce } from '../codec/build.js';
import {
  checkKeGroup,
  checkSelectedProposal,
  formatProposal,
  noAcceptableProposal,
  fromProposalSubstructures,
  initialKeGroup,
  offersKeGroup,
  selectProposal,
  toProposalSubstructure,
  toProposalSubstructures,
  type Proposal,
  type SelectedProposal,
} from '../proposal/index.js';
import type { IkeSaContext } from '../sa/context.js';
import { deriveKeyset } from '../sa/keyset.js';
import { implementedProposals } from '../sa/suites.js';
import { BaseTask, ExchangeFailure, findNotify, firstOfType, notifiesOf, peerRefused, type TaskMessage, type TaskStatus } from './task.js';

/** Our nonces are 32 octets: at least half the key size of every PRF we implement (§2.10). */
export const NONCE_LENGTH = 32;
/** Hashes tunsec accepts and announces for RFC 7427 signatures; Identity (RFC 8420) for Ed25519 / Ed448 peers. */
export const ANNOUNCED_SIGNATURE_HASHES = [
  SignatureHashAlgorithm.SHA2_256,
  SignatureHashAlgorithm.SHA2_384,
  SignatureHashAlgorithm.SHA2_512,
  SignatureHashAlgorithm.IDENTITY,
];
/** How often an initiator follows INVALID_KE_PAYLOAD / COOKIE before giving up on this attempt. */
const MAX_RESTARTS = 4;

export class IkeInitTask extends BaseTask {
  readonly name = 'IKE_INIT';
  private ke?: KeyExchangePrivate;
  /** Crypto off the main thread (sa.crypto not inline): our KE value, made in a worker, and its failure. */
  private pooledKe?: KeyExchangeHandle;
  private pooledKeFailure?: unknown;
  /** Crypto off the main thread: g^ir (and the responder's own KE data) computed by prepare for this peer KE data, or the error. */
  private prepared?: { peerKe: Buffer; gir?: Buffer; publicValue?: Buffer; error?: unknown };
  /** Our KE data, kept after the private value is dropped (the responder sends it after deriving keys). */
  private ownKeData?: Buffer;
  private keGroup?: number;
  private cookie?: Buffer;
  private restarts = 0;
  /** The configured IKE proposals cut down to what tunsec implements: what is offered or matched. */
  private readonly proposals: Proposal[];

  constructor(private readonly sa: IkeSaContext) {
    super();
    this.proposals = implementedProposals(sa.config.ikeProposals);
  }

  /** The cookie we echo (the exchange engine puts it first in the request, §2.6). */
  get echoCookie(): Buffer | undefined {
    return this.cookie;
  }

  /** The group our IKE_SA_INIT request offers KE data of. */
  private requestGroup(): KeyExchangeGroup {
    this.keGroup ??= initialKeGroup(this.proposals);
    if (this.keGroup === undefined)
      throw new ExchangeFailure(`connection ${this.sa.config.name}: no IKE proposal that tunsec implements carries a key exchange group`, undefined);
    const group = keyExchangeGroup(this.keGroup);
    if (!group) throw new ExchangeFailure(`key exchange group ${this.keGroup} is not implemented`, undefined);
    return group;
  }

  /** Our KE data for the request: made here (inline), or by prepareRequest in a worker. */
  private requestKeData(group: KeyExchangeGroup): Buffer {
    if (this.sa.crypto.inline) {
      // §2.6 / §1.2: a restart after COOKIE or INVALID_KE_PAYLOAD keeps the nonce; a new group needs a new KE.
      if (!this.ke || this.ke.group.groupId !== group.groupId) this.ke = group.generate();
      return this.ke.publicValue;
    }
    if (this.pooledKeFailure !== undefined)
      throw new ExchangeFailure(`key exchange (group ${group.groupId}) failed: ${errorText(this.pooledKeFailure)}`, undefined);
    if (this.pooledKe?.groupId !== group.groupId) throw new ExchangeFailure(`key exchange (group ${group.groupId}) not prepared`, undefined);
    return this.pooledKe.publicValue;
  }

  prepareRequest(exchangeType: number): Promise<void> | undefined {
    if (exchangeType !== ExchangeType.IKE_SA_INIT || this.sa.crypto.inline || this.pooledKeFailure !== undefined) return undefined;
    let group: KeyExchangeGroup;
    try {
      group = this.requestGroup();
    } catch {
      return undefined; // buildRequest reports it
    }
    if (this.pooledKe?.groupId === group.groupId) return undefined;
    return this.sa.crypto.generateKeyExchange(group.groupId).then(
      (own) => void (this.pooledKe = own),
      (err: unknown) => void (this.pooledKeFailure = err),
    );
  }

  prepareResponse(msg: TaskMessage): Promise<void> | undefined {
    if (msg.exchangeType !== ExchangeType.IKE_SA_INIT || this.sa.crypto.inline) return undefined;
    const ke = firstOfType(msg, PayloadType.KE);
    const own = this.pooledKe;
    if (!ke || !own || ke.dhGroup !== own.groupId) return undefined; // processResponse reports it
    this.pooledKe = undefined;
    const peerKe = ke.keyExchangeData;
    return this.sa.crypto.computeSharedSecret(own, peerKe).then(
      (gir) => void (this.prepared = { peerKe, gir, publicValue: own.publicValue }),
      (error: unknown) => void (this.prepared = { peerKe, error }),
    );
  }

  prepareRespond(msg: TaskMessage): Promise<void> | undefined {
    if (msg.exchangeType !== ExchangeType.IKE_SA_INIT || this.sa.crypto.inline) return undefined;
    // the manager files the IKE SA under our SPI as soon as it has the request, before this work is done
    if (this.sa.spiR.equals(ZERO_SPI)) this.sa.spiR = randomSpi();
    let decided: { group: number; peerKe: Buffer };
    try {
      decided = this.decide(msg);
    } catch {
      return undefined; // processRequest reports it
    }
    const { peerKe } = decided;
    return this.sa.crypto.respondKeyExchange(decided.group, peerKe).then(
      (r) => void (this.prepared = { peerKe, gir: r.sharedSecret, publicValue: r.publicValue }),
      (error: unknown) => void (this.prepared = { peerKe, error }),
    );
  }

  override buildRequest(msg: TaskMessage): void {
    if (msg.exchangeType !== ExchangeType.IKE_SA_INIT) return;
    const group = this.requestGroup();
    const keData = this.requestKeData(group);
    this.sa.Ni ??= randomBytes(NONCE_LENGTH);
    if (this.cookie) msg.payloads.push(notify(NotifyType.COOKIE, { data: this.cookie }));
    msg.payloads.push(
      { type: PayloadType.SA, proposals: toProposalSubstructures(this.proposals) },
      { type: PayloadType.KE, dhGroup: group.groupId, keyExchangeData: keData },
      nonce(this.sa.Ni),
    );
    this.addCapabilityNotifies(msg);
  }

  private addCapabilityNotifies(msg: TaskMessage): void {
    if (this.sa.config.fragmentation) msg.payloads.push(notify(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED));
    msg.payloads.push(notify(NotifyType.SIGNATURE_HASH_ALGORITHMS, { data: encodeSignatureHashAlgorithms(ANNOUNCED_SIGNATURE_HASHES) }));
  }

  private learnCapabilities(msg: TaskMessage): void {
    this.sa.peerFragmentation = findNotify(msg, NotifyType.IKEV2_FRAGMENTATION_SUPPORTED) !== undefined;
    const hashes = findNotify(msg, NotifyType.SIGNATURE_HASH_ALGORITHMS);
    if (hashes) {
      try {
        this.sa.peerSignatureHashes = decodeSignatureHashAlgorithms(hashes.data);
      } catch {
        this.sa.log.log('warn', `${this.sa.name}: malformed SIGNATURE_HASH_ALGORITHMS notify ignored`);
      }
    }
  }

  override processResponse(msg: TaskMessage): TaskStatus {
    if (msg.exchangeType !== ExchangeType.IKE_SA_INIT) return 'need_more';
    const { sa } = this;
    const cookie = findNotify(msg, NotifyType.COOKIE);
    if (cookie) {
      if (++this.restarts > MAX_RESTARTS) throw new ExchangeFailure('responder keeps demanding COOKIEs; giving up', undefined);
      if (cookie.data.length < 1 || cookie.data.length > 64)
        throw new ExchangeFailure(`COOKIE of ${cookie.data.length} octets (1..64 allowed, §3.10.1)`, undefined);
      this.cookie = Buffer.from(cookie.data);
      sa.log.log('info', `${sa.name}: responder demands a COOKIE, retrying IKE_SA_INIT with it`);
      return 'retry';
    }
    const invalidKe = findNotify(msg, NotifyType.INVALID_KE_PAYLOAD);
    if (invalidKe) {
      const wanted = invalidKe.data.length === 2 ? invalidKe.data.readUInt16BE(0) : undefined;
      if (wanted === undefined || !offersKeGroup(this.proposals, wanted) || wanted === this.keGroup || ++this.restarts > MAX_RESTARTS) {
        throw new ExchangeFailure(`peer sent INVALID_KE_PAYLOAD asking for group ${wanted ?? '(malformed)'}, which we do not offer`, undefined);
      }
      sa.log.log('info', `${sa.name}: peer wants key exchange group ${wanted} instead of ${this.keGroup}, retrying`);
      this.keGroup = wanted;
      return 'retry';
    }
    const error = notifiesOf(msg).find((n) => isErrorNotify(n.notifyType));
    if (error) throw new ExchangeFailure(`IKE_SA_INIT failed: ${peerRefused(error.notifyType, 'IKE', this.proposals)}`, undefined);

    const saPayload = firstOfType(msg, PayloadType.SA);
    const ke = firstOfType(msg, PayloadType.KE);
    const nr = firstOfType(msg, PayloadType.NONCE);
    if (!saPayload || !ke || !nr) throw new ExchangeFailure('IKE_SA_INIT response lacks SA, KE or Nonce', undefined);
    const check = checkSelectedProposal(this.proposals, fromProposalSubstructures(saPayload.proposals));
    if (!check.ok) throw new ExchangeFailure(`IKE_SA_INIT response: ${check.error}`, undefined);
    if (ke.dhGroup !== this.keGroup) throw new ExchangeFailure(`IKE_SA_INIT response: KE group ${ke.dhGroup}, we sent ${this.keGroup}`, undefined);
    sa.selected = check.selected;
    sa.Nr = Buffer.from(nr.nonce);
    this.learnCapabilities(msg);
    this.deriveKeys(ke.keyExchangeData);
    sa.log.log('info', `${sa.name}: IKE_SA_INIT done, selected ${formatProposal(check.selected)}`);
    return 'done';
  }

  /** Responder: the proposal and KE group for the peer's request; ExchangeFailure with the notify to answer otherwise. */
  private decide(msg: TaskMessage): { selected: SelectedProposal; group: number; peerKe: Buffer; ni: Buffer } {
    const saPayload = firstOfType(msg, PayloadType.SA);
    const ke = firstOfType(msg, PayloadType.KE);
    const ni = firstOfType(msg, PayloadType.NONCE);
    if (!saPayload || !ke || !ni) throw new ExchangeFailure('IKE_SA_INIT request lacks SA, KE or Nonce', NotifyType.INVALID_SYNTAX);
    const received = fromProposalSubstructures(saPayload.proposals);
    const selected = selectProposal(received, this.proposals);
    if (!selected) {
      throw new ExchangeFailure(noAcceptableProposal('IKE', received, this.proposals), NotifyType.NO_PROPOSAL_CHOSEN);
    }
    const decision = checkKeGroup(selected, ke.dhGroup);
    if (decision.action !== 'accept') {
      const group = decision.action === 'invalid-ke' ? decision.requestGroup : 0;
      const data = Buffer.alloc(2);
      data.writeUInt16BE(group);
      throw new ExchangeFailure(
        `peer sent KE group ${ke.dhGroup}, the selected proposal uses ${group}: answering INVALID_KE_PAYLOAD`,
        NotifyType.INVALID_KE_PAYLOAD,
        true,
        data,
      );
    }
    if (!keyExchangeGroup(decision.group)) throw new ExchangeFailure(`key exchange group ${decision.group} is not implemented`, NotifyType.NO_PROPOSAL_CHOSEN);
    return { selected, group: decision.group, peerKe: ke.keyExchangeData, ni: ni.nonce };
  }

  override processRequest(msg: TaskMessage): void {
    if (msg.exchangeType !== ExchangeType.IKE_SA_INIT) return;
    const { sa } = this;
    const { selected, group, peerKe, ni } = this.decide(msg);
    if (sa.crypto.inline) this.ke = keyExchangeGroup(group)!.generate();
    this.keGroup = group;
    sa.selected = selected;
    sa.Ni = Buffer.from(ni);
    sa.Nr = randomBytes(NONCE_LENGTH);
    if (sa.spiR.equals(ZERO_SPI)) sa.spiR = randomSpi();
    this.learnCapabilities(msg);
    this.deriveKeys(peerKe, NotifyType.INVALID_SYNTAX);
  }

  override buildResponse(msg: TaskMessage): TaskStatus {
    if (msg.exchangeType !== ExchangeType.IKE_SA_INIT) return 'need_more';
    const { sa } = this;
    msg.payloads.push(
      { type: PayloadType.SA, proposals: [toProposalSubstructure(sa.selected!, sa.selected!.number)] },
      { type: PayloadType.KE, dhGroup: this.keGroup!, keyExchangeData: this.ownKeData! },
      nonce(sa.Nr!),
    );
    this.addCapabilityNotifies(msg);
    return 'done';
  }

  /** g^ir, SKEYSEED and SK_* (§2.14). A bad peer KE value is the peer's error, not a crash. */
  private deriveKeys(peerKe: Buffer, notifyOnError?: number): void {
    const { sa } = this;
    let gir: Buffer;
    try {
      ({ gir, ownKeData: this.ownKeData } = this.sharedSecret(peerKe));
    } catch (err) {
      if (err instanceof CryptoError) throw new ExchangeFailure(`peer's KE payload is invalid: ${err.message}`, notifyOnError);
      // not the peer's fault: a crypto worker failed; the responder asks for a later try
      if (err instanceof CryptoWorkerError)
        throw new ExchangeFailure(`key exchange failed: ${err.message}`, notifyOnError === undefined ? undefined : NotifyType.TEMPORARY_FAILURE);
      throw err;
    }
    sa.keys = deriveKeyset({ selected: sa.selected!, Ni: sa.Ni!, Nr: sa.Nr!, gir, spiI: sa.spiI, spiR: sa.spiR });
    gir.fill(0);
    this.ke = undefined;
  }

  /** g^ir and our KE data: computed here (inline), or by prepareResponse / prepareRespond in a worker. */
  private sharedSecret(peerKe: Buffer): { gir: Buffer; ownKeData: Buffer } {
    if (this.sa.crypto.inline) return { gir: this.ke!.computeSharedSecret(peerKe), ownKeData: this.ke!.publicValue };
    const prepared = this.prepared;
    this.prepared = undefined;
    if (!prepared || !prepared.peerKe.equals(peerKe)) throw new CryptoWorkerError('key exchange not prepared for this KE payload');
    if (prepared.error !== undefined) throw prepared.error;
    return { gir: prepared.gir!, ownKeData: prepared.publicValue! };
  }
}

const ZERO_SPI = Buffer.alloc(8);

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A random, non-zero IKE SPI (§2.6). */
export function randomSpi(): Buffer {
  for (;;) {
    const spi = randomBytes(8);
    if (!spi.equals(Buffer.alloc(8))) return spi;
  }
}
