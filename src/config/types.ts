/**
 * The loaded configuration, with every default applied and every derived
 * value computed. Key names are the YAML (swanctl.conf) names; times are in
 * seconds, byte and packet counts plain numbers (0 = no limit); relative
 * paths are resolved against the configuration file's directory.
 */
import type { ProposalList } from '../ike/proposal/parse.js';
import type { ListenAddress } from './fields.js';
import type { Identity } from './identity.js';
import type { ChildLifetimes, IkeLifetimes } from './lifetimes.js';
import type { LogSubsystem, SecretType, StartAction } from './schema.js';
import type { TrafficSelectorConfig } from '../ike/ts/syntax.js';
import type { ManualConfig } from './manual.js';
import type { NegotiatedGroup, PolicyGroups } from './policy-groups.js';
export type { PolicyGroups, PolicyGroupEntry, PolicyGroupName } from './policy-groups.js';

export type { Identity, IdentityType } from './identity.js';
export type { ListenAddress } from './fields.js';
export type { LogSubsystem, SecretType, StartAction } from './schema.js';
export type { TrafficSelectorConfig } from '../ike/ts/syntax.js';
export type { ProposalList } from '../ike/proposal/parse.js';
export type { ManualConfig, ManualSaConfig } from './manual.js';

export interface TunsecConfig {
  daemon: DaemonConfig;
  authorities: AuthoritiesConfig;
  /** By section name (`private-moon`, `ecdsa`, …). */
  secrets: Record<string, SecretConfig>;
  /** By connection name, in file order. */
  connections: Record<string, ConnectionConfig>;
  /** Static SAs and policies (`manual.sas`), installed at start without IKE. */
  manual: ManualConfig;
  /** `policy_groups.dir`, read: every group's prefixes (absent without the key). */
  policy_groups?: PolicyGroups;
}

export interface DaemonConfig {
  pid_file: string;
  control_socket: string;
  /** The VICI socket (strongSwan's control protocol, for swanctl); absent = off. */
  vici?: string;
  /** Level per subsystem (-1..4), `default` applied to every subsystem not given. */
  log: Record<Exclude<LogSubsystem, 'default'>, number>;
  /** Directory receiving Wireshark's `ikev2_decryption_table` and `esp_sa` files (a Wireshark configuration directory); absent = no key log. */
  keylog?: string;
  /** Metrics listen address; absent = no metrics endpoint. */
  metrics?: ListenAddress;
  /** What happens to traffic covered by tunsec's policies while the global off-switch is engaged. */
  global: 'clear' | 'drop';
  /** As responder, our proposal order decides (strongSwan's charon.prefer_configured_proposals). */
  prefer_configured_proposals: boolean;
  /** Seconds between NAT-T keepalives while we are behind a NAT (RFC 3948 §2.3; charon.keep_alive); 0 = none. */
  keep_alive: number;
  /** Install `ip rule … sport 500/4500 lookup main` so IKE never follows a TUN route (src/daemon/bypass.ts). */
  bypass_rules: boolean;
  /** `userspace`: tunsec's own ESP datapath over a TUN device; `none`: IKE only, SAs are negotiated but carry no traffic. */
  datapath: 'userspace' | 'none';
  /** TUN device name (at most 15 octets). */
  tun_name: string;
  /** TUN MTU: `auto` = the path MTU towards the peers minus the worst-case ESP overhead (1500 → 1415), or fixed. */
  tun_mtu: number | 'auto';
  /**
   * TUN offloads (IFF_VNET_HDR + TUNSETOFFLOAD: TSO super-packets split into segments before
   * sealing, opened TCP segments coalesced into GRO writes): `auto` uses them when the kernel
   * accepts, `on` refuses to start without them, `off` is one packet per read and write.
   * UDP GRO on the NAT-T socket (ESP-in-UDP) follows it: on unless `off`.
   */
  offload: 'auto' | 'on' | 'off';
  /**
   * ESP crypto of the datapath: `native` seals and sends, and opens, a batch per addon call
   * (native/tunsec_esp.cc; the JS path is used where the addon lacks it); `js` one AEAD call per
   * packet from JS (src/esp/packet.ts), kept as the fallback and the cross-check.
   */
  datapath_crypto: 'native' | 'js';
  /** SO_MARK of tunsec's own sockets, routed around the TUN device. */
  fwmark: number;
  /** Routing table of the routes into the TUN device, and the priority of the rules that select it. */
  route_table: number;
  route_priority: number;
  /**
   * The backstop (src/daemon/routes.ts): prohibit routes for the `private` policies in this
   * table, looked up by rules at this priority, just behind the TUN routes (default: route_table + 1,
   * route_priority + 1). They outlive the process, so a killed daemon never lets a private flow out in the clear.
   */
  backstop_table: number;
  backstop_priority: number;
  /** Packets held per policy while an SA is negotiated on demand. */
  hold_packets: number;
  /**
   * IKE retransmission schedule (charon.retransmit_*): first after `timeout` s, each next
   * `base` times longer, `tries` retransmissions, then the peer is dead (§2.4).
   */
  retransmit: { timeout: number; base: number; tries: number };
  /** Clamp the TCP MSS of SYNs crossing the datapath to the TUN MTU (forwarded flows never saw it). */
  mss_clamp: boolean;
  /** Seconds between polls of the credential files (certificates, keys, CAs, CRLs); a change reloads the credentials. 0: off. */
  watch_credentials: number;
  /**
   * Worker threads for IKE's public-key work (key exchange, AUTH signatures; src/crypto/pool);
   * 0 = inline on the main thread. Default: one core left to the datapath, 1 to 4 workers.
   */
  crypto_workers: number;
  /** Denial-of-service bounds (docs/configuration.md, docs/notes/hardening.md). */
  limits: LimitsConfig;
}

