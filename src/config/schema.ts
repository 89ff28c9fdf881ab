/**
 * The schema of tunsec's YAML configuration, section by section, with
 * swanctl.conf's names and (unless docs/configuration.md says otherwise)
 * its defaults. Unknown keys are errors. Values that depend on other values
 * (lifetimes, rekey margins) are left undefined here and settled in
 * ./lifetimes.ts; the sections are put together in ./load.ts.
 */
import { z } from 'zod';
import { ProtocolId } from '../ike/transforms.js';
import type { Identity } from './identity.js';
import { type Parsed, bad, ok } from '../util/parsed.js';
import { describeValue } from './problems.js';
import {
  byteCount,
  choice,
  defaultProposalList,
  duration,
  field,
  hostAddresses,
  identity,
  integer,
  listenAddress,
  packetCount,
  path,
  paths,
  port,
  proposals,
  remoteAddresses,
  trafficSelectors,
  yesNo,
} from './fields.js';
import { parseTrafficSelector } from '../ike/ts/syntax.js';

/** Log subsystems, charon's names plus `tun` (the TUN device); `default` sets all not listed. */
export const LOG_SUBSYSTEMS = ['default', 'dmn', 'mgr', 'ike', 'chd', 'job', 'cfg', 'knl', 'net', 'asn', 'enc', 'lib', 'esp', 'tun'] as const;
export type LogSubsystem = (typeof LOG_SUBSYSTEMS)[number];

/** charon's levels: -1 silent, 0 basic, 1 audit, 2 control, 3 controlmore, 4 raw (secrets!). */
const logLevel = () => integer(-1, 4);

/** A Linux interface name: 1–15 octets, no '/', ':' or white space (IFNAMSIZ, dev_valid_name). */
const interfaceName = () =>
  field((v) =>
    typeof v === 'string' && /^[^/:\s]{1,15}$/.test(v) && v !== '.' && v !== '..' && Buffer.byteLength(v) <= 15
      ? ok(v)
      : bad<string>(`expected an interface name of 1–15 characters without '/', ':' or spaces, got ${describeValue(v)}`),
  );

/** `daemon.vici`: `off` (the default) or the path of the VICI socket swanctl connects to (relative: to the configuration file). */
const viciSocket = () =>
  field((v): Parsed<string> =>
    v === 'off' || v === false
      ? ok('off')
      : typeof v === 'string' && v !== '' && !v.includes('\0') && !v.includes('://')
        ? ok(v)
        : bad(`expected 'off' or the path of the VICI socket (e.g. /run/tunsec/vici; a path, not a unix:// URI), got ${describeValue(v)}`),
  );

/** `daemon.crypto_workers`: threads for IKE's public-key work; 0 = on the main thread (src/crypto/pool). */
const cryptoWorkers = () =>
  field((v): Parsed<number> => {
    const n = typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : v;
    return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 64
      ? ok(n)
      : bad(
          `expected the number of crypto worker threads, a whole number from 0 (key exchange and signatures inline on the main thread) to 64, got ${describeValue(v)}`,
        );
  });

/** A number (fractions allowed) within [min, max]. */
const decimal = (min: number, max: number) =>
  field((v): Parsed<number> =>
    typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max ? ok(v) : bad(`expected a number from ${min} to ${max}, got ${describeValue(v)}`),
  );

/** `auto` (path MTU minus the worst-case ESP overhead) or an MTU in octets. */
const tunMtu = () =>
  field((v): Parsed<number | 'auto'> =>
    v === 'auto'
      ? ok('auto')
      : typeof v === 'number' && Number.isInteger(v) && v >= 576 && v <= 9000
        ? ok(v)
        : bad(`expected 'auto' or an MTU of 576–9000 octets, got ${describeValue(v)}`),
  );

/**
 * `daemon.limits`: bounds on what unauthenticated peers can make the daemon hold or compute
 * (half-open IKE SAs, per-peer rates, IKE fragments in reassembly). Defaults are safe for a
 * gateway with a few hundred peers; docs/notes/hardening.md explains them.
 */
export const limitsSchema = z.strictObject({
  half_open_max: integer(1, 1_000_000).default(1024),
  half_open_per_peer: integer(1, 100_000).default(16),
  half_open_timeout: duration().default(30),
  cookie_threshold: integer(0, 1_000_000).default(10),
  ike_init_rate: integer(1, 100_000).default(10),
  ike_auth_rate: integer(1, 100_000).default(10),
  peers_max: integer(16, 10_000_000).default(4096),
  invalid_spi_rate: integer(0, 100_000).default(10),
  fragments_per_sa: integer(1, 64).default(4),
  fragment_bytes: byteCount().default(65535),
  fragments_total_bytes: byteCount().default(4 * 1024 * 1024),
  fragment_timeout: duration().default(30),
});

