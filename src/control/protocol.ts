/**
 * The control protocol: what goes over the daemon's control socket
 * (`daemon.control_socket`) between the daemon and the `tunsec` command — or
 * any program. docs/daemon.md ("Control socket") documents it:
 *
 *   → {"id":1,"command":"status","args":{}}\n
 *   ← {"id":1,"ok":true,"result":{…}}\n
 *   ← {"id":2,"ok":false,"code":"unknown_command","error":"…"}\n
 *
 * One JSON object per line each way; a client may send several requests on
 * one connection, they are answered in order. After `monitor` is answered the
 * connection also carries the daemon's events, one ControlEvent per line
 * (they have `event` and no `id`), until the client closes it.
 *
 * Types and constants only: both ends import this module, and it imports
 * nothing from either (the types of the IKE and ESP counters it carries come
 * from below).
 */
import type { DatapathCounters } from '../esp/engine.js';
import type { IoCounters } from '../esp/io.js';
import type { ManagerCounters, ManagerLimits } from '../ike/manager.js';
import type { IkeSaState } from '../ike/sa/context.js';

/** The longest request line accepted, in octets (without the newline). */
export const MAX_REQUEST_BYTES = 64 * 1024;

/**
 * `bad_json`, `bad_request` (not a request object, bad `args`), `unknown_command`,
 * `too_large`, `busy` (too many clients): the request was not understood;
 * `forbidden`: the client's user may not control the daemon (SO_PEERCRED: root only).
 * `not_found` (no such connection), `failed`, `timeout`, `unavailable` (the
 * daemon is starting/stopping), `internal`: the command ran and did not succeed.
 */
export type ControlErrorCode =
  'bad_json' | 'bad_request' | 'unknown_command' | 'too_large' | 'busy' | 'forbidden' | 'not_found' | 'failed' | 'timeout' | 'unavailable' | 'internal';

export type ControlRequestId = number | string | null;

export interface ControlRequest {
  id?: number | string;
  command: string;
  args?: Record<string, unknown>;
}

export type ControlResponse = { id: ControlRequestId; ok: true; result: unknown } | { id: ControlRequestId; ok: false; code: ControlErrorCode; error: string };

/** The result of each command, by its name. */
export interface ControlResults {
  status: StatusResult;
  'list-sas': ListSasResult;
  'list-conns': ListConnsResult;
  check: CheckResult;
  up: UpResult;
  down: DownResult;
  reload: ReloadResult;
  'sa-list': ManualSaListResult;
  'sa-add': ManualSaInfo;
  'sa-del': ManualSaDelResult;
  'global-status': GlobalResult;
  'global-down': GlobalResult;
  'global-up': GlobalResult;
  rekey: RekeyResult;
  'list-certs': ListCertsResult;
  monitor: MonitorResult;
}

export type ControlCommand = keyof ControlResults;

// ---------------------------------------------------------------------------
// status

export type DaemonState = 'new' | 'starting' | 'running' | 'stopping' | 'stopped';

/** The global off switch (`tunsec global down|up`): `going-*` while a transition runs. */
export type GlobalSwitchState = 'up' | 'going-down' | 'down' | 'going-up';

export type ConnectionState = 'established' | 'connecting' | 'not connected';
export type StartAction = 'none' | 'start' | 'trap' | 'trap|start';

export interface GlobalStatus {
  state: GlobalSwitchState;
  /** `daemon.global`: what the off state does with traffic of tunsec's policies. */
  mode: 'drop' | 'clear';
  since: string;
  age: number;
}

export interface ConnectionStatus {
  name: string;
  state: ConnectionState;
  /** Since when the connection is in this state (ISO 8601), and for how many seconds. */
  since: string;
  age: number;
  /** The peer's address: of the IKE SA, else the first configured one (null for %any); a group's prefixes when it has no IKE SA. */
  peer: string | null;
  /** A group connection (remote_addrs as prefixes): the peers with an IKE SA (instances); absent otherwise. */
  instances?: string[];
  local_id: string;
  /** The authenticated peer identity when established, else the configured one. */
  remote_id: string;
  ike_sas: number;
  children: number;
  /** CHILD_SAs of the established IKE SAs that failed (e.g. refused with NO_PROPOSAL_CHOSEN) and are not up. */
  failed_children: FailedChild[];
  start_action: StartAction;
}

export interface FailedChild {
  name: string;
  reason: string;
  since: string;
}

export interface StatusResult {
  daemon: {
    pid: number;
    state: DaemonState;
    started: string | null;
    uptime: number;
    control_socket: string | null;
    datapath: 'userspace' | 'none' | null;
    global: GlobalStatus;
    /** The control socket: clients connected now; since start: connections, requests, bad requests, clients refused. */
    control: { clients: number; connections: number; requests: number; bad_requests: number; rejected_clients: number; refused_peers?: number };
    /** The IKE responder's denial-of-service state and `daemon.limits` (absent before the manager exists). */
    ike?: IkeDefenceStatus;
  };
  connections: ConnectionStatus[];
}

