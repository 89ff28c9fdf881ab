/**
 * The control socket: a unix stream socket (`daemon.control_socket`, mode
 * 0600) over which the `tunsec` command — or any program — asks the running
 * daemon for its state and tells it what to do. docs/daemon.md documents the
 * protocol:
 *
 *   → {"id":1,"command":"status","args":{}}\n
 *   ← {"id":1,"ok":true,"result":{…}}\n
 *   ← {"id":2,"ok":false,"code":"unknown_command","error":"…"}\n
 *
 * One JSON object per line each way; a client may send several requests on
 * one connection, they are answered in order. Nothing a client sends can stop
 * the daemon: malformed requests get an error response and are counted,
 * a request line is limited in size, the number of clients is capped, and a
 * client that goes away mid-request is simply forgotten.
 *
 * The second half of this file turns the daemon's state into the command
 * results (`status`, `list-sas`, `list-conns`, `check`, …).
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { chmodSync, lstatSync, mkdirSync, statSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Daemon, DaemonState, GlobalSwitchState } from './daemon.js';
import type { DatapathStatus } from './datapath.js';
import type { DaemonLogger } from './logger.js';
import type { IkeSaManager, ManagerCounters, ManagerLimits } from '../ike/manager.js';
import { reassemblyBudget } from '../ike/codec/fragments.js';
import type { IkeSa } from '../ike/sa/ike-sa.js';
import type { IkeSaState } from '../ike/sa/context.js';
import type { SaCounters } from '../esp/api.js';
import { formatProposal } from '../ike/proposal/index.js';
import { describeIdentity } from './credentials.js';
import { spiHex } from './events.js';
import { summarizeReload, type ReloadResult } from './reload.js';
import type { ManualSaInfo, ManualSaListResult } from './manual.js';
import { parseManualSa } from '../config/manual.js';
import { loadNative } from '../native/addon.js';

/** The longest request line accepted, in octets (without the newline). */
export const MAX_REQUEST_BYTES = 64 * 1024;
/** Clients connected at once; more are told so and disconnected. */
export const MAX_CLIENTS = 32;
/** Requests waiting for their turn on one connection. */
export const MAX_QUEUED_REQUESTS = 64;