/** `daemon.limits`; times in seconds, sizes in octets, rates per second. */
export interface LimitsConfig {
  /** Half-open IKE SAs (responder, IKE_AUTH not completed) at most; further IKE_SA_INIT requests are dropped. */
  half_open_max: number;
  /** Half-open IKE SAs from one IP address at most. */
  half_open_per_peer: number;
  /** A half-open IKE SA that has not completed IKE_AUTH after this long is dropped. */
  half_open_timeout: number;
  /** Half-open IKE SAs from which on IKE_SA_INIT requests must return a COOKIE (RFC 7296 §2.6); 0 = always. */
  cookie_threshold: number;
  /** IKE_SA_INIT requests (key exchanges) processed per second per peer address (burst: twice that). */
  ike_init_rate: number;
  /** IKE_AUTH requests (signature checks) processed per second per peer address before the IKE SA is established (burst: twice that). */
  ike_auth_rate: number;
  /** Peer addresses whose rate state is kept (least recently seen ones are forgotten). */
  peers_max: number;
  /** Unprotected INVALID_IKE_SPI answers per second (RFC 7296 §2.21.4). */
  invalid_spi_rate: number;
  /** IKE messages in fragment reassembly (RFC 7383) per IKE SA. */
  fragments_per_sa: number;
  /** Largest reassembled IKE message, in octets. */
  fragment_bytes: number;
  /** Octets held in fragment reassembly across all IKE SAs. */
  fragments_total_bytes: number;
  /** A partly reassembled message is dropped after this long. */
  fragment_timeout: number;
}

export interface AuthoritiesConfig {
  /** Trusted CA certificates: files or directories of PEM/DER files. */
  cacerts: string[];
  /** CRLs: files or directories. */
  crls: string[];
  /** `yes`: a valid CRL is required for every certificate; `ifuri`: when the certificate names a CRL distribution point; `no`: CRLs are used when present. */
  strictcrl: 'yes' | 'ifuri' | 'no';
}

export interface SecretConfig {
  type: SecretType;
  file: string;
}

/** `pubkey`: certificates and signatures; `null`: RFC 7619 NULL Authentication (no credentials, no proof). */
export type AuthClass = 'pubkey' | 'null';

export interface LocalAuthConfig {
  auth: AuthClass;
  /** Absent: the subject DN of the first certificate (auth pubkey), ID_NULL (auth null). */
  id?: Identity;
  certs: string[];
}

export interface RemoteAuthConfig {
  auth: AuthClass;
  /** ID_ANY when not configured. */
  id: Identity;
  /** Pinned peer certificates. */
  certs: string[];
  /** CA certificates for this peer (in addition to `authorities.cacerts`). */
  cacerts: string[];
}

export interface ConnectionConfig extends IkeLifetimes {
  name: string;
  version: 2;
  local_addrs: string[];
  remote_addrs: string[];
  /** The policy group whose prefixes remote_addrs holds (its children's policy and start_action follow it). */
  policy_group?: NegotiatedGroup;
  local_port: number;
  remote_port: number;
  proposals: ProposalList;
  local: LocalAuthConfig;
  remote: RemoteAuthConfig;
  send_cert: 'always' | 'ifasked' | 'never';
  send_certreq: boolean;
  dpd_delay: number;
  dpd_timeout: number;
  keyingtries: number;
  encap: boolean;
  fragmentation: 'yes' | 'accept' | 'force' | 'no';
  mobike: false;
  unique: 'no' | 'never' | 'keep' | 'replace';
  /** By child name, in file order. */
  children: Record<string, ChildConfig>;
}

export interface ChildConfig extends ChildLifetimes {
  name: string;
  local_ts: TrafficSelectorConfig[];
  remote_ts: TrafficSelectorConfig[];
  esp_proposals: ProposalList;
  /** `pass` / `drop`: a shunt policy (bypass / discard its traffic), never negotiated — as swanctl's. */
  mode: 'transport' | 'tunnel' | 'pass' | 'drop';
  start_action: StartAction;
  dpd_action: 'clear' | 'trap' | 'restart';
  close_action: 'none' | 'trap' | 'start';
  replay_window: number;
  policy: 'private' | 'private-or-clear';
  /** Seconds without a packet (in or out) after which the CHILD_SA is closed; 0 = never. */
  inactivity: number;
}
