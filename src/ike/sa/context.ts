/**
 * The state of one IKE SA that its tasks share (RFC 7296 §2): SPIs, roles,
 * the IKE_SA_INIT octets AUTH signs, nonces, keys, what was learned about the
 * peer. The exchange engine (./ike-sa.ts) owns message IDs, retransmission
 * and encryption; tasks read and fill this.
 */
import { randomBytes } from 'node:crypto';
import type { Certificate, Identity } from '../../pki/index.js';
import type { IpsecBackend } from '../../esp/api.js';
import type { Endpoint } from '../net/udp.js';
import type { SelectedProposal } from '../proposal/index.js';
import type { IkeKeyset } from './keyset.js';
import type { AuthClass, ChildPeerConfig, IkePeerConfig } from './peer-config.js';
import type { TsRange } from '../ts/index.js';
import type { Logger } from '../log.js';
import { INLINE_PUBLIC_KEY_CRYPTO } from '../../crypto/pool/inline.js';
import type { PublicKeyCrypto } from '../../crypto/pool/types.js';

/** Why an IKE_AUTH was refused, for counting: `null-auth` = NULL Authentication offered where a certificate is required. */
export type AuthRefusal = 'null-auth' | 'other';

export type IkeSaState = 'created' | 'connecting' | 'established' | 'deleting' | 'destroyed';

/**
 * Why an IKE SA ended, for what comes next (strongSwan's dpd_action and
 * close_action): `dead-peer` — an exchange was not answered after every
 * retransmission (§2.4, DPD included); `peer-deleted` — the peer sent a Delete;
 * `failed` — it never got established (or the peer reported AUTHENTICATION_FAILED);
 * `replaced` — a new IKE SA of the same identities took over (INITIAL_CONTACT /
 * `unique`); `rekeyed` — its successor carries its CHILD_SAs (§2.18);
 * `expired` — not rekeyed within rekey_time + over_time; `local` — we deleted it.
 */
export type IkeSaEndCause = 'local' | 'peer-deleted' | 'dead-peer' | 'failed' | 'replaced' | 'rekeyed' | 'expired';

export interface ChildSaRecord {
  name: string;
  reqid: number;
  mode: 'transport' | 'tunnel';
  encap: boolean;
  proposal: SelectedProposal;
  inboundSpi: number;
  outboundSpi: number;
  localTs: string[];
  remoteTs: string[];
  installedAt: number;
  /** What rekeying needs: the configuration and the negotiated selectors (ours / the peer's). */
  config?: ChildPeerConfig;
  /** Seconds after installedAt at which we rekey it (the jittered rekey_time; 0 = never). */
  rekeySeconds?: number;
  localRanges?: TsRange[];
  remoteRanges?: TsRange[];
}

/** What tasks report about CHILD SAs; the exchange engine turns these into IkeSa events. */
export interface ChildSaObserver {
  childEstablished(child: ChildSaRecord): void;
  childFailed(name: string, reason: string): void;
}

export class IkeSaContext {
  state: IkeSaState = 'created';
  /** Where key exchange and AUTH signatures run (set by the manager: daemon.crypto_workers); inline by default. */
  crypto: PublicKeyCrypto = INLINE_PUBLIC_KEY_CRYPTO;
  /** Set by the IkeSa that owns this context. */
  observer: ChildSaObserver = { childEstablished: () => {}, childFailed: () => {} };
  spiI: Buffer;
  spiR: Buffer = Buffer.alloc(8);

  /** RealMessage1 / RealMessage2 of §2.15: the IKE_SA_INIT request and response as sent/received. */
  initRequest?: Buffer;
  initResponse?: Buffer;
  Ni?: Buffer;
  Nr?: Buffer;
  selected?: SelectedProposal;
  keys?: IkeKeyset;