export const daemonSchema = z.strictObject({
  pid_file: path().default('/run/tunsec/tunsec.pid'),
  control_socket: path().default('/run/tunsec/tunsec.sock'),
  vici: viciSocket().default('off'),
  log: z
    .strictObject(Object.fromEntries(LOG_SUBSYSTEMS.map((s) => [s, logLevel().optional()])) as Record<LogSubsystem, z.ZodOptional<ReturnType<typeof logLevel>>>)
    .optional(),
  keylog: path().optional(),
  metrics: listenAddress().optional(),
  global: choice(['clear', 'drop']).default('drop'),
  prefer_configured_proposals: yesNo().default(true),
  keep_alive: duration().default(20),
  bypass_rules: yesNo().default(true),
  datapath: choice(['userspace', 'none']).default('userspace'),
  tun_name: interfaceName().default('tunsec0'),
  tun_mtu: tunMtu().default('auto'),
  offload: choice(['auto', 'on', 'off']).default('auto'),
  datapath_crypto: choice(['native', 'js']).default('native'),
  fwmark: integer(1, 0xffffffff).default(0x7473),
  route_table: integer(1, 0xfffffff0).default(220),
  route_priority: integer(1, 32764).default(220),
  backstop_table: integer(1, 0xfffffff0).optional(),
  backstop_priority: integer(2, 32765).optional(),
  hold_packets: integer(0, 1024).default(16),
  retransmit_timeout: decimal(0.1, 600).default(4),
  retransmit_base: decimal(1, 10).default(1.8),
  retransmit_tries: integer(0, 20).default(5),
  mss_clamp: yesNo().default(true),
  watch_credentials: duration().default(10),
  crypto_workers: cryptoWorkers().optional(),
  limits: limitsSchema.prefault({}),
});

export const authoritiesSchema = z.strictObject({
  cacerts: paths().default([]),
  crls: paths().default([]),
  strictcrl: choice(['yes', 'ifuri', 'no']).default('no'),
});

/** `secrets.<type><suffix>`: private keys (tunsec authenticates with public keys only). */
export const SECRET_TYPES = ['private', 'rsa', 'ecdsa', 'pkcs8'] as const;
export type SecretType = (typeof SECRET_TYPES)[number];
export const secretSchema = z.strictObject({ file: path() });

const ANY_ID: Identity = { type: 'ID_ANY', value: '', text: '%any' };

/**
 * `auth`: `pubkey` (a certificate and its private key) or `null`, RFC 7619's NULL
 * Authentication: the side proves nothing, for opportunistic encryption between
 * hosts without credentials (./load.ts checks what each excludes).
 */
export const localAuthSchema = z.strictObject({
  auth: choice(['pubkey', 'null']).default('pubkey'),
  id: identity().optional(),
  certs: paths().default([]),
});

export const remoteAuthSchema = z.strictObject({
  auth: choice(['pubkey', 'null']).default('pubkey'),
  id: identity().default(ANY_ID),
  certs: paths().default([]),
  cacerts: paths().default([]),
});

const mobike = () =>
  field((v): Parsed<false> => {
    if (v === false || v === 'no') return ok(false);
    if (v === true || v === 'yes') return bad("tunsec does not implement MOBIKE (RFC 4555); only 'no' is accepted");
    return bad(`must be 'no', got ${describeValue(v)}`);
  });

const version = () =>
  field((v): Parsed<2> => {
    if (v === 2 || v === '2') return ok(2);
    return bad(`tunsec speaks IKEv2 only; version must be 2, got ${describeValue(v)}`);
  });

/** Connection-level keys; `local`, `remote` and `children` are sections of their own, parsed separately. */
export const connectionSchema = z.strictObject({
  version: version().default(2),
  local_addrs: hostAddresses().default(['%any']),
  /** Required unless `policy_group` gives the prefixes (checked in ./load.ts). */
  remote_addrs: remoteAddresses().optional(),
  /** The policy group (./policy-groups.ts) whose prefixes are remote_addrs; the children's policy and start_action follow it. */
  policy_group: choice(['private', 'private-or-clear', 'clear-or-private']).optional(),
  local_port: port().default(500),
  remote_port: port().default(500),
  proposals: proposals(ProtocolId.IKE).default(() => defaultProposalList(ProtocolId.IKE)),
  local: z.unknown().optional(),
  remote: z.unknown().optional(),
  children: z.unknown().optional(),
  send_cert: choice(['always', 'ifasked', 'never']).default('ifasked'),
  send_certreq: yesNo().default(true),
  rekey_time: duration().optional(),
  reauth_time: duration().optional(),
  over_time: duration().optional(),
  rand_time: duration().optional(),
  dpd_delay: duration().default(0),
  dpd_timeout: duration().default(0),
  keyingtries: integer(0, 1000).default(1),
  encap: yesNo().default(false),
  fragmentation: choice(['yes', 'accept', 'force', 'no']).default('yes'),
  mobike: mobike().default(false),
  unique: choice(['no', 'never', 'keep', 'replace']).default('no'),
});