export interface IkeDefenceStatus {
  half_open: number;
  /** IKE_SA_INIT requests must carry a COOKIE now (half_open ≥ cookie_threshold). */
  cookie_mode: boolean;
  cookies_sent: number;
  cookies_rejected: number;
  /** IKE_SA_INIT / IKE_AUTH requests dropped by a limit (half_open_max, half_open_per_peer, ike_init_rate, ike_auth_rate). */
  limit_drops: number;
  half_open_timeouts: number;
  /** Peer addresses with rate state (≤ limits.peersMax). */
  peers: number;
  /** Octets held in IKE fragment reassembly, all IKE SAs. */
  fragment_bytes: number;
  limits: ManagerLimits;
}

// ---------------------------------------------------------------------------
// list-sas

export interface ChildSaInfo {
  name: string;
  reqid: number;
  mode: 'transport' | 'tunnel';
  encap: boolean;
  proposal: string;
  spi_in: string;
  spi_out: string;
  local_ts: string[];
  remote_ts: string[];
  installed: string;
  installed_age: number;
  bytes_in: number;
  packets_in: number;
  bytes_out: number;
  packets_out: number;
  /** Seconds since the last packet each way; null when none. */
  last_in: number | null;
  last_out: number | null;
  replay_window: number;
  replay_drops: number;
  icv_failures: number;
  bad_padding: number;
  policy_drops: number;
}

/** `pubkey`: a certificate and signature; `null`: RFC 7619 NULL Authentication (nothing proven). */
export type AuthClassName = 'pubkey' | 'null';

export interface IkeSaInfo {
  name: string;
  /** A group connection's per-peer instance: `NAME[peer]` (name is the group's); null otherwise. */
  instance: string | null;
  spi_i: string;
  spi_r: string;
  initiator: boolean;
  state: IkeSaState;
  local: { address: string; port: number };
  remote: { address: string; port: number };
  local_id: string;
  remote_id: string;
  /** How we authenticate: `pubkey` (certificate) or `null` (RFC 7619 NULL Authentication). */
  local_auth: AuthClassName;
  /** How the peer authenticated; null before IKE_AUTH completed. */
  remote_auth: AuthClassName | null;
  proposal: string | null;
  established: string | null;
  established_age: number | null;
  nat_local: boolean;
  nat_remote: boolean;
  children: ChildSaInfo[];
}

/** The userspace datapath: its TUN device, counters, trap policies and kernel backstop. */
export interface DatapathStatus {
  tun: string | undefined;
  counters: DatapathCounters;
  io: IoCounters;
  traps: Array<{ connection: string; child: string; reqid: number }>;
  /** The kernel backstop of the private policies (src/daemon/routes.ts): what is installed, its table, and whether global down (clear) lifted it. */
  backstop: { table: number; rules: number; routes: number; lifted: boolean };
}

export interface ListSasResult {
  ike_sas: IkeSaInfo[];
  datapath: (DatapathStatus & { global_off: 'drop' | 'clear' | null }) | null;
  manager: (ManagerCounters & { half_open: number }) | null;
  /** Manual SAs (`tunsec sa list` shows them alone). */
  manual_sas?: ManualSaInfo[];
}

// ---------------------------------------------------------------------------
// list-conns

export interface ConnInfo {
  name: string;
  local_addrs: string[];
  remote_addrs: string[];
  remote_port: number;
  local_id: string;
  remote_id: string;
  local_auth: AuthClassName;
  remote_auth: AuthClassName;
  /** Our certificate's subject; null with local auth null. */
  certificate: string | null;
  proposals: string[];
  encap: boolean;
  fragmentation: boolean;
  keyingtries: number;
  children: Array<{
    name: string;
    reqid: number | null;
    mode: 'transport' | 'tunnel';
    esp_proposals: string[];
    local_ts: string[];
    remote_ts: string[];
    start_action: StartAction;
    policy: 'private' | 'private-or-clear';
    replay_window: number;
  }>;
}

export interface ListConnsResult {
  connections: ConnInfo[];
}

// ---------------------------------------------------------------------------
// check

export type CheckStatus = 'OK' | 'WARNING' | 'CRITICAL' | 'UNKNOWN';

export interface CheckResult {
  /** The plugin exit code: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN. */
  code: 0 | 1 | 2 | 3;
  status: CheckStatus;
  summary: string;
  perfdata: string;
  connections: Array<{ name: string; state: ConnectionState; since: string; age: number; expected: boolean }>;
  fallback_clear: number;
  global: GlobalSwitchState;
}

// ---------------------------------------------------------------------------
// up, down, reload, global-*

