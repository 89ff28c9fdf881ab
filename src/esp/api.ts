/**
 * The narrow interface between IKE and the IPsec datapath — the role XFRM
 * plays between charon and the Linux kernel (RFC 4301 §4.4: SPD, SAD).
 * IKE installs and removes SAs and policies only through an `IpsecBackend`;
 * the datapath reports acquires (traffic without an SA) and lifetime expiries
 * back through events. Nothing here knows about IKE messages.
 */

export type IpsecMode = 'transport' | 'tunnel';
export type Direction = 'in' | 'out';

/** A traffic selector range (RFC 7296 §3.13.1); addresses of one family. */
export interface TrafficSelector {
  /** IP protocol number, 0 = any. */
  protocol: number;
  startAddress: string;
  endAddress: string;
  /** 0..65535; a full range means any port. */
  startPort: number;
  endPort: number;
}

/** UDP encapsulation (RFC 3948) of an SA: outer UDP ports. */
export interface UdpEncapsulation {
  localPort: number;
  remotePort: number;
}

/** Limits after which an SA must be rekeyed (soft) or deleted (hard); 0 = no limit. */
export interface SaLifetimes {
  softSeconds: number;
  hardSeconds: number;
  softBytes: number;
  hardBytes: number;
  softPackets: number;
  hardPackets: number;
}

export interface AeadKeying {
  /** IKEv2 ENCR transform ID (20 = AES-GCM-16). */
  transformId: number;
  keyBits: number;
  /** key ‖ salt, exactly as taken from KEYMAT (RFC 7296 §2.17, RFC 4106 §8.1). The backend copies it. */
  keyMaterial: Uint8Array;
}

/** One unidirectional ESP SA (RFC 4301 §4.4.2). */
export interface SaSpec {
  spi: number;
  direction: Direction;
  /** Outer addresses: for `in`, `local` is the destination the SPI was allocated for. */
  localAddress: string;
  remoteAddress: string;
  mode: IpsecMode;
  encap?: UdpEncapsulation;
  aead: AeadKeying;
  esn: boolean;
  /** Anti-replay window in packets; 0 disables replay checking (inbound only). */
  replayWindow: number;
  lifetimes: SaLifetimes;
  /** Ties the SA to its policies (as XFRM's reqid): one CHILD_SA = one reqid. */
  reqid: number;
  /** The CHILD_SA's negotiated selectors, used for the inbound policy check (RFC 4301 §5.2). */
  localSelectors: TrafficSelector[];
  remoteSelectors: TrafficSelector[];
}

export interface SaCounters {
  bytes: number;
  packets: number;
  replayDrops: number;
  icvFailures: number;
  badPadding: number;
  policyDrops: number;
  /** Seconds since the epoch of the last packet that used the SA, 0 if none. */
  lastUsed: number;
}

export type PolicyAction = 'protect' | 'bypass' | 'discard';

/**
 * What happens to traffic that matches a `protect` policy without a usable SA:
 * `private` drops it (and asks IKE for an SA), `private-or-clear` sends it in the
 * clear while negotiation fails, counted as a fallback.
 */
export type PolicyFailureMode = 'private' | 'private-or-clear';

export interface PolicySpec {
  reqid: number;
  direction: Direction;
  local: TrafficSelector[];
  remote: TrafficSelector[];
  action: PolicyAction;
  failureMode: PolicyFailureMode;
  /** Lower value = checked first. */
  priority: number;
  /** For protect policies: the outer addresses/mode that an acquire negotiates. */
  mode: IpsecMode;
  localAddress: string;
  remoteAddress: string;
  /**
   * A trap over many peers (a group connection's prefixes): packets are held,
   * and acquires rate-limited, per destination address, since each
   * destination is a negotiation of its own.
   */
  perDestination?: boolean;
}

export interface AcquireEvent {
  reqid: number;
  /** The selector of the packet that triggered it (RFC 7296 §2.9: sent as the first TS). */
  packetSelector: { local: TrafficSelector; remote: TrafficSelector };
}

export interface ExpireEvent {
  reqid: number;
  spi: number;
  direction: Direction;
  hard: boolean;
  reason: 'time' | 'bytes' | 'packets';
}

export interface IpsecBackendEvents {
  acquire(e: AcquireEvent): void;
  expire(e: ExpireEvent): void;
}

export interface IpsecBackend {
  /** A fresh inbound SPI, unique among installed and reserved SPIs; never 0..255 (RFC 4303 §2.1). */
  allocateSpi(): number;
  addSa(sa: SaSpec): void;
  /**
   * Remove one SA; unknown SPIs are ignored (return false). With `graceMs`,
   * the SA is deleted now as far as lifetimes go (it raises no expire event
   * any more) but removed only when the grace ends, an inbound SA taking the
   * packets still in flight meanwhile; a later call without grace removes it
   * at once.
   */
  deleteSa(spi: number, direction: Direction, graceMs?: number): boolean;
  querySa(spi: number, direction: Direction): SaCounters | undefined;
  /** Switch a CHILD_SA's outbound traffic to this SA (make-before-break rekeys). */
  setOutboundSa(reqid: number, spi: number): void;
  /** The SPI of the SA a reqid's outbound traffic uses now, if any. */
  activeOutboundSpi(reqid: number): number | undefined;
  addPolicy(policy: PolicySpec): void;
  deletePolicy(reqid: number, direction: Direction): boolean;
  on<K extends keyof IpsecBackendEvents>(event: K, handler: IpsecBackendEvents[K]): void;
}