/** A command failed in a way the client should hear about; `code` is for programs, the message for people. */
export class ControlError extends Error {
  override readonly name = 'ControlError';
  constructor(
    readonly code: ControlErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/**
 * `bad_json`, `bad_request` (not a request object, bad `args`), `unknown_command`,
 * `too_large`, `busy` (too many clients): the request was not understood;
 * `forbidden`: the client's user may not control the daemon (SO_PEERCRED: root only).
 * `not_found` (no such connection), `failed`, `timeout`, `unavailable` (the
 * daemon is starting/stopping), `internal`: the command ran and did not succeed.
 */
export type ControlErrorCode = 'bad_json' | 'bad_request' | 'unknown_command' | 'too_large' | 'busy' | 'forbidden' | 'not_found' | 'failed' | 'timeout' | 'unavailable' | 'internal';

export type ControlRequestId = number | string | null;

export interface ControlRequest {
  id?: number | string;
  command: string;
  args?: Record<string, unknown>;
}

export type ControlResponse =
  | { id: ControlRequestId; ok: true; result: unknown }
  | { id: ControlRequestId; ok: false; code: ControlErrorCode; error: string };

export type ControlHandler = (args: Record<string, unknown>) => unknown;

export interface ControlCounters {
  /** Connections accepted since start. */
  connections: number;
  /** Requests answered (successfully or not). */
  requests: number;
  /** Requests that were not understood: bad JSON, not a request, unknown command, bad arguments, too large. */
  badRequests: number;
  /** Connections refused because MAX_CLIENTS were connected. */
  rejectedClients: number;
  /** Connections refused because the peer process is neither root nor the daemon's user (SO_PEERCRED). */
  refusedPeers: number;
}

export interface ControlServerOptions {
  path: string;
  log: DaemonLogger;
  handlers: Record<string, ControlHandler>;
  maxRequestBytes?: number;
  maxClients?: number;
  /**
   * User IDs whose processes may talk to the daemon (SO_PEERCRED); default root and the
   * daemon's own effective user. Anyone else gets one error line and is disconnected.
   */
  allowedUids?: readonly number[];
  /** The peer's credentials (tests replace it); default SO_PEERCRED through the native addon. */
  peerCredentials?: (socket: Socket) => { pid: number; uid: number; gid: number };
}

/**
 * SO_PEERCRED of an accepted unix socket: Node keeps the descriptor in the
 * socket's libuv handle (`_handle.fd`, Linux), which is not a public API — so
 * it is checked to be a descriptor number before use.
 */
export function socketPeerCredentials(socket: Socket): { pid: number; uid: number; gid: number } {
  const handle = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle;
  const fd = handle?.fd;
  if (typeof fd !== 'number' || !Number.isInteger(fd) || fd < 0) throw new Error('the socket has no file descriptor');
  const addon = loadNative();
  if (typeof addon.peerCred !== 'function') throw new Error('the native addon predates peerCred (run `npm ci`)');
  return addon.peerCred(fd);
}

/** The control socket's listener. `start` refuses a path another live daemon answers on. */
export class ControlServer {
  readonly counters: ControlCounters = { connections: 0, requests: 0, badRequests: 0, rejectedClients: 0, refusedPeers: 0 };
  private server?: Server;
  private readonly clients = new Set<Socket>();
  /** The socket file we created (removed at stop only if it is still this one). */
  private created?: { dev: number; ino: number };
  private readonly maxRequestBytes: number;
  private readonly maxClients: number;

  constructor(private readonly options: ControlServerOptions) {
    this.maxRequestBytes = options.maxRequestBytes ?? MAX_REQUEST_BYTES;
    this.maxClients = options.maxClients ?? MAX_CLIENTS;
  }

  get path(): string {
    return this.options.path;
  }

  get clientCount(): number {
    return this.clients.size;
  }

  /**
   * Listen at `path` with mode 0600. A socket file left by a crashed daemon
   * (nobody accepts on it) is removed first; a path where another daemon
   * answers, or that is not a socket, is refused with an Error.
   */
  async start(): Promise<void> {
    const path = this.options.path;
    const existing = await probeControlSocket(path);
    if (existing.kind === 'live') {
      throw new Error(`control socket ${path} is in use by a running daemon${existing.pid === undefined ? '' : ` (pid ${existing.pid})`}; stop it first or set another daemon.control_socket`);
    }
    if (existing.kind === 'stale') {
      unlinkSync(path);
      this.options.log.log('daemon', 'info', `removed stale control socket ${path} (nobody answered on it)`);
    }
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
    const server = createServer({ allowHalfOpen: true }, (socket) => this.accept(socket));
    server.maxConnections = this.maxClients * 2;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      // The socket file gets mode 0600 as it is created: no moment where others could connect.
      const umask = process.umask(0o177);
      try {
        server.listen(path, () => {
          server.off('error', reject);
          resolve();
        });
      } finally {
        process.umask(umask);
      }
    }).catch((err: NodeJS.ErrnoException) => {
      throw new Error(`cannot listen on control socket ${path}: ${err.message}`);
    });
    try {
      chmodSync(path, 0o600); // in case the bind happened after the umask was restored
    } catch (err) {
      server.close();
      throw new Error(`control socket ${path}: ${(err as Error).message}`);
    }
    server.on('error', (err) => this.options.log.log('daemon', 'error', `control socket ${path}: ${err.message}`));
    const st = statSync(path);
    this.created = { dev: st.dev, ino: st.ino };
    this.server = server;
    this.options.log.log('daemon', 'info', `control socket listening on ${path}`);
  }

  /** Close the listener and every client; remove the socket file if it is still ours. */
  stop(): void {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.close();
    for (const c of this.clients) c.destroy();
    this.clients.clear();
    try {
      const st = lstatSync(this.options.path);
      if (this.created && st.dev === this.created.dev && st.ino === this.created.ino) unlinkSync(this.options.path);
    } catch {
      /* already gone */
    }
    this.created = undefined;
  }