/** `up` {name, timeout?, child?}: with `child`, that CHILD_SA (CREATE_CHILD_SA on the established IKE SA). */
export interface UpResult {
  name: string;
  state: 'established';
  already: boolean;
  spi_i: string;
  spi_r: string;
  children: number;
  child?: { name: string; reqid: number; spi_in: string; spi_out: string };
}

/** `down` {name, timeout?, child?}: `deleted` counts IKE SAs, or with `child` the CHILD_SAs deleted (the IKE SA stays). */
export interface DownResult {
  name: string;
  deleted: number;
  child?: string;
}

// ---------------------------------------------------------------------------
// rekey

/** `rekey` {name, child?, timeout?}: the IKE SAs (or with `child` the CHILD_SAs) rekeyed, old and new SPIs. */
export interface RekeyResult {
  name: string;
  child: string | null;
  ike_sas: Array<{ old_spi_i: string; old_spi_r: string; spi_i: string; spi_r: string }>;
  child_sas: Array<{ name: string; reqid: number; old_spi_in: string; old_spi_out: string; spi_in: string; spi_out: string }>;
}

// ---------------------------------------------------------------------------
// list-certs

/**
 * `own`: a connection's local certificate; `intermediate`: sent with it;
 * `ca`: a trust anchor (authorities.cacerts, remote.cacerts, pinned remote.certs);
 * `peer`: the certificate a peer authenticated with on an IKE SA now.
 */
export type CertKind = 'own' | 'intermediate' | 'ca' | 'peer';

export interface CertInfo {
  kind: CertKind;
  subject: string;
  issuer: string;
  serial: string;
  /** subjectAltNames as `DNS:…`, `IP:…`, `email:…`. */
  sans: string[];
  not_before: string;
  not_after: string;
  /** `valid`, `expired` or `not yet valid`, now. */
  validity: 'valid' | 'expired' | 'not yet valid';
  /** `RSA 3072`, `ECDSA P-384`, `Ed25519`. */
  key: string;
  /** SHA-256 of the DER, hex. */
  fingerprint: string;
  ca: boolean;
  /** Where it was loaded from (a file, or `CERT payload` for a peer's). */
  source: string;
  /** The connections that use it. */
  connections: string[];
  /** For `peer`: the IKE SAs it authenticated (`spi_i_i spi_r_r`). */
  ike_sas?: string[];
}

export interface ListCertsResult {
  certificates: CertInfo[];
}

// ---------------------------------------------------------------------------
// monitor: the event stream

/** `monitor` {events?: string[]}: which events follow (all when `events` is absent). */
export interface MonitorResult {
  events: string[] | 'all';
}

/** One event line after `monitor`: as the daemon's JSON log line of the event (docs/daemon.md lists them). */
export interface ControlEvent {
  event: string;
  time: string;
  subsys: string;
  msg: string;
  [field: string]: unknown;
}

/** The result of a reload, as `tunsec reload` shows it. */
export interface ReloadResult {
  ok: boolean;
  /** Every problem when the reload was rejected (the running configuration stays). */
  errors: string[];
  warnings: string[];
  kept: string[];
  /** Kept connections whose certificate, intermediates, key or trust changed: used from the next authentication. */
  renewed: string[];
  added: string[];
  removed: string[];
  replaced: string[];
  /** `daemon:` settings applied at once (`log`, `global`). */
  applied: string[];
  /** Changes that take effect only after a restart, one message each. */
  restart: string[];
}

export type GlobalResult = GlobalStatus & {
  already?: boolean;
  deleted?: number;
  connections?: Array<{ name: string; established: boolean; error?: string }>;
};

// ---------------------------------------------------------------------------
// sa-list, sa-add, sa-del: manual SAs

export interface ManualSaInfo {
  name: string;
  /** `config` (the file, installed at start) or `runtime` (`tunsec sa add`). */
  origin: 'config' | 'runtime';
  reqid: number;
  mode: 'transport' | 'tunnel';
  encap: { local_port: number; remote_port: number } | null;
  proposal: string;
  local_addr: string;
  remote_addr: string;
  spi_in: string;
  spi_out: string;
  /** Whether each SA is still in the SAD (a non-ESN SA whose sequence numbers ran out is removed). */
  installed_in: boolean;
  installed_out: boolean;
  local_ts: string;
  remote_ts: string;
  policy: 'private' | 'private-or-clear';
  installed: string;
  bytes_in: number;
  packets_in: number;
  bytes_out: number;
  packets_out: number;
  replay_window: number;
  replay_drops: number;
  icv_failures: number;
  bad_padding: number;
  policy_drops: number;
}

export interface ManualSaListResult {
  sas: ManualSaInfo[];
}

export interface ManualSaDelResult {
  name: string;
  deleted: true;
}
