/**
 * The tunsec daemon: loads the configuration and credentials, binds the IKE
 * sockets, runs the IKE SA manager over them, initiates the connections with
 * `start_action: start`, and shuts everything down on request.
 *
 * Nothing a peer sends and no bug in a handler may stop the daemon: errors in
 * event handlers are logged and the daemon goes on. Starting fails (with
 * every problem listed) when the configuration or the credentials are
 * unusable, when the pid file names a running daemon, or when a socket
 * cannot be bound.
 */
import { SecurityAssociationDatabase } from '../esp/sadb.js';
import { formatProblem, loadConfig, type ConfigProblem, type DaemonConfig, type TunsecConfig } from '../config/index.js';
import { IkeSaManager } from '../ike/manager.js';
import type { IkeSa, IkeSaEndCause, IkeSaIo } from '../ike/sa/ike-sa.js';
import type { RetransmitSettings } from '../ike/exchange/index.js';
import { UdpTransport, type Endpoint, type ReceivedIke } from '../ike/net/udp.js';
import { resolveCredentials, type ResolvedConnection } from './credentials.js';
import { managerLimits } from './limits.js';
import { SaEventReporter } from './events.js';
import { ConnectionStates } from './connection-states.js';
import { ControlServer } from './control/server.js';
import { controlCommands } from './control/commands.js';
import { daemonMetricsSource } from './control/views.js';
import { IkeBypassRules } from './bypass.js';
import { DaemonDatapath } from './datapath.js';
import { ManualSas } from './manual.js';
import { LostPeers } from './lost-peers.js';
import type { ExpireEvent } from '../esp/api.js';
import { transformOfType } from '../ike/proposal/index.js';
import { TransformType } from '../ike/transforms.js';
import { DaemonLogger } from './logger.js';
import { MetricsServer } from './metrics.js';
import { SourceAddressCache, bindAddresses, isWildcard, sourceAddressFor, WILDCARD_V6 } from './net.js';
import { PidFileError, acquirePidFile, releasePidFile } from './pidfile.js';
import { carryReqids, emptyResult, planReload } from './reload.js';
import { summarizeReload } from '../control/reload-summary.js';
import type { DaemonState, GlobalSwitchState, ReloadResult } from '../control/protocol.js';

/** The IKE port when no connection sets `local_port` (RFC 7296 §2). */
export const IKE_PORT = 500;
/** The NAT-T port (RFC 3948); strongSwan's charon.port_nat_t. */
export const NATT_PORT = 4500;

export interface DaemonOptions {
  logger?: DaemonLogger;
  /** The NAT-T port to bind and float to (default 4500). */
  nattPort?: number;
  /** Default strongSwan's: 4 s, ×1.8, 5 retransmits. */
  retransmit?: Partial<RetransmitSettings>;
  /** Delay before re-initiating a failed `start` connection: first, and the cap as it doubles. */
  retryDelayMs?: { initial: number; max: number };
  /** Serve the control socket at `daemon.control_socket` (`tunsec daemon` does; off for daemons embedded in tests and tools). */
  control?: boolean;
}

/** Why the daemon did not start; `problems` are the lines to show, each on its own. */
export class DaemonStartError extends Error {
  override readonly name = 'DaemonStartError';
  constructor(
    message: string,
    readonly problems: readonly string[] = [],
  ) {
    super(problems.length === 0 ? message : `${message}\n${problems.map((p) => `  ${p}`).join('\n')}`);
  }
}

export class Daemon {
  readonly log: DaemonLogger;
  private state: DaemonState = 'new';
  private transport?: UdpTransport;
  private managerInstance?: IkeSaManager;
  readonly backend = new SecurityAssociationDatabase();
  private readonly events: SaEventReporter;
  private readonly sourceAddresses = new SourceAddressCache();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly wakeups = new Set<() => void>();
  private connections: ResolvedConnection[] = [];
  /** Children to create once the connection's next IKE SA is up (dpd_action restart, close_action start). */
  private readonly restartChildren = new Map<string, Set<string>>();
  /** Connections with an on-demand (acquire, lost peer) initiation in progress. */
  private readonly initiating = new Set<string>();
  private readonly lostPeers = new LostPeers();
  private pidFile?: string;
  private bypass?: IkeBypassRules;
  private datapathInstance?: DaemonDatapath;
  /** Manual (static) SAs and policies (./manual.ts); with the userspace datapath. */
  private manualSas?: ManualSas;
  private readonly nattPort: number;
  private control?: ControlServer;
  private metricsServer?: MetricsServer;
  private daemonConfig?: DaemonConfig;
  /** For reload: the configuration file, the running configuration (its `daemon:` section as applied) and the bound IKE port. */
  private configPath?: string;
  private runningConfig?: TunsecConfig;
  private boundIkePort?: number;
  private startTime?: number;
  /** Connections with a `start` initiation loop running (an attempt, or waiting to retry); removing the entry ends the loop. */
  private readonly retrying = new Map<string, { since: number }>();
  private globalSwitch: { state: GlobalSwitchState; since: number } = { state: 'up', since: Date.now() };
  /** Global switch transitions run one after the other. */
  private globalTransition: Promise<unknown> = Promise.resolve();
  /** When connections were last up / connecting / not connected, for `tunsec status`. */
  readonly connectionStates = new ConnectionStates();

  constructor(private readonly options: DaemonOptions = {}) {
    this.log = options.logger ?? new DaemonLogger();
    this.nattPort = options.nattPort ?? NATT_PORT;
    this.events = new SaEventReporter(this.log);
  }

  get manager(): IkeSaManager | undefined {
    return this.managerInstance;
  }

  /** The manual SAs (with the userspace datapath, once started). */
  get manual(): ManualSas | undefined {
    return this.manualSas;
  }

