/**
 * What one IKE SA needs from the configuration, resolved: parsed proposals,
 * loaded credentials and trust store. The daemon builds these from the YAML
 * config (src/config); tests build them directly.
 */
import type { KeyObject } from 'node:crypto';
import type { Certificate, Identity, IdentityPattern, TrustStore } from '../../pki/index.js';
import type { IpsecMode, PolicyFailureMode, SaLifetimes } from '../../esp/api.js';
import type { Proposal } from '../proposal/index.js';
import type { TrafficSelectorConfig } from '../ts/syntax.js';

export interface ChildPeerConfig {
  name: string;
  /** ESP proposals; a KE transform in them is the PFS group for CREATE_CHILD_SA only. */
  espProposals: Proposal[];
  mode: IpsecMode;
  /** Traffic selectors as configured (CIDR, `dynamic`, `[proto/port]` suffixes), parsed. */
  localTs: TrafficSelectorConfig[];
  remoteTs: TrafficSelectorConfig[];
  replayWindow: number;
  lifetimes: SaLifetimes;
  policy: PolicyFailureMode;
  /**
   * The reqid tying this child's SAs to its policies (XFRM's meaning): fixed
   * per configured child so that a trap policy installed before negotiation
   * and the CHILD_SA's own policies are the same policy. Absent: one is
   * allocated per CHILD_SA.
   */
  reqid?: number;
  /** rand_time / rand_bytes / rand_packets: the most subtracted at random from the rekey limits (default: life − rekey, as strongSwan). */
  rand?: { seconds: number; bytes: number; packets: number };
}

export type SendCertPolicy = 'always' | 'ifasked' | 'never';

/** `pubkey`: certificates and signatures; `null`: RFC 7619 NULL Authentication. */
export type AuthClass = 'pubkey' | 'null';

export interface IkePeerConfig {
  name: string;
  ikeProposals: Proposal[];
  localId: Identity;
  /** The identity the peer must prove; undefined accepts any identity its certificate carries. */
  remoteId?: Identity;
  /** Instead of one remote identity, a set (`*.eqiad.example`, `%fromcert-ip`): no IDr is sent, the peer's ID must match it. */
  remoteIdPattern?: IdentityPattern;
  /**
   * Set on a group connection's per-peer instance: the peer's address. `name`
   * stays the group's, so `down NAME` and `list-sas NAME` cover all instances.
   */
  instancePeer?: string;
  /**
   * How we authenticate (RFC 7296 §2.15): `pubkey` signs AUTH with `privateKey`
   * and sends `certificate`; `null` is RFC 7619's NULL Authentication (AUTH
   * method 13, no credentials; `localId` is then usually ID_NULL). Absent: pubkey.
   */
  localAuth?: AuthClass;
  /** How the peer must authenticate: `pubkey` (a certificate chaining to `trust`) or `null` (RFC 7619: it proves nothing). Absent: pubkey. */
  remoteAuth?: AuthClass;
  /** Our certificate; required with localAuth pubkey. */
  certificate?: Certificate;
  intermediates: Certificate[];
  /** The key of `certificate`; required with localAuth pubkey. */
  privateKey?: KeyObject;
  trust: TrustStore;
  strictCrl: boolean;
  sendCert: SendCertPolicy;
  sendCertReq: boolean;
  /** RFC 7383: announce support and fragment when the peer supports it too. */
  fragmentation: boolean;
  /** Largest IKE datagram (IP payload) before fragmenting; strongSwan's default is 1280. */
  fragmentSize: number;
  /** Pretend a NAT so that IKE floats to 4500 and ESP is UDP-encapsulated (`encap: yes`). */
  forceEncap: boolean;
  children: ChildPeerConfig[];
  /**
   * IKE SA lifetimes in seconds (swanctl's rekey_time / rand_time / over_time,
   * resolved by src/config/lifetimes.ts); absent or rekeyTime 0: never rekeyed.
   */
  ikeLifetimes?: { rekeyTime: number; randTime: number; overTime: number; reauthTime?: number };
  /** Seconds without traffic from the peer before a liveness check (§2.4, swanctl's dpd_delay); 0 or absent: none. */
  dpdDelay?: number;
  /**
   * swanctl's `unique`: what a new IKE SA between the same identities does to
   * the old ones. `no` (default): replace them when the peer sent INITIAL_CONTACT;
   * `never`: keep all; `replace`: always delete the old; `keep`: delete the new.
   */
  unique?: 'no' | 'never' | 'keep' | 'replace';
}