  private accept(socket: Socket): void {
    this.counters.connections++;
    socket.on('error', (err) => this.options.log.log('daemon', 'debug', `control client: ${err.message}`));
    let cred: { pid: number; uid: number; gid: number } | undefined;
    let credError = '';
    try {
      cred = (this.options.peerCredentials ?? socketPeerCredentials)(socket);
    } catch (err) {
      credError = (err as Error).message;
    }
    const allowed = this.options.allowedUids ?? [0, process.geteuid?.() ?? 0];
    if (!cred || !allowed.includes(cred.uid)) {
      // Fail closed: a peer whose credentials cannot be read is refused too.
      this.counters.refusedPeers++;
      const who = cred ? `uid ${cred.uid} (pid ${cred.pid})` : `a peer whose credentials cannot be read (${credError})`;
      this.options.log.log('daemon', 'warn', `control socket: refused ${who}: only root${allowed.some((u) => u !== 0) ? ` and uid ${allowed.filter((u) => u !== 0).join(', ')}` : ''} may control the daemon`);
      socket.end(line({ id: null, ok: false, code: 'forbidden', error: `permission denied: ${cred ? `uid ${cred.uid} is` : 'peer credentials are'} not allowed to control the daemon (root only)` }));
      return;
    }
    if (this.clients.size >= this.maxClients) {
      this.counters.rejectedClients++;
      this.options.log.log('daemon', 'warn', `control socket: a client was refused: ${this.clients.size} clients are connected already`);
      socket.end(line({ id: null, ok: false, code: 'busy', error: `too many control clients (${this.maxClients}); try again` }));
      return;
    }
    this.clients.add(socket);
    socket.on('close', () => this.clients.delete(socket));
    let pending: Buffer = Buffer.alloc(0);
    let chain: Promise<void> = Promise.resolve();
    let closing = false;
    let queued = 0;
    const enqueue = (request: Buffer | 'too_large' | 'too_many'): void => {
      queued++;
      chain = chain.then(async () => {
        queued--;
        const response = await this.answer(request);
        if (!socket.destroyed && socket.writable) socket.write(line(response));
      });
    };
    const finish = (): void => {
      closing = true;
      socket.pause();
      chain = chain.then(() => {
        if (!socket.destroyed) socket.end(() => socket.destroy());
      });
    };
    socket.on('data', (chunk: Buffer) => {
      if (closing) return;
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      let nl: number;
      while ((nl = pending.indexOf(0x0a)) >= 0) {
        const request = pending.subarray(0, nl);
        pending = pending.subarray(nl + 1);
        if (queued >= MAX_QUEUED_REQUESTS) {
          // A client that does not read its answers: it gets one last and is disconnected.
          enqueue('too_many');
          return finish();
        }
        enqueue(request);
      }
      if (pending.length > this.maxRequestBytes) {
        // No newline in sight: the framing is lost, so the connection ends after this answer.
        pending = Buffer.alloc(0);
        enqueue('too_large');
        finish();
      }
    });
    // A client may send its last request without a newline and shut down its side (allowHalfOpen).
    socket.on('end', () => {
      if (closing) return;
      if (pending.length > 0) enqueue(pending);
      pending = Buffer.alloc(0);
      finish();
    });
  }

  /** One request line → its response; never throws. */
  private async answer(raw: Buffer | 'too_large' | 'too_many'): Promise<ControlResponse | undefined> {
    if (raw === 'too_many') {
      this.counters.requests++;
      return this.bad(null, 'busy', `more than ${MAX_QUEUED_REQUESTS} requests waiting on one connection`);
    }
    if (raw === 'too_large' || raw.length > this.maxRequestBytes) {
      this.counters.requests++;
      return this.bad(null, 'too_large', `request longer than ${this.maxRequestBytes} octets`);
    }
    const text = raw.toString('utf8').trim();
    if (text === '') return undefined;
    this.counters.requests++;
    let request: unknown;
    try {
      request = JSON.parse(text);
    } catch (err) {
      return this.bad(null, 'bad_json', `request is not JSON: ${(err as Error).message}`);
    }
    if (typeof request !== 'object' || request === null || Array.isArray(request)) return this.bad(null, 'bad_request', 'a request is a JSON object: {"id":1,"command":"status","args":{}}');
    const r = request as Record<string, unknown>;
    const id = r.id;
    if (id !== undefined && id !== null && !(typeof id === 'number' && Number.isFinite(id)) && !(typeof id === 'string' && id.length <= 256)) {
      return this.bad(null, 'bad_request', "'id' must be a number or a string (at most 256 characters)");
    }
    const rid: ControlRequestId = (id as ControlRequestId | undefined) ?? null;
    if (typeof r.command !== 'string') return this.bad(rid, 'bad_request', "'command' must be a string");
    if (r.args !== undefined && (typeof r.args !== 'object' || r.args === null || Array.isArray(r.args))) return this.bad(rid, 'bad_request', "'args' must be an object");
    const handler = Object.hasOwn(this.options.handlers, r.command) ? this.options.handlers[r.command] : undefined;
    if (!handler) {
      return this.bad(rid, 'unknown_command', `unknown command '${r.command.slice(0, 64)}'; commands: ${Object.keys(this.options.handlers).join(', ')}`);
    }
    try {
      const result = await handler((r.args as Record<string, unknown> | undefined) ?? {});
      return { id: rid, ok: true, result: result ?? null };
    } catch (err) {
      if (err instanceof ControlError) {
        if (err.code === 'bad_request') return this.bad(rid, err.code, err.message);
        return { id: rid, ok: false, code: err.code, error: err.message };
      }
      this.options.log.log('daemon', 'error', `control command ${r.command} failed: ${(err as Error).stack ?? String(err)}`);
      return { id: rid, ok: false, code: 'internal', error: `internal error: ${(err as Error).message}` };
    }
  }