  /** The userspace ESP datapath (absent with `datapath: none`). */
  get datapath(): DaemonDatapath | undefined {
    return this.datapathInstance;
  }

  get running(): boolean {
    return this.state === 'running';
  }

  get phase(): DaemonState {
    return this.state;
  }

  /** When start() was called; undefined before. */
  get startedAt(): number | undefined {
    return this.startTime;
  }

  /** The `daemon` section of the running configuration. */
  get settings(): DaemonConfig | undefined {
    return this.daemonConfig;
  }

  /** The loaded connections, in configuration order. */
  get connectionList(): readonly ResolvedConnection[] {
    return this.connections;
  }

  /** The global off switch and since when it is in that state. */
  get global(): { state: GlobalSwitchState; since: number } {
    return { ...this.globalSwitch };
  }

  /** The metrics endpoint (with `daemon.metrics`, once started). */
  get metrics(): MetricsServer | undefined {
    return this.metricsServer;
  }

  /** The control socket (with `control: true`, once started). */
  get controlServer(): ControlServer | undefined {
    return this.control;
  }

  /** Since when the daemon has been initiating `name` (an attempt running or waiting to retry); undefined when it is not. */
  initiatingSince(name: string): number | undefined {
    return this.retrying.get(name)?.since;
  }

  /** The bound IKE and NAT-T endpoints. */
  get endpoints(): Array<Endpoint & { natt: boolean }> {
    return this.transport?.boundEndpoints() ?? [];
  }

  /**
   * Load `configPath` and start. Rejects with a DaemonStartError listing every
   * problem; nothing is left bound or written then.
   */
  async start(configPath: string): Promise<void> {
    if (this.state !== 'new') throw new Error(`daemon already ${this.state}`);
    this.state = 'starting';
    this.startTime = Date.now();
    try {
      await this.startUp(configPath);
    } catch (err) {
      await this.datapathInstance?.stop({ keepBackstop: true });
      this.datapathInstance = undefined;
      await this.bypass?.remove();
      this.bypass = undefined;
      this.cleanUp();
      this.state = 'stopped';
      if (err instanceof DaemonStartError) {
        this.log.log('daemon', 'error', `not started: ${err.message.split('\n')[0]}`);
      }
      throw err;
    }
    this.state = 'running';
  }

