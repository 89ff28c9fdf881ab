/**
 * IKE_SA_INIT (RFC 7296 §1.2, §2.6, §2.10, §2.14): SA, KE and Nonce, the
 * capability notifies (IKEV2_FRAGMENTATION_SUPPORTED, RFC 7383 §2.3;
 * SIGNATURE_HASH_ALGORITHMS, RFC 7427 §4), INVALID_KE_PAYLOAD retries (§1.2)
 * and COOKIE echoing (§2.6), then SKEYSEED and the IKE SA keys.
 */
import { randomBytes } from 'node:crypto';
import { keyExchangeGroup } from '../../crypto/ke/index.js';
import { CryptoError, type KeyExchangePrivate } from '../../crypto/types.js';
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

  override buildRequest(msg: TaskMessage): void {
    if (msg.exchangeType !== ExchangeType.IKE_SA_INIT) return;
    const { config } = this.sa;
    this.keGroup ??= initialKeGroup(this.proposals);
    if (this.keGroup === undefined)
      throw new ExchangeFailure(`connection ${config.name}: no IKE proposal that tunsec implements carries a key exchange group`, undefined);
    const group = keyExchangeGroup(this.keGroup);
    if (!group) throw new ExchangeFailure(`key exchange group ${this.keGroup} is not implemented`, undefined);
    // §2.6 / §1.2: a restart after COOKIE or INVALID_KE_PAYLOAD keeps the nonce; a new group needs a new KE.
    if (!this.ke || this.ke.group.groupId !== this.keGroup) this.ke = group.generate();
    this.sa.Ni ??= randomBytes(NONCE_LENGTH);
    if (this.cookie) msg.payloads.push(notify(NotifyType.COOKIE, { data: this.cookie }));
    msg.payloads.push(
      { type: PayloadType.SA, proposals: toProposalSubstructures(this.proposals) },
      { type: PayloadType.KE, dhGroup: this.keGroup, keyExchangeData: this.ke.publicValue },
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

  override processRequest(msg: TaskMessage): void {
    if (msg.exchangeType !== ExchangeType.IKE_SA_INIT) return;
    const { sa } = this;
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
    const group = keyExchangeGroup(decision.group);
    if (!group) throw new ExchangeFailure(`key exchange group ${decision.group} is not implemented`, NotifyType.NO_PROPOSAL_CHOSEN);
    this.ke = group.generate();
    this.keGroup = decision.group;
    sa.selected = selected;
    sa.Ni = Buffer.from(ni.nonce);
    sa.Nr = randomBytes(NONCE_LENGTH);
    sa.spiR = randomSpi();
    this.learnCapabilities(msg);
    this.deriveKeys(ke.keyExchangeData, NotifyType.INVALID_SYNTAX);
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
      gir = this.ke!.computeSharedSecret(peerKe);
    } catch (err) {
      if (err instanceof CryptoError) throw new ExchangeFailure(`peer's KE payload is invalid: ${err.message}`, notifyOnError);
      throw err;
    }
    this.ownKeData = this.ke!.publicValue;
    sa.keys = deriveKeyset({ selected: sa.selected!, Ni: sa.Ni!, Nr: sa.Nr!, gir, spiI: sa.spiI, spiR: sa.spiR });
    gir.fill(0);
    this.ke = undefined;
  }
}

/** A random, non-zero IKE SPI (§2.6). */
export function randomSpi(): Buffer {
  for (;;) {
    const spi = randomBytes(8);
    if (!spi.equals(Buffer.alloc(8))) return spi;
  }
}