  private bad(id: ControlRequestId, code: ControlErrorCode, error: string): ControlResponse {
    this.counters.badRequests++;
    this.options.log.log('daemon', 'warn', `control socket: bad request: ${error}`);
    return { id, ok: false, code, error };
  }
}

function line(response: ControlResponse | undefined): string {
  return response === undefined ? '' : `${JSON.stringify(response)}\n`;
}

type Probe = { kind: 'absent' } | { kind: 'stale' } | { kind: 'live'; pid?: number };

/**
 * What is at `path`: nothing, a socket nobody accepts on (left by a crash),
 * or a live daemon (its pid when it answers `status` within a second).
 * Anything but a socket is an error: tunsec does not remove files it did not make.
 */
export async function probeControlSocket(path: string): Promise<Probe> {
  let st;
  try {
    st = lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'absent' };
    throw new Error(`control socket ${path}: ${(err as Error).message}`);
  }
  if (!st.isSocket()) throw new Error(`control socket ${path} exists and is not a socket; remove it or set another daemon.control_socket`);
  return new Promise<Probe>((resolve, reject) => {
    const socket = createConnection({ path });
    let buf = '';
    let connected = false;
    const done = (p: Probe): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(p);
    };
    const timer = setTimeout(() => done(connected ? { kind: 'live' } : { kind: 'stale' }), 1000);
    socket.on('connect', () => {
      connected = true;
      socket.write(`${JSON.stringify({ id: 'probe', command: 'status' })}\n`);
    });
    socket.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      try {
        const r = JSON.parse(buf.slice(0, nl)) as { result?: { daemon?: { pid?: unknown } } };
        const pid = r.result?.daemon?.pid;
        done(typeof pid === 'number' ? { kind: 'live', pid } : { kind: 'live' });
      } catch {
        done({ kind: 'live' });
      }
    });
    socket.on('end', () => done(connected ? { kind: 'live' } : { kind: 'stale' }));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (connected) return done({ kind: 'live' });
      clearTimeout(timer);
      socket.destroy();
      if (err.code === 'ECONNREFUSED') resolve({ kind: 'stale' });
      else if (err.code === 'ENOENT') resolve({ kind: 'absent' });
      else reject(new Error(`control socket ${path}: ${err.message}`));
    });
  });
}

// ---------------------------------------------------------------------------
// The commands, over a running Daemon.

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
  /** The peer's address: of the IKE SA, else the first configured one (null for %any). */
  peer: string | null;
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

export function ikeDefenceStatus(manager: IkeSaManager): IkeDefenceStatus {
  const c = manager.counters;
  return {
    half_open: manager.halfOpenCount,
    cookie_mode: manager.halfOpenCount >= manager.limits.cookieThreshold,
    cookies_sent: c.cookiesSent,
    cookies_rejected: c.cookiesRejected,
    limit_drops: c.halfOpenLimitDrops + c.peerHalfOpenDrops + c.initRateDrops + c.authRateDrops,
    half_open_timeouts: c.halfOpenTimeouts,
    peers: manager.peerStateCount,
    fragment_bytes: reassemblyBudget().bytes(Date.now()),
    limits: { ...manager.limits },
  };
}

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

export interface IkeSaInfo {
  name: string;
  spi_i: string;
  spi_r: string;
  initiator: boolean;
  state: IkeSaState;
  local: { address: string; port: number };
  remote: { address: string; port: number };
  local_id: string;
  remote_id: string;
  proposal: string | null;
  established: string | null;
  established_age: number | null;
  nat_local: boolean;
  nat_remote: boolean;
  children: ChildSaInfo[];
}

export interface ListSasResult {
  ike_sas: IkeSaInfo[];
  datapath: (DatapathStatus & { global_off: 'drop' | 'clear' | null }) | null;
  manager: (ManagerCounters & { half_open: number }) | null;
  /** Manual SAs (`tunsec sa list` shows them alone). */
  manual_sas?: ManualSaInfo[];
}

export interface ConnInfo {
  name: string;
  local_addrs: string[];
  remote_addrs: string[];
  remote_port: number;
  local_id: string;
  remote_id: string;
  certificate: string;
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

export interface UpResult {
  name: string;
  state: 'established';
  already: boolean;
  spi_i: string;
  spi_r: string;
  children: number;
}

export interface DownResult {
  name: string;
  deleted: number;
}

export type GlobalResult = GlobalStatus & {
  already?: boolean;
  deleted?: number;
  connections?: Array<{ name: string; established: boolean; error?: string }>;
};

/** When connections went down, when IKE SAs were first seen and which of their CHILD_SAs failed, for `status` and `up`. */
export class ConnectionStates {
  private readonly lastDown = new Map<string, number>();
  private readonly firstSeen = new WeakMap<IkeSa, number>();
  private readonly childFailures = new WeakMap<IkeSa, Map<string, { reason: string; at: number }>>();