  private async startUp(configPath: string): Promise<void> {
    this.log.log('daemon', 'info', `tunsec daemon starting (pid ${process.pid}), configuration ${configPath}`);

    const loaded = loadConfig({ path: configPath });
    if (!loaded.ok) {
      const problems = loaded.error.problems;
      for (const p of problems) this.log.log('cfg', p.severity === 'error' ? 'error' : 'warn', describeProblem(configPath, p));
      const errors = problems.filter((p) => p.severity === 'error');
      throw new DaemonStartError(
        `${configPath}: ${errors.length} configuration problem${errors.length === 1 ? '' : 's'}`,
        errors.map((p) => describeProblem(configPath, p)),
      );
    }
    const config = loaded.config;
    this.log.setLevels(config.daemon.log);
    for (const w of loaded.warnings) this.log.log('cfg', 'warn', describeProblem(configPath, w));

    const creds = resolveCredentials(config);
    for (const w of creds.warnings) this.log.log('cfg', 'warn', w);
    if (creds.errors.length > 0) {
      for (const e of creds.errors) this.log.log('cfg', 'error', e);
      throw new DaemonStartError(`${configPath}: ${creds.errors.length} credential problem${creds.errors.length === 1 ? '' : 's'}`, creds.errors);
    }
    for (const c of creds.connections) {
      const e = c.entry;
      this.log.log(
        'cfg',
        'info',
        `loaded connection ${c.name}: ${e.localAddrs.join(',')} → ${e.remoteAddrs.join(',')}:${e.remotePort}, local id ${e.config.localId.value}, certificate '${e.config.certificate.subject.text}', ${e.config.children.length} child${e.config.children.length === 1 ? '' : 'ren'}`,
      );
    }
    if (creds.connections.length === 0) this.log.log('cfg', 'warn', 'no connections are configured: the daemon will answer no IKE requests');

    const ikePort = this.ikePort(config);

    try {
      const r = acquirePidFile(config.daemon.pid_file);
      this.pidFile = config.daemon.pid_file;
      if (r.replacedStale !== undefined) this.log.log('daemon', 'info', `replaced stale pid file ${config.daemon.pid_file} (process ${r.replacedStale} is gone)`);
    } catch (err) {
      if (err instanceof PidFileError) throw new DaemonStartError(err.message);
      throw err;
    }
    this.daemonConfig = config.daemon;
    if (this.options.control) {
      const control = new ControlServer({ path: config.daemon.control_socket, log: this.log, handlers: controlCommands(this) });
      try {
        await control.start();
      } catch (err) {
        throw new DaemonStartError((err as Error).message);
      }
      this.control = control;
    }
    if (config.daemon.metrics) {
      const metrics = new MetricsServer({ listen: config.daemon.metrics, log: this.log, source: daemonMetricsSource(this) });
      try {
        await metrics.start();
      } catch (err) {
        throw new DaemonStartError((err as Error).message);
      }
      this.metricsServer = metrics;
    }

    // ESP-in-UDP of manual SAs goes through the NAT-T sockets: their addresses are bound too.
    const manualUdp = Object.values(config.manual.sas).flatMap((m) => (m.encap ? [m.local_addr] : []));
    if (creds.connections.length > 0 || manualUdp.length > 0) {
      this.transport = await this.bind(
        [...Object.values(config.connections).flatMap((c) => c.local_addrs), ...manualUdp],
        ikePort,
      );
    }
    if (config.daemon.bypass_rules && this.transport) {
      this.bypass = new IkeBypassRules([ikePort, this.nattPort]);
      for (const problem of await this.bypass.install()) this.log.log('net', 'warn', `IKE bypass rule not installed: ${problem}`);
    }
    const transport = this.transport;
    if (config.daemon.datapath === 'userspace') {
      const dp = new DaemonDatapath(config.daemon, this.backend, this.log, (trap) => this.acquired(trap.connection, trap.child));
      this.datapathInstance = dp;
      this.backend.on('expire', (e) => this.guard('SA expiry', () => this.hardExpired(e)));
      try {
        await dp.start(transport, creds.connections);
      } catch (err) {
        throw new DaemonStartError(`cannot start the userspace ESP datapath: ${(err as Error).message}`);
      }
      this.manualSas = new ManualSas({ sad: this.backend, log: this.log, udpAvailable: (address, port) => this.transport?.nattSocket({ address, port }) !== undefined });
      const manualProblems: string[] = [];
      for (const m of Object.values(config.manual.sas)) {
        try {
          this.manualSas.add(m, 'config');
        } catch (err) {
          manualProblems.push((err as Error).message);
        }
      }
      if (manualProblems.length > 0) {
        this.manualSas.deleteAll('daemon not started');
        throw new DaemonStartError('cannot install the manual SAs', manualProblems);
      }
    }
    const io: IkeSaIo = {
      nattPort: this.nattPort,
      keepaliveMs: config.daemon.keep_alive * 1000,
      sendKeepalive: (local, remote) => {
        try {
          transport?.sendKeepalive(local, remote);
        } catch (err) {
          this.log.log('net', 'warn', `cannot send NAT-T keepalive to ${fmt(remote)}: ${(err as Error).message}`);
        }
      },
      send: (local, remote, datagrams) => {
        for (const d of datagrams) {
          try {
            transport?.sendIke(local, remote, d);
          } catch (err) {
            this.log.log('net', 'error', `cannot send IKE datagram from ${fmt(local)} to ${fmt(remote)}: ${(err as Error).message}`);
          }
        }
      },
    };
    this.managerInstance = new IkeSaManager({
      connections: creds.connections.map((c) => c.entry),
      backend: this.backend,
      log: this.log.ikeLogger(creds.connections.map((c) => c.name)),
      io,
      ikePort,
      retransmit: { ...config.daemon.retransmit, ...this.options.retransmit },
      ...managerLimits(config.daemon.limits),
      unknownSaRequest: (remote) => this.guard('IKE request for an unknown IKE_SA', () => this.peerLostUs(remote.address)),
    });
    this.events.attach(this.managerInstance);
    this.connectionStates.attach(this.managerInstance);
    this.managerInstance.on('established', (sa) => this.guard('IKE_SA established', () => this.createMissingChildren(sa)));
    this.managerInstance.on('destroyed', (sa, _reason, cause) => this.guard('IKE_SA end', () => this.ikeSaEnded(sa, cause)));
    this.managerInstance.on('childClosed', (sa, child) => this.guard('CHILD_SA closed', () => this.childClosed(sa, child.name)));
    const keylog = this.datapathInstance?.keyLog;
    if (keylog) {
      this.managerInstance.on('established', (sa) => {
        const encr = sa.ctx.selected ? transformOfType(sa.ctx.selected, TransformType.ENCR) : undefined;
        const keys = sa.ctx.keys;
        if (encr && keys) keylog.ikeSa({ spiI: sa.ctx.spiI, spiR: sa.ctx.spiR, encrId: encr.id, keyBits: encr.keyLength ?? 0, skEi: keys.skEi, skEr: keys.skEr });
      });
    }
    transport?.on('ike', (d) => this.receiveIke(d));
    if (!this.datapathInstance) transport?.on('esp', (d) => this.log.log('net', 'debug', `ESP-in-UDP packet from ${fmt(d.remote)} dropped: datapath none`));
    transport?.on('keepalive', (from, local) => this.log.log('net', 'debug', `NAT-T keepalive from ${fmt(from)} to ${fmt(local)}`));
    transport?.on('dropped', (reason, from, local) => this.log.log('net', 'debug', `datagram from ${fmt(from)} to ${fmt(local)} dropped: ${reason}`));

    const endpoints = this.endpoints;
    this.log.event('daemon', 'daemon_started', `tunsec daemon running (pid ${process.pid}), IKE on ${endpoints.map(fmt).join(' ') || 'no sockets'}`, {
      pid: process.pid,
      pid_file: config.daemon.pid_file,
      endpoints,
      connections: creds.connections.map((c) => c.name),
    });

    this.connections = creds.connections;
    this.configPath = configPath;
    this.runningConfig = config;
    this.boundIkePort = ikePort;
    await this.datapathInstance?.installTraps(creds.connections);
    await this.datapathInstance?.settleBackstop();
    for (const c of creds.connections) {
      if (c.startChildren.length > 0) void this.keepInitiating(c);
    }
  }

  /**
   * A CHILD_SA's SA reached its hard lifetime. Normally the soft limit (or the
   * rekey timer) rekeyed it long before (CREATE_CHILD_SA, src/ike/sa/ike-sa.ts)
   * and the expiring SA is an old one no CHILD_SA uses any more: nothing to do.
   * When it is still the current SA of a CHILD_SA the rekey failed; as the
   * fallback the IKE SA carrying it is deleted (the peer is told): the trap
   * policy then holds the traffic and negotiates a fresh IKE SA and CHILD_SA —
   * break-before-make, but never cleartext and never a dead CHILD_SA under a
   * live IKE SA.
   */
  private hardExpired(e: ExpireEvent): void {
    if (!e.hard) return;
    const spi = e.spi >>> 0;
    const owner = this.managerInstance?.sas.find((sa) => sa.ctx.children.some((c) => c.reqid === e.reqid && (c.inboundSpi === spi || c.outboundSpi === spi)));
    if (!owner || owner.state === 'destroyed') return;
    this.log.log('daemon', 'warn', `${owner.ctx.name}: CHILD_SA {${e.reqid}} reached its hard ${e.reason} lifetime; deleting the IKE_SA to renegotiate (it was not rekeyed in time)`);
    owner.delete(`CHILD_SA {${e.reqid}} expired (${e.reason})`);
  }