  /** NAT detection (§2.23): we are behind a NAT / the peer is (or pretends to be). */
  natLocal = false;
  natRemote = false;
  peerFragmentation = false;
  /** SIGNATURE_HASH_ALGORITHMS the peer announced (RFC 7427 §4); empty = it did not. */
  peerSignatureHashes: number[] = [];
  /** SHA-1 SPKI hashes of the CAs the peer asked certificates from (CERTREQ). */
  peerCertReqs: Buffer[] = [];
  peerId?: Identity;
  peerCertificate?: Certificate;
  /** How the peer authenticated in IKE_AUTH: with a certificate's key, or NULL Authentication (RFC 7619). */
  peerAuth?: AuthClass;
  /**
   * Told of each IKE_AUTH we refuse (AUTHENTICATION_FAILED), with why in one
   * word: `null-auth` for a peer that offered NULL Authentication where a
   * certificate is required. The manager counts them.
   */
  onAuthRefused: (kind: AuthRefusal) => void = () => {};
  /** Initiator: send INITIAL_CONTACT in IKE_AUTH (§2.4: we hold no other IKE SA with this peer). */
  sendInitialContact = true;
  /** Responder: the peer's IKE_AUTH carried INITIAL_CONTACT — its older IKE SAs with us are stale. */
  peerInitialContact = false;
  establishedAt?: number;
  readonly children: ChildSaRecord[] = [];
  /** CHILD SAs installed during the current exchange, announced when it completes. */
  readonly pendingChildEvents: ChildSaRecord[] = [];
  /**
   * Where the nonces of CREATE_CHILD_SA exchanges come from (§2.10); an IKE SA
   * made by a rekey inherits it. Tests set a fixed source to drive §2.8.1
   * collisions in a chosen nonce order.
   */
  nonces: (length: number) => Buffer = randomBytes;
  /**
   * The other IKE SAs of the same manager (set when it registers this one): a
   * CHILD_SA of a reqid that another IKE SA carries too (reauthentication)
   * hands the reqid's traffic and policies to it when it goes.
   */
  otherIkeSas: () => IkeSaContext[] = () => [];

  constructor(
    readonly originalInitiator: boolean,
    readonly config: IkePeerConfig,
    public local: Endpoint,
    public remote: Endpoint,
    readonly backend: IpsecBackend,
    readonly log: Logger,
    spiI: Buffer,
  ) {
    this.spiI = spiI;
  }

  /**
   * IKE_AUTH is done (or the SA was made by a rekey): drop what only the
   * initial exchanges use. The IKE_SA_INIT messages and nonces are what AUTH
   * signs (§2.15), CERTREQs pick the certificate IKE_AUTH sends and
   * SIGNATURE_HASH_ALGORITHMS its signature scheme (RFC 7427); a rekey
   * brings its own nonces, a retransmitted request is answered from the
   * response cache (./windows.ts). The SPIs get an allocation of their own so
   * that they do not keep an 8 KiB slab of Buffer's pool alive.
   */
  releaseInitialExchange(): void {
    this.initRequest = this.initResponse = this.Ni = this.Nr = undefined;
    this.peerCertReqs = [];
    this.peerSignatureHashes = [];
    this.spiI = ownCopy(this.spiI);
    this.spiR = ownCopy(this.spiR);
  }

  /** Our own SPI (§2.6: the initiator chose SPIi, the responder SPIr). */
  get localSpi(): Buffer {
    return this.originalInitiator ? this.spiI : this.spiR;
  }

  /** UDP encapsulation for ESP: a NAT in the path, or forced by configuration. */
  get udpEncapsulation(): boolean {
    return this.natLocal || this.natRemote || this.config.forceEncap;
  }

  get name(): string {
    return `${this.config.name}[${this.spiI.toString('hex')}_i ${this.spiR.toString('hex')}_r]`;
  }
}

/** `b` in an ArrayBuffer of its own when it is a slice of a larger one (Buffer's pool, a datagram). */
export function ownCopy(b: Buffer): Buffer {
  if (b.byteOffset === 0 && b.buffer.byteLength === b.length) return b;
  const copy = Buffer.alloc(b.length);
  copy.set(b);
  return copy;
}

/**
 * The octets a CHILD_SA record keeps for its life (the peer's SPI, the
 * selectors' addresses) moved into one allocation of its own: as decoded they
 * are slices of Buffer's shared 8 KiB pool, and a few long-lived slices keep
 * whole slabs alive. The record is updated in place (tables key on it).
 */
export function compactChildRecord(child: ChildSaRecord): void {
  const pieces = [child.proposal.spi, ...[...(child.localRanges ?? []), ...(child.remoteRanges ?? [])].flatMap((r) => [r.startAddress, r.endAddress])];
  if (pieces.every((b) => b.byteOffset === 0 && b.buffer.byteLength === b.length)) return;
  const arena = Buffer.alloc(pieces.reduce((n, b) => n + b.length, 0));
  let at = 0;
  const own = (b: Buffer): Buffer => {
    arena.set(b, at);
    at += b.length;
    return arena.subarray(at - b.length, at);
  };
  child.proposal = { ...child.proposal, spi: own(child.proposal.spi) };
  const ranges = (list: TsRange[] | undefined): TsRange[] | undefined =>
    list?.map((r) => ({ ...r, startAddress: own(r.startAddress), endAddress: own(r.endAddress) }));
  if (child.localRanges) child.localRanges = ranges(child.localRanges)!;
  if (child.remoteRanges) child.remoteRanges = ranges(child.remoteRanges)!;
}