export type StartAction = 'none' | 'trap' | 'start' | 'trap|start';

const startAction = () =>
  field((v): Parsed<StartAction> => {
    const words =
      typeof v === 'string'
        ? v
            .split('|')
            .map((s) => s.trim())
            .sort()
        : [];
    const key = words.join('|');
    if (key === 'none' || key === 'trap' || key === 'start') return ok(key);
    if (key === 'start|trap') return ok('trap|start');
    return bad(`must be one of 'none', 'trap', 'start', 'trap|start', got ${describeValue(v)}`);
  });

/** The largest replay window tunsec's RFC 6479 window accepts, in packets. */
export const MAX_REPLAY_WINDOW = 65536;

const DYNAMIC = parseTrafficSelector('dynamic');
const dynamicTs = () => (DYNAMIC.ok ? [DYNAMIC.value] : []);

export const childSchema = z.strictObject({
  local_ts: trafficSelectors().default(dynamicTs),
  remote_ts: trafficSelectors().default(dynamicTs),
  esp_proposals: proposals(ProtocolId.ESP).default(() => defaultProposalList(ProtocolId.ESP)),
  mode: choice(['transport', 'tunnel', 'pass', 'drop']).default('transport'),
  start_action: startAction().default('none'),
  dpd_action: choice(['clear', 'trap', 'restart']).default('clear'),
  close_action: choice(['none', 'trap', 'start']).default('none'),
  rekey_time: duration().optional(),
  life_time: duration().optional(),
  rand_time: duration().optional(),
  rekey_bytes: byteCount().optional(),
  life_bytes: byteCount().optional(),
  rand_bytes: byteCount().optional(),
  rekey_packets: packetCount().optional(),
  life_packets: packetCount().optional(),
  rand_packets: packetCount().optional(),
  replay_window: integer(0, MAX_REPLAY_WINDOW).default(32),
  policy: choice(['private', 'private-or-clear']).default('private'),
  /** Close the CHILD_SA (and an instance's IKE SA with its last one) after this long without a packet in or out; 0 = never. */
  inactivity: duration().default(0),
});

/**
 * The top level. Its sections are parsed one by one (./load.ts), and each
 * connection, its `local`/`remote` sections and each child on their own, so
 * one bad value hides no problem elsewhere.
 */
export const topSchema = z.strictObject({
  daemon: z.unknown().optional(),
  authorities: z.unknown().optional(),
  secrets: z.record(z.string(), z.unknown()).optional(),
  connections: z.record(z.string(), z.unknown()),
  /** Static SAs and policies (./manual.ts), parsed on their own. */
  manual: z.unknown().optional(),
  /** Libreswan-style policy group files (./policy-groups.ts). */
  policy_groups: z.unknown().optional(),
});

export const policyGroupsSchema = z.strictObject({
  /** Directory of group files named private, private-or-clear, clear-or-private, block, clear (Libreswan's /etc/ipsec.d/policies). */
  dir: path(),
});

/**
 * Keys of swanctl.conf tunsec does not take, so an operator copying a
 * swanctl configuration learns that the key is known but unsupported.
 */
export const UNSUPPORTED_SWANCTL_KEYS: ReadonlySet<string> = new Set([
  'vips',
  'pools',
  'aggressive',
  'pull',
  'dscp',
  'childless',
  'ocsp',
  'ppk_id',
  'ppk_required',
  'if_id_in',
  'if_id_out',
  'mediation',
  'mediated_by',
  'mediation_peer',
  'round',
  'pubkeys',
  'eap_id',
  'aaa_id',
  'xauth_id',
  'groups',
  'cert_policy',
  'ca_id',
  'revocation',
  'ah_proposals',
  'sha256_96',
  'updown',
  'hostaccess',
  'policies',
  'policies_fwd_out',
  'ipcomp',
  'reqid',
  'priority',
  'interface',
  'mark_in',
  'mark_in_sa',
  'mark_out',
  'set_mark_in',
  'set_mark_out',
  'label',
  'label_mode',
  'tfc_padding',
  'per_cpu_sas',
  'hw_offload',
  'copy_df',
  'copy_ecn',
  'copy_dscp',
  'icmp',
]);