  /**
   * Traffic hit the trap policy of a child: negotiate, unless an IKE SA of
   * the connection is already up or on its way (its CHILD_SA installs the
   * policy that replaces the trap).
   */
  private acquired(connection: string, child: string): void {
    if (this.state !== 'running' || this.globalSwitch.state !== 'up') return;
    const sas = this.managerInstance?.sas.filter((sa) => sa.ctx.config.name === connection && sa.state !== 'destroyed') ?? [];
    // An IKE SA is up but this child has no CHILD_SA (the peer deleted it, it failed): CREATE_CHILD_SA on it.
    const up = sas.find((sa) => sa.state === 'established' && !sa.successor);
    const config = up?.ctx.config.children.find((c) => c.name === child);
    if (up && config && !up.ctx.children.some((c) => c.name === child)) return up.createChild(config, 'traffic hit its trap policy (acquire)');
    if (sas.length > 0 || this.initiating.has(connection)) return;
    const c = this.connections.find((x) => x.name === connection);
    if (!c) return;
    if (!c.entry.remoteAddrs.some((a) => a !== '%any')) {
      this.log.log('daemon', 'debug', `traffic for ${connection}/${child} dropped: no SA, and remote_addrs names no peer to negotiate with`);
      return;
    }
    this.log.log('daemon', 'info', `traffic for ${connection}/${child} triggers negotiation (acquire)`, { conn: connection, child });
    this.negotiateOnDemand(c);
  }

  /**
   * A peer sent a request for an IKE SA we do not have: it outlived our restart
   * (./lost-peers.ts). Connections to it that should be up are initiated now;
   * holding no IKE SA with the peer, we send INITIAL_CONTACT and it drops the
   * stale one at once instead of after its DPD gave up.
   */
  private peerLostUs(address: string): void {
    if (this.state !== 'running' || this.globalSwitch.state !== 'up') return;
    const busy = (name: string): boolean =>
      this.retrying.has(name) || this.initiating.has(name) || (this.managerInstance?.sas.some((sa) => sa.ctx.config.name === name && sa.state !== 'destroyed') ?? true);
    for (const c of this.lostPeers.toInitiate(address, this.connections, busy)) {
      this.log.log('daemon', 'info', `connection ${c.name}: ${address} sent an IKE request for an IKE_SA we do not have (lost in a restart); initiating so that it replaces it`, { conn: c.name });
      this.negotiateOnDemand(c);
    }
  }

  private negotiateOnDemand(c: ResolvedConnection): void {
    this.initiating.add(c.name);
    void this.initiateOnce(c).finally(() => this.initiating.delete(c.name));
  }

  /**
   * After IKE_AUTH (which carries the first configured child): the other
   * `start` children of the connection, and those a `restart`/`start` action
   * asked for, get their CHILD_SAs through CREATE_CHILD_SA.
   */
  private createMissingChildren(sa: IkeSa): void {
    if (!sa.ctx.originalInitiator || this.state !== 'running') return;
    const c = this.connections.find((x) => x.name === sa.ctx.config.name && x.entry.config === sa.ctx.config);
    if (!c) return;
    const wanted = new Set([...c.startChildren, ...(this.restartChildren.get(c.name) ?? [])]);
    this.restartChildren.delete(c.name);
    for (const config of sa.ctx.config.children) {
      if (wanted.has(config.name) && !sa.ctx.children.some((x) => x.name === config.name)) sa.createChild(config, 'configured to start');
    }
  }

  /**
   * An IKE SA ended. When the peer is dead (DPD or any unanswered exchange,
   * §2.4) each child's `dpd_action`, when the peer deleted it its
   * `close_action`: `restart`/`start` negotiates again at once (keyingtries),
   * `trap` installs the child's trap policy so its traffic negotiates on
   * demand, `clear`/`none` leaves it. Whatever the action, a `private` child
   * keeps its trap (configured or learned): its traffic is dropped, never sent
   * in the clear.
   */
  private ikeSaEnded(sa: IkeSa, cause: IkeSaEndCause): void {
    if (cause !== 'dead-peer' && cause !== 'peer-deleted') return;
    const label = cause === 'dead-peer' ? 'dpd_action' : 'close_action';
    this.log.log('daemon', cause === 'dead-peer' ? 'warn' : 'info', `${sa.ctx.name}: ${cause === 'dead-peer' ? `peer ${sa.ctx.remote.address} is dead` : `peer ${sa.ctx.remote.address} closed the IKE_SA`}; applying ${label} of ${sa.childNamesAtEnd.join(', ') || 'no CHILD_SA'}`, {
      conn: sa.ctx.config.name,
      cause,
    });
    for (const child of sa.childNamesAtEnd) this.applyEndAction(sa, child, cause);
  }

  /** The peer deleted one CHILD_SA; the IKE SA stays: close_action of that child. */
  private childClosed(sa: IkeSa, child: string): void {
    this.applyEndAction(sa, child, 'peer-deleted');
  }