  attach(manager: IkeSaManager): void {
    manager.on('destroyed', (sa) => this.lastDown.set(sa.ctx.config.name, Date.now()));
    manager.on('childFailed', (sa, name, reason) => {
      const failures = this.childFailures.get(sa) ?? new Map<string, { reason: string; at: number }>();
      failures.set(name, { reason, at: Date.now() });
      this.childFailures.set(sa, failures);
    });
    manager.on('childEstablished', (sa, child) => this.childFailures.get(sa)?.delete(child.name));
  }

  /** The CHILD_SAs that failed on `sa` and are not up on it (a failed rekey of one still up does not count). */
  failedChildren(sa: IkeSa): Array<{ name: string; reason: string; at: number }> {
    const up = new Set(sa.ctx.children.map((c) => c.name));
    return [...(this.childFailures.get(sa) ?? [])].filter(([name]) => !up.has(name)).map(([name, f]) => ({ name, ...f }));
  }

  downSince(name: string): number | undefined {
    return this.lastDown.get(name);
  }

  /** When an IKE SA was first seen here (a responder's half-open SA has no timestamp of its own). */
  seen(sa: IkeSa): number {
    let t = this.firstSeen.get(sa);
    if (t === undefined) {
      t = Date.now();
      this.firstSeen.set(sa, t);
    }
    return t;
  }
}

const iso = (ms: number): string => new Date(ms).toISOString();
const ageOf = (ms: number, now: number): number => Math.max(0, Math.floor((now - ms) / 1000));
const zeroCounters: SaCounters = { bytes: 0, packets: 0, replayDrops: 0, icvFailures: 0, badPadding: 0, policyDrops: 0, lastUsed: 0 };

/** Seconds from the command's `timeout` argument (default `dflt`), as milliseconds. */
function timeoutArg(args: Record<string, unknown>, dflt: number): number {
  const t = args.timeout;
  if (t === undefined) return dflt * 1000;
  if (typeof t !== 'number' || !Number.isFinite(t) || t <= 0 || t > 3600) throw new ControlError('bad_request', "'timeout' must be a number of seconds, above 0 and at most 3600");
  return t * 1000;
}

function nameArg(args: Record<string, unknown>, required: boolean): string | undefined {
  const n = args.name;
  if (n === undefined && !required) return undefined;
  if (typeof n !== 'string' || n === '') throw new ControlError('bad_request', "'name' must be a connection name");
  return n;
}

/** The handlers of every command, over `daemon`. */
export function controlCommands(daemon: Daemon): Record<string, ControlHandler> {
  const known = (name: string): void => {
    if (!daemon.connectionList.some((c) => c.name === name)) throw new ControlError('not_found', `no connection named '${name}'`);
  };
  const running = (): void => {
    if (daemon.phase !== 'running') throw new ControlError('unavailable', `the daemon is ${daemon.phase}`);
  };
  const failed = (err: unknown): ControlError =>
    err instanceof ControlError ? err : new ControlError((err as Error).name === 'UpTimeout' ? 'timeout' : 'failed', (err as Error).message);
  return {
    status: () => statusOf(daemon),
    'list-sas': (args) => {
      const name = nameArg(args, false);
      if (name !== undefined) known(name);
      return listSas(daemon, name);
    },
    'list-conns': () => listConns(daemon),
    check: (args) => {
      const name = nameArg(args, false);
      if (name !== undefined) known(name);
      return check(daemon, name);
    },
    up: async (args): Promise<UpResult> => {
      const name = nameArg(args, true)!;
      const timeout = timeoutArg(args, 60);
      running();
      known(name);
      try {
        const { sa, already } = await daemon.up(name, timeout);
        // as `swanctl --initiate`: an IKE_SA without the CHILD_SA asked for is a failure (the IKE_SA stays up)
        const failedChildren = daemon.connectionStates.failedChildren(sa);
        if (failedChildren.length > 0) {
          throw new ControlError('failed', `${name}: IKE_SA established, but ${failedChildren.map((f) => `CHILD_SA ${f.name} failed: ${f.reason}`).join('; ')}`);
        }
        return { name, state: 'established', already, spi_i: sa.ctx.spiI.toString('hex'), spi_r: sa.ctx.spiR.toString('hex'), children: sa.ctx.children.length };
      } catch (err) {
        const e = failed(err);
        throw new ControlError(e.code, `${name}: ${e.code === 'timeout' ? '' : 'establishing failed: '}${e.message}`);
      }
    },
    down: async (args): Promise<DownResult> => {
      const name = nameArg(args, true)!;
      const timeout = timeoutArg(args, 10);
      running();
      known(name);
      try {
        return { name, deleted: await daemon.down(name, timeout) };
      } catch (err) {
        throw failed(err);
      }
    },
    reload: async (): Promise<ReloadResult> => {
      running();
      const r = await daemon.reload();
      if (!r.ok) throw new ControlError('failed', [summarizeReload(r), ...r.errors.map((e) => `  ${e}`)].join('\n'));
      return r;
    },
    ...manualSaCommands(daemon, running),
    'global-status': (): GlobalResult => globalStatus(daemon),
    'global-down': async (args): Promise<GlobalResult> => {
      const timeout = timeoutArg(args, 10);
      running();
      try {
        const r = await daemon.globalDown(timeout);
        return { ...globalStatus(daemon), already: r.already, deleted: r.deleted };
      } catch (err) {
        throw failed(err);
      }
    },
    'global-up': async (args): Promise<GlobalResult> => {
      const timeout = timeoutArg(args, 60);
      running();
      try {
        const r = await daemon.globalUp(timeout);
        return { ...globalStatus(daemon), already: r.already, connections: r.connections };
      } catch (err) {
        throw failed(err);
      }
    },
  };
}

/** `sa-list`, `sa-add` ({name, settings: {key: value}}, checked as `manual.sas.NAME` in the file), `sa-del` ({name}). */
function manualSaCommands(daemon: Daemon, running: () => void): Record<string, ControlHandler> {
  const manual = () => {
    running();
    const m = daemon.manual;
    if (!m) throw new ControlError('unavailable', 'manual SAs need the userspace datapath (daemon.datapath: userspace)');
    return m;
  };
  const saName = (args: Record<string, unknown>): string => {
    if (typeof args.name !== 'string' || args.name === '') throw new ControlError('bad_request', "'name' must be a manual SA name");
    return args.name;
  };
  return {
    'sa-list': (): ManualSaListResult => manual().list(),
    'sa-add': (args): ManualSaInfo => {
      const name = saName(args);
      const settings = args.settings;
      if (typeof settings !== 'object' || settings === null || Array.isArray(settings)) throw new ControlError('bad_request', "'settings' must be an object of manual SA keys");
      const m = manual();
      const parsed = parseManualSa(name, settings);
      if (!parsed.ok) throw new ControlError('failed', `invalid manual SA '${name}':\n${parsed.problems.map((p) => `  ${p}`).join('\n')}`);
      try {
        return m.add(parsed.sa, 'runtime');
      } catch (err) {
        throw new ControlError('failed', (err as Error).message);
      }
    },
    'sa-del': (args): { name: string; deleted: true } => {
      const name = saName(args);
      if (!manual().delete(name, 'tunsec sa del')) throw new ControlError('not_found', `no manual SA named '${name}'`);
      return { name, deleted: true };
    },
  };
}

function globalStatus(daemon: Daemon): GlobalStatus {
  const g = daemon.global;
  return { state: g.state, mode: daemon.settings?.global ?? 'drop', since: iso(g.since), age: ageOf(g.since, Date.now()) };
}

function startActionOf(startChildren: readonly string[], trapChildren: readonly string[], child?: string): StartAction {
  const start = child === undefined ? startChildren.length > 0 : startChildren.includes(child);
  const trap = child === undefined ? trapChildren.length > 0 : trapChildren.includes(child);
  return start && trap ? 'trap|start' : start ? 'start' : trap ? 'trap' : 'none';
}

function aliveSas(daemon: Daemon, name?: string): IkeSa[] {
  return (daemon.manager?.sas ?? []).filter((sa) => sa.state !== 'destroyed' && (name === undefined || sa.ctx.config.name === name));
}

export function statusOf(daemon: Daemon): StatusResult {
  const now = Date.now();
  const started = daemon.startedAt;
  return {
    daemon: {
      pid: process.pid,
      state: daemon.phase,
      started: started === undefined ? null : iso(started),
      uptime: started === undefined ? 0 : ageOf(started, now),
      control_socket: daemon.settings?.control_socket ?? null,
      datapath: daemon.settings?.datapath ?? null,
      global: globalStatus(daemon),
      control: controlStats(daemon.controlServer),
      ...(daemon.manager ? { ike: ikeDefenceStatus(daemon.manager) } : {}),
    },
    connections: daemon.connectionList.map((c) => connectionStatus(daemon, c.name, now)),
  };
}

function controlStats(server: ControlServer | undefined): StatusResult['daemon']['control'] {
  const c = server?.counters ?? { connections: 0, requests: 0, badRequests: 0, rejectedClients: 0, refusedPeers: 0 };
  return { clients: server?.clientCount ?? 0, connections: c.connections, requests: c.requests, bad_requests: c.badRequests, rejected_clients: c.rejectedClients, refused_peers: c.refusedPeers };
}

function connectionStatus(daemon: Daemon, name: string, now: number): ConnectionStatus {
  const c = daemon.connectionList.find((x) => x.name === name)!;
  const sas = aliveSas(daemon, name);
  const established = sas.filter((sa) => sa.state === 'established' && sa.ctx.establishedAt !== undefined);
  const connecting = sas.filter((sa) => sa.state === 'created' || sa.state === 'connecting');
  let state: ConnectionState;
  let since: number;
  if (established.length > 0) {
    state = 'established';
    since = Math.min(...established.map((sa) => sa.ctx.establishedAt!));
  } else if (connecting.length > 0 || daemon.initiatingSince(name) !== undefined) {
    state = 'connecting';
    since = Math.min(...connecting.map((sa) => daemon.connectionStates.seen(sa)), daemon.initiatingSince(name) ?? Infinity);
  } else {
    state = 'not connected';
    since = daemon.connectionStates.downSince(name) ?? daemon.startedAt ?? now;
  }
  const shown = established[0] ?? connecting[0] ?? sas[0];
  const cfg = c.entry.config;
  return {
    name,
    state,
    since: iso(since),
    age: ageOf(since, now),
    peer: shown?.ctx.remote.address ?? c.entry.remoteAddrs.find((a) => a !== '%any') ?? null,
    local_id: describeIdentity(cfg.localId),
    remote_id: describeIdentity(shown?.ctx.peerId ?? cfg.remoteId),
    ike_sas: sas.length,
    children: established.reduce((n, sa) => n + sa.ctx.children.length, 0),
    failed_children: established.flatMap((sa) => daemon.connectionStates.failedChildren(sa)).map((f) => ({ name: f.name, reason: f.reason, since: iso(f.at) })),
    start_action: startActionOf(c.startChildren, c.trapChildren),
  };
}

export function listSas(daemon: Daemon, name?: string): ListSasResult {
  const now = Date.now();
  const sad = daemon.backend;
  const ike = aliveSas(daemon, name).map((sa): IkeSaInfo => {
    const ctx = sa.ctx;
    const children = ctx.children.map((child): ChildSaInfo => {
      const cin = sad.querySa(child.inboundSpi, 'in') ?? zeroCounters;
      const cout = sad.querySa(child.outboundSpi, 'out') ?? zeroCounters;
      const nowSec = now / 1000;
      return {
        name: child.name,
        reqid: child.reqid,
        mode: child.mode,
        encap: child.encap,
        proposal: formatProposal(child.proposal),
        spi_in: spiHex(child.inboundSpi),
        spi_out: spiHex(child.outboundSpi),
        local_ts: child.localTs,
        remote_ts: child.remoteTs,
        installed: iso(child.installedAt),
        installed_age: ageOf(child.installedAt, now),
        bytes_in: cin.bytes,
        packets_in: cin.packets,
        bytes_out: cout.bytes,
        packets_out: cout.packets,
        last_in: cin.lastUsed > 0 ? Math.max(0, Math.floor(nowSec - cin.lastUsed)) : null,
        last_out: cout.lastUsed > 0 ? Math.max(0, Math.floor(nowSec - cout.lastUsed)) : null,
        replay_window: sad.inboundSa(child.inboundSpi)?.spec.replayWindow ?? 0,
        replay_drops: cin.replayDrops,
        icv_failures: cin.icvFailures,
        bad_padding: cin.badPadding,
        policy_drops: cin.policyDrops,
      };
    });
    return {
      name: ctx.config.name,
      spi_i: ctx.spiI.toString('hex'),
      spi_r: ctx.spiR.toString('hex'),
      initiator: ctx.originalInitiator,
      state: ctx.state,
      local: { address: ctx.local.address, port: ctx.local.port },
      remote: { address: ctx.remote.address, port: ctx.remote.port },
      local_id: describeIdentity(ctx.config.localId),
      remote_id: describeIdentity(ctx.peerId ?? ctx.config.remoteId),
      proposal: ctx.selected ? formatProposal(ctx.selected) : null,
      established: ctx.establishedAt === undefined ? null : iso(ctx.establishedAt),
      established_age: ctx.establishedAt === undefined ? null : ageOf(ctx.establishedAt, now),
      nat_local: ctx.natLocal,
      nat_remote: ctx.natRemote,
      children,
    };
  });
  const dp = daemon.datapath;
  const manager = daemon.manager;
  return {
    ike_sas: ike,
    datapath: dp ? { ...dp.status(), global_off: dp.datapath.globalOff ?? null } : null,
    manager: manager ? { ...manager.counters, half_open: manager.halfOpenCount } : null,
    manual_sas: daemon.manual?.list().sas ?? [],
  };
}

export function listConns(daemon: Daemon): ListConnsResult {
  return {
    connections: daemon.connectionList.map((c): ConnInfo => {
      const cfg = c.entry.config;
      return {
        name: c.name,
        local_addrs: c.entry.localAddrs,
        remote_addrs: c.entry.remoteAddrs,
        remote_port: c.entry.remotePort,
        local_id: describeIdentity(cfg.localId),
        remote_id: describeIdentity(cfg.remoteId),
        certificate: cfg.certificate.subject.text,
        proposals: cfg.ikeProposals.map(formatProposal),
        encap: cfg.forceEncap,
        fragmentation: cfg.fragmentation,
        keyingtries: c.keyingtries,
        children: cfg.children.map((ch) => ({
          name: ch.name,
          reqid: ch.reqid ?? null,
          mode: ch.mode,
          esp_proposals: ch.espProposals.map(formatProposal),
          local_ts: ch.localTs.map((t) => t.text),
          remote_ts: ch.remoteTs.map((t) => t.text),
          start_action: startActionOf(c.startChildren, c.trapChildren, ch.name),
          policy: ch.policy,
          replay_window: ch.replayWindow,
        })),
      };
    }),
  };
}

/**
 * Nagios/Icinga semantics. Without a name, the connections that are meant to
 * be up (a child with start_action start or trap) count; with a name, that
 * connection whatever its start_action. CRITICAL: one of them is not
 * connected, or any packet went out in the clear by a private-or-clear
 * fallback; WARNING: one is connecting; else OK.
 */
export function check(daemon: Daemon, name?: string): CheckResult {
  const now = Date.now();
  const all = daemon.connectionList.map((c) => ({ status: connectionStatus(daemon, c.name, now), expected: name === undefined ? c.startChildren.length + c.trapChildren.length > 0 : c.name === name }));
  const considered = all.filter((c) => (name === undefined ? true : c.status.name === name));
  const fallback = daemon.datapath?.status().counters.outFallbackClear ?? 0;
  const g = daemon.global.state;
  const expected = considered.filter((c) => c.expected);
  const down = expected.filter((c) => c.status.state === 'not connected');
  const connecting = expected.filter((c) => c.status.state === 'connecting');
  const up = expected.filter((c) => c.status.state === 'established');
  const childless = up.filter((c) => c.status.failed_children.length > 0);
  const problems: string[] = [];
  if (down.length > 0) problems.push(`${down.map((c) => c.status.name).join(', ')} not connected`);
  for (const c of childless) problems.push(`${c.status.name}: ${c.status.failed_children.map((f) => `CHILD_SA ${f.name} failed`).join(', ')}`);
  if (fallback > 0) problems.push(`${fallback} packet${fallback === 1 ? '' : 's'} sent in the clear (private-or-clear fallback)`);
  if (connecting.length > 0) problems.push(`${connecting.map((c) => c.status.name).join(', ')} connecting`);
  if (g !== 'up') problems.push(`global switch ${g}`);
  let code: CheckResult['code'] = 0;
  if (down.length > 0 || fallback > 0 || childless.length > 0) code = 2;
  else if (connecting.length > 0) code = 1;
  const status = (['OK', 'WARNING', 'CRITICAL'] as const)[code];
  const summary =
    code === 0
      ? expected.length === 0
        ? `no connection is meant to be up (none with start_action start or trap)${g !== 'up' ? `; global switch ${g}` : ''}`
        : `${up.length === 1 && expected.length === 1 ? `${up[0]!.status.name} established` : `${up.length} of ${expected.length} connections established`}${g !== 'up' ? `; global switch ${g}` : ''}`
      : problems.join('; ');
  const perfdata = `established=${up.length} connecting=${connecting.length} not_connected=${down.length} fallback_clear=${fallback}c`;
  return {
    code,
    status,
    summary,
    perfdata,
    connections: considered.map((c) => ({ name: c.status.name, state: c.status.state, since: c.status.since, age: c.status.age, expected: c.expected })),
    fallback_clear: fallback,
    global: g,
  };
}