  private applyEndAction(sa: IkeSa, child: string, cause: 'dead-peer' | 'peer-deleted'): void {
    if (this.state !== 'running' || this.globalSwitch.state !== 'up') return;
    const c = this.connections.find((x) => x.name === sa.ctx.config.name);
    if (!c) return;
    const setting = cause === 'dead-peer' ? 'dpd_action' : 'close_action';
    const action = cause === 'dead-peer' ? c.dpdActions[child] : c.closeActions[child];
    if (action === 'trap') {
      void this.datapathInstance?.installTrap(c, child, sa.ctx.remote.address);
      return;
    }
    if (action !== 'restart' && action !== 'start') return;
    const config = sa.ctx.config.children.find((x) => x.name === child);
    // The IKE SA is still there (a CHILD_SA closed): a new CHILD_SA on it.
    if (sa.state === 'established' && config) return sa.createChild(config, `close_action ${action}`);
    const others = this.managerInstance?.sas.some((s) => s !== sa && s.ctx.config.name === c.name && s.state !== 'destroyed');
    if (others) return;
    if (!c.entry.remoteAddrs.some((a) => a !== '%any')) {
      this.log.log('daemon', 'warn', `connection ${c.name}: ${setting} ${action} impossible: remote_addrs names no peer to initiate to`);
      return;
    }
    const set = this.restartChildren.get(c.name) ?? new Set<string>();
    set.add(child);
    this.restartChildren.set(c.name, set);
    if (this.retrying.has(c.name)) return;
    this.log.log('daemon', 'info', `connection ${c.name}: ${setting} ${action}: initiating again`, { conn: c.name, child });
    void this.keepInitiating(c);
  }

  private async initiateOnce(c: ResolvedConnection): Promise<void> {
    try {
      const remote = c.entry.remoteAddrs.find((a) => a !== '%any');
      const local = c.entry.localAddrs.find((a) => a !== '%any') ?? (remote === undefined ? undefined : await sourceAddressFor(remote));
      await this.managerInstance!.initiate(c.name, local);
    } catch (err) {
      this.log.log('daemon', 'warn', `connection ${c.name}: on-demand negotiation failed: ${(err as Error).message}`);
    }
  }

  /** One IKE port for all connections (their `local_port`); the NAT-T port is the daemon's. */
  private ikePort(config: TunsecConfig): number {
    const ports = new Map<number, string[]>();
    for (const c of Object.values(config.connections)) ports.set(c.local_port, [...(ports.get(c.local_port) ?? []), c.name]);
    if (ports.size > 1) {
      throw new DaemonStartError('connections use different local_port values; tunsec listens on one IKE port', [
        ...[...ports].map(([port, names]) => `local_port ${port}: ${names.join(', ')}`),
      ]);
    }
    const port = ports.keys().next().value ?? IKE_PORT;
    if (port === this.nattPort) throw new DaemonStartError(`local_port ${port} is the NAT-T port; choose another IKE port`);
    return port;
  }

  private async bind(localAddrs: string[], ikePort: number): Promise<UdpTransport> {
    const plan = bindAddresses(localAddrs);
    const attempt = async (addresses: string[]): Promise<UdpTransport> => {
      const t = new UdpTransport({ addresses, ikePort, nattPort: this.nattPort });
      await t.start();
      return t;
    };
    try {
      return await attempt(plan.addresses);
    } catch (err) {
      if (plan.optionalV6Wildcard && plan.addresses.length > 1) {
        try {
          const t = await attempt(plan.addresses.filter((a) => a !== WILDCARD_V6));
          this.log.log('net', 'warn', `IPv6 unavailable (${(err as Error).message}); listening on IPv4 only`);
          return t;
        } catch {
          /* report the first failure */
        }
      }
      throw new DaemonStartError((err as Error).message);
    }
  }

  private receiveIke(d: ReceivedIke): void {
    if (this.globalSwitch.state === 'down') return this.log.log('net', 'debug', `IKE datagram from ${fmt(d.remote)} ignored: the global switch is down`);
    this.guard('IKE datagram', () => {
      if (!isWildcard(d.local.address)) {
        this.managerInstance?.receive(d.message, d.local, d.remote);
        return;
      }
      // A wildcard socket: IKE needs the concrete address the datagram was sent to.
      this.sourceAddresses.get(d.remote.address).then(
        (address) =>
          this.guard('IKE datagram', () => {
            if (this.state !== 'running' && this.state !== 'stopping') return;
            this.managerInstance?.receive(d.message, { address, port: d.local.port }, d.remote);
              }),
        (err: Error) => this.log.log('net', 'warn', `IKE datagram from ${fmt(d.remote)} dropped: no route back (${err.message})`),
      );
    });
  }

  /**
   * Initiate until established, retrying with backoff; `keyingtries` attempts (0 = forever).
   * `firstOutcome` hears how the first attempt ended. `down`, `global down` and stop end the loop.
   */
  private async keepInitiating(c: ResolvedConnection, firstOutcome?: (err?: Error) => void): Promise<void> {
    const loop = { since: Date.now() };
    this.retrying.set(c.name, loop);
    try {
      await this.initiateWithRetries(c, loop, firstOutcome);
    } finally {
      if (this.retrying.get(c.name) === loop) this.retrying.delete(c.name);
    }
  }

  private async initiateWithRetries(c: ResolvedConnection, loop: { since: number }, firstOutcome?: (err?: Error) => void): Promise<void> {
    const delays = this.options.retryDelayMs ?? { initial: 1000, max: 60_000 };
    const current = (): boolean => (this.state === 'starting' || this.state === 'running') && this.retrying.get(c.name) === loop;
    for (let attempt = 1; current(); attempt++) {
      try {
        const remote = c.entry.remoteAddrs.find((a) => a !== '%any');
        const local =
          c.entry.localAddrs.find((a) => a !== '%any') ?? (remote === undefined ? undefined : await sourceAddressFor(remote));
        const sa = await this.managerInstance!.initiate(c.name, local);
        this.log.log('daemon', 'info', `connection ${c.name} established (attempt ${attempt})`, { conn: c.name, spi_i: sa.ctx.spiI.toString('hex') });
        firstOutcome?.();
        return;
      } catch (err) {
        firstOutcome?.(err as Error);
        firstOutcome = undefined;
        if (!current()) return;
        const tries = c.keyingtries === 0 ? 'forever' : `${c.keyingtries}`;
        const last = c.keyingtries !== 0 && attempt >= c.keyingtries;
        this.log.log(
          'daemon',
          last ? 'error' : 'warn',
          `connection ${c.name}: establishing failed (attempt ${attempt} of ${tries}): ${(err as Error).message}${last ? '; giving up (keyingtries)' : ''}`,
        );
        if (last) return;
        await this.sleep(retryDelay(attempt, delays));
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.timers.delete(timer);
        this.wakeups.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.timers.add(timer);
      this.wakeups.add(wake);
    });
  }

  /** Run a handler; an exception is logged, never thrown into the event loop. */
  guard(what: string, f: () => void): void {
    try {
      f();
    } catch (err) {
      this.log.log('daemon', 'error', `internal error in ${what} handler: ${(err as Error).stack ?? String(err)}`);
    }
  }

  /**
   * SIGHUP and `tunsec reload` (./reload.ts): re-read the configuration and
   * credentials; an invalid one is rejected as a whole (every problem in the
   * result and the log) and the running one stays. Unchanged connections keep
   * their SAs, removed ones lose them, changed ones are replaced, new ones are
   * loaded. Runs after any global switch transition. Never rejects.
   */
  reload(): Promise<ReloadResult> {
    return this.inGlobalTransition(() =>
      this.reloadNow().catch((err: Error) => {
        this.log.log('daemon', 'error', `reload failed: ${err.stack ?? err.message}`);
        return emptyResult(false, [`internal error: ${err.message}`]);
      }),
    );
  }

  private async reloadNow(): Promise<ReloadResult> {
    const path = this.configPath;
    const running = this.runningConfig;
    if (this.state !== 'running' || path === undefined || running === undefined || !this.managerInstance) {
      this.log.log('daemon', 'warn', `reload refused: the daemon is ${this.state}`);
      return emptyResult(false, [`the daemon is ${this.state}`]);
    }
    this.log.log('cfg', 'info', `reloading configuration ${path}`);
    const reject = (errors: string[], warnings: string[]): ReloadResult => {
      for (const w of warnings) this.log.log('cfg', 'warn', w);
      for (const e of errors) this.log.log('cfg', 'error', e);
      const r = emptyResult(false, errors, warnings);
      this.log.event('daemon', 'config_reload_failed', `${summarizeReload(r)}`, { errors, warnings });
      return r;
    };
    const loaded = loadConfig({ path });
    if (!loaded.ok) {
      const problems = loaded.error.problems;
      return reject(
        problems.filter((p) => p.severity === 'error').map((p) => describeProblem(path, p)),
        problems.filter((p) => p.severity !== 'error').map((p) => describeProblem(path, p)),
      );
    }
    const config = loaded.config;
    const warnings = loaded.warnings.map((w) => describeProblem(path, w));
    const creds = resolveCredentials(config);
    warnings.push(...creds.warnings);
    const errors = [...creds.errors];
    let ikePort = this.boundIkePort;
    try {
      ikePort = this.ikePort(config);
    } catch (err) {
      if (!(err instanceof DaemonStartError)) throw err;
      errors.push(err.problems.length === 0 ? err.message : `${err.message.split('\n')[0]}: ${err.problems.join('; ')}`);
    }
    if (errors.length > 0) return reject(errors, warnings);
    for (const w of warnings) this.log.log('cfg', 'warn', w);

    const plan = planReload({ config: running, connections: this.connections }, { config, connections: creds.connections });
    if (creds.connections.length > 0 && ikePort !== this.boundIkePort) plan.restart.push(`IKE port (local_port) changed from ${this.boundIkePort} to ${ikePort}; needs a restart (the daemon keeps listening on ${this.boundIkePort})`);
    const addrs = (c: TunsecConfig): string => [...bindAddresses(Object.values(c.connections).flatMap((x) => x.local_addrs)).addresses].sort().join(' ');
    if (!this.transport && creds.connections.length > 0) {
      plan.restart.push('the daemon started without connections and has no IKE sockets; the new connections need a restart to be reachable');
    } else if (this.transport && addrs(config) !== addrs(running)) {
      plan.restart.push(`IKE socket addresses changed from ${addrs(running) || 'none'} to ${addrs(config) || 'none'}; needs a restart (the daemon keeps its sockets)`);
    }
    if (JSON.stringify(config.manual) !== JSON.stringify(running.manual)) plan.restart.push('manual: changed; manual SAs from the file are installed at start (restart, or use tunsec sa add/del)');
    carryReqids(this.connections, creds.connections, plan.kept);

    const gone = new Set([...plan.removed, ...plan.replaced]);
    const fresh = new Set([...plan.added, ...plan.replaced]);
    const goneConns = this.connections.filter((c) => gone.has(c.name));
    const freshConns = creds.connections.filter((c) => fresh.has(c.name));
    const freshConfigs = new Set(freshConns.map((c) => c.entry.config));
    for (const name of gone) this.retrying.delete(name);
    // The daemon section: log and global apply now; the rest stays as started (reported in plan.restart).
    this.daemonConfig = { ...this.daemonConfig!, log: config.daemon.log, global: config.daemon.global };
    this.log.setLevels(config.daemon.log);
    this.runningConfig = { ...config, daemon: this.daemonConfig };
    // New IKE SAs use the new entries (renewed credentials included); SAs up keep their config.
    this.connections = creds.connections;
    this.managerInstance.setConnections(creds.connections.map((c) => c.entry));
    for (const c of freshConns) {
      const e = c.entry;
      this.log.log('cfg', 'info', `loaded connection ${c.name}: ${e.localAddrs.join(',')} → ${e.remoteAddrs.join(',')}:${e.remotePort}, local id ${e.config.localId.value}, certificate '${e.config.certificate.subject.text}'`);
    }
    for (const name of plan.renewed) this.log.log('cfg', 'info', `connection ${name}: credentials renewed; used from the next authentication, the SAs up stay`);
    // Forget the old traps, install the new ones before the old SAs go: a replaced private child is never in the clear.
    this.datapathInstance?.removeTraps(goneConns, creds.connections);
    await this.datapathInstance?.installTraps(freshConns);
    const reasons = new Map<string, string>([...plan.removed.map((n): [string, string] => [n, 'connection removed (reload)']), ...plan.replaced.map((n): [string, string] => [n, 'connection changed (reload)'])]);
    const doomed = this.managerInstance.sas.filter((sa) => sa.state !== 'destroyed' && gone.has(sa.ctx.config.name) && !freshConfigs.has(sa.ctx.config));
    await Promise.all(
      [...reasons].map(([name, reason]) => {
        const sas = doomed.filter((sa) => sa.ctx.config.name === name);
        if (sas.length > 0) this.log.log('daemon', 'info', `connection ${name}: deleting ${sas.length} IKE SA(s): ${reason}`, { conn: name });
        return deleteSas(sas, reason, 5000);
      }),
    );
    this.datapathInstance?.removeTraps(goneConns, creds.connections);
    if (this.globalSwitch.state === 'up' && this.state === 'running') {
      for (const c of freshConns) if (c.startChildren.length > 0 && !this.retrying.has(c.name)) void this.keepInitiating(c);
    }

    const result: ReloadResult = { ok: true, errors: [], warnings, ...plan };
    for (const r of plan.restart) this.log.log('cfg', 'warn', r);
    this.log.event('daemon', 'config_reloaded', summarizeReload(result), {
      kept: plan.kept,
      renewed: plan.renewed,
      added: plan.added,
      removed: plan.removed,
      replaced: plan.replaced,
      applied: plan.applied,
      restart: plan.restart,
    });
    return result;
  }

  /**
   * `tunsec up NAME`: initiate the connection (or follow an attempt already
   * under way) until it is established; rejects with the reason it failed or
   * when `timeoutMs` passed (the attempt then goes on).
   */
  async up(name: string, timeoutMs: number): Promise<{ sa: IkeSa; already: boolean }> {
    this.mustRun();
    if (this.globalSwitch.state !== 'up') throw new Error(`the global switch is ${this.globalSwitch.state}: nothing is initiated until 'tunsec global up'`);
    const c = this.connections.find((x) => x.name === name);
    if (!c) throw new Error(`no connection named '${name}'`);
    const alive = this.managerInstance!.sas.filter((sa) => sa.ctx.config.name === name && (sa.state === 'created' || sa.state === 'connecting' || sa.state === 'established'));
    const established = alive.find((sa) => sa.state === 'established');
    if (established) return { sa: established, already: true };
    this.log.log('daemon', 'info', `connection ${name}: initiating (tunsec up)`, { conn: name });
    this.retrying.delete(name); // this attempt replaces a retry loop waiting for its next try
    const pending = alive[0];
    const attempt = pending
      ? new Promise<IkeSa>((resolve, reject) => {
          pending.on('established', () => resolve(pending));
          pending.on('destroyed', (_s, reason) => reject(new Error(reason)));
        })
      : (async () => {
          const remote = c.entry.remoteAddrs.find((a) => a !== '%any');
          const local = c.entry.localAddrs.find((a) => a !== '%any') ?? (remote === undefined ? undefined : await sourceAddressFor(remote));
          return this.managerInstance!.initiate(name, local);
        })();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_r, reject) => {
      timer = setTimeout(() => reject(new UpTimeout(`not established after ${timeoutMs / 1000} s; the attempt goes on`)), timeoutMs);
    });
    try {
      return { sa: await Promise.race([attempt, timeout]), already: false };
    } finally {
      clearTimeout(timer);
      attempt.catch(() => {});
    }
  }

  /**
   * `tunsec down NAME`: stop initiating the connection and delete its IKE SAs
   * (Delete sent; SAs whose peer has not answered after `timeoutMs` are
   * removed anyway). Resolves with the number of IKE SAs deleted.
   */
  async down(name: string, timeoutMs: number): Promise<number> {
    this.mustRun();
    if (!this.connections.some((x) => x.name === name)) throw new Error(`no connection named '${name}'`);
    this.retrying.delete(name);
    const sas = this.managerInstance!.sas.filter((sa) => sa.ctx.config.name === name && sa.state !== 'destroyed');
    this.log.log('daemon', 'info', `connection ${name}: deleting ${sas.length} IKE SA(s) (tunsec down)`, { conn: name });
    await deleteSas(sas, 'deleted by the operator (tunsec down)', timeoutMs);
    return sas.length;
  }

  /**
   * `tunsec global down`: stop initiating (start, trap, acquire), engage the
   * datapath's off state (`daemon.global`: drop or clear) so no packet falls
   * back to cleartext or triggers a negotiation meanwhile, delete every IKE SA
   * and wait until they are gone. IKE requests from peers are ignored while
   * the switch is down.
   */
  globalDown(timeoutMs: number): Promise<{ deleted: number; already: boolean }> {
    return this.inGlobalTransition(async () => {
      this.mustRun();
      if (this.globalSwitch.state === 'down') return { deleted: 0, already: true };
      const mode = this.daemonConfig!.global;
      this.globalSwitch = { state: 'going-down', since: Date.now() };
      this.log.log('daemon', 'info', `global switch going down: stopping initiation, deleting ${this.managerInstance!.sas.length} IKE SA(s), traffic ${mode === 'drop' ? 'dropped' : 'passed in the clear'} meanwhile`);
      this.retrying.clear();
      await this.datapathInstance?.setGlobalOff(mode);
      let deleted = 0;
      // Peers may still complete an IKE SA while the first ones are deleted: repeat until none is left.
      for (let round = 0; round < 5; round++) {
        const sas = this.managerInstance!.sas.filter((sa) => sa.state !== 'destroyed');
        if (sas.length === 0) break;
        deleted += sas.length;
        await deleteSas(sas, 'global switch down', timeoutMs);
      }
      this.globalSwitch = { state: 'down', since: Date.now() };
      this.log.event('daemon', 'global_down', `global switch down: ${deleted} IKE SA(s) deleted, traffic of tunsec's policies is ${mode === 'drop' ? 'dropped' : 'passed in the clear'}`, {
        mode,
        deleted_ike_sas: deleted,
      });
      return { deleted, already: false };
    });
  }

  /**
   * `tunsec global up`: release the datapath's off state and initiate the
   * `start` connections again; resolves when each has been established or
   * its first attempt failed (retries go on per `keyingtries`), or after
   * `timeoutMs`.
   */
  globalUp(timeoutMs: number): Promise<{ connections: Array<{ name: string; established: boolean; error?: string }>; already: boolean }> {
    return this.inGlobalTransition(async () => {
      this.mustRun();
      if (this.globalSwitch.state === 'up') return { connections: [], already: true };
      this.globalSwitch = { state: 'going-up', since: Date.now() };
      await this.datapathInstance?.setGlobalOff(undefined);
      const starting = this.connections.filter((c) => c.startChildren.length > 0);
      this.log.log('daemon', 'info', `global switch going up: initiating ${starting.length} connection(s)`);
      this.globalSwitch = { state: 'up', since: Date.now() };
      const outcomes = starting.map(
        (c) =>
          new Promise<{ name: string; established: boolean; error?: string }>((resolve) => {
            const timer = setTimeout(() => resolve({ name: c.name, established: false, error: `not established after ${timeoutMs / 1000} s; the attempt goes on` }), timeoutMs);
            void this.keepInitiating(c, (err) => {
              clearTimeout(timer);
              resolve(err ? { name: c.name, established: false, error: err.message } : { name: c.name, established: true });
            });
          }),
      );
      const connections = await Promise.all(outcomes);
      this.log.event('daemon', 'global_up', `global switch up: ${connections.filter((c) => c.established).length} of ${connections.length} start connection(s) established`, {
        connections,
      });
      return { connections, already: false };
    });
  }

  private inGlobalTransition<T>(f: () => Promise<T>): Promise<T> {
    const run = this.globalTransition.then(f, f);
    this.globalTransition = run.catch(() => {});
    return run;
  }

  private mustRun(): void {
    if (this.state !== 'running') throw new Error(`the daemon is ${this.state}`);
  }

  /** Delete every IKE SA (telling the peers), close the sockets, remove the pid file. */
  async stop(reason = 'stopping'): Promise<void> {
    if (this.state === 'stopping' || this.state === 'stopped' || this.state === 'new') {
      this.state = this.state === 'new' ? 'stopped' : this.state;
      return;
    }
    this.state = 'stopping';
    this.log.log('daemon', 'info', `${reason}: deleting ${this.managerInstance?.sas.length ?? 0} IKE SA(s)`);
    // no new IKE SA from here on, whoever asks (a peer redialing on our Delete included)
    this.managerInstance?.drain();
    for (const wake of [...this.wakeups]) wake();
    try {
      await this.managerInstance?.deleteAll();
    } catch (err) {
      this.log.log('daemon', 'error', `deleting IKE SAs failed: ${(err as Error).message}`);
    }
    this.manualSas?.deleteAll(reason);
    await this.datapathInstance?.stop();
    this.datapathInstance = undefined;
    await this.bypass?.remove();
    this.bypass = undefined;
    this.cleanUp();
    this.state = 'stopped';
    this.log.event('daemon', 'daemon_stopped', 'tunsec daemon stopped', { pid: process.pid });
  }

  private cleanUp(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.transport?.stop();
    this.transport = undefined;
    this.control?.stop();
    this.control = undefined;
    this.metricsServer?.stop();
    this.metricsServer = undefined;
    if (this.pidFile) releasePidFile(this.pidFile);
    this.pidFile = undefined;
  }
}

/** `up` waited longer than asked; the attempt goes on. */
export class UpTimeout extends Error {
  override readonly name = 'UpTimeout';
}

/** Delete IKE SAs (Delete sent to the peer) and wait until they are gone; after `timeoutMs` the rest are removed without an answer. */
async function deleteSas(sas: readonly IkeSa[], reason: string, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.all(
      sas.map(
        (sa) =>
          new Promise<void>((resolve) => {
            if (sa.state === 'destroyed') return resolve();
            sa.on('destroyed', () => resolve());
            sa.delete(reason);
          }),
      ),
    ),
    new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
  ]);
  clearTimeout(timer);
  for (const sa of sas) sa.destroy(`${reason} (the peer did not answer the Delete)`);
}

/** Delay after failed attempt `attempt` (1, 2, …): `initial`, doubling, at most `max`. */
export function retryDelay(attempt: number, delays: { initial: number; max: number }): number {
  return Math.min(delays.initial * 2 ** Math.min(attempt - 1, 30), delays.max);
}

function fmt(e: Endpoint): string {
  return e.address.includes(':') ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
}

/** `tunsec.yaml: line 4: connections.dc1.remote_addrs: required` */
function describeProblem(source: string, p: ConfigProblem): string {
  const where = p.line === undefined || p.path === '' ? '' : `line ${p.line}: `;
  return `${source}: ${where}${p.severity === 'warning' ? 'warning: ' : ''}${formatProblem(p)}`;
}
