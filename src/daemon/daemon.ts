/**
 * The tunsec daemon: loads the configuration and credentials, binds the IKE
 * sockets, runs the IKE SA manager over them, initiates the connections with
 * `start_action: start`, and shuts everything down on request. It starts and
 * stops its parts, in an order that fails closed: ./startup.ts (steps that
 * need no daemon state), ./ike-sockets.ts, ./datapath.ts, ./initiation.ts,
 * ./end-actions.ts, ./global-switch.ts, ./reload.ts.
 *
 * Nothing a peer sends and no bug in a handler may stop the daemon: errors in
 * event handlers are logged and the daemon goes on. Starting fails (with
 * every problem listed) when the configuration or the credentials are
 * unusable, when the pid file names a running daemon, or when a socket
 * cannot be bound.
 */
import { SecurityAssociationDatabase } from '../esp/sadb.js';
import type { DaemonConfig, TunsecConfig } from '../config/index.js';
import { createPublicKeyCrypto, type PublicKeyCrypto } from '../crypto/pool/index.js';
import { IkeSaManager } from '../ike/manager.js';
import type { IkeSa } from '../ike/sa/ike-sa.js';
import type { RetransmitSettings } from '../ike/exchange/index.js';
import type { Endpoint, UdpTransport } from '../ike/net/udp.js';
import type { ResolvedConnection } from './credentials.js';
import { managerLimits } from './limits.js';
import { SaEventReporter } from './events.js';
import { SaOperations } from './sa-operations.js';
import { ConnectionStates } from './connection-states.js';
import { ControlServer } from './control/server.js';
import { controlCommands } from './control/commands.js';
import { daemonMetricsSource } from './control/views.js';
import { ViciServer } from './vici/server.js';
import { viciCommands } from './vici/commands.js';
import { VICI_EVENTS, ViciEventSource } from './vici/events.js';
import { ViciIds } from './vici/messages.js';
import { packageVersion } from '../util/version.js';
import { IkeBypassRules } from './bypass.js';
import { UserspaceDatapath } from './datapath.js';
import { ManualSas } from './manual.js';
import { EndActions } from './end-actions.js';
import { GlobalSwitch, deleteSas } from './global-switch.js';
import { GroupInstances } from './groups.js';
import { InactivityCheck } from './inactivity.js';
import { Initiation, type DaemonView } from './initiation.js';
import { DaemonLogger } from './logger.js';
import { MetricsServer } from './metrics.js';
import { IKE_PORT, NATT_PORT, IkeReceiver, bindIkeSockets, fmt, ikeIo, logOtherDatagrams } from './ike-sockets.js';
import { releasePidFile } from './pidfile.js';
import { DaemonStartError, chooseIkePort, installManualSas, loadCredentials, loadConfiguration, startOrFail, writePidFile } from './startup.js';
import { Reloader } from './reload.js';
import type { ServiceManager } from './systemd.js';
import { CredentialWatch, credentialPaths } from './credential-watch.js';
import type { DaemonState, GlobalSwitchState, ReloadResult } from '../control/protocol.js';

export { IKE_PORT, NATT_PORT, DaemonStartError };

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
  /** Told when the daemon is ready, reloading and stopping (systemd's notify protocol, ./systemd.ts). */
  serviceManager?: ServiceManager;
}

export type { GlobalSwitchState };

export class Daemon {
  readonly log: DaemonLogger;
  private state: DaemonState = 'new';
  private transport?: UdpTransport;
  private managerInstance?: IkeSaManager;
  /** IKE's public-key work (daemon.crypto_workers): a worker pool, or inline. */
  private crypto?: PublicKeyCrypto;
  readonly backend = new SecurityAssociationDatabase();
  private readonly events: SaEventReporter;
  /** `up/down --child`, `rekey` (./sa-operations.ts). */
  readonly operations: SaOperations;
  private connections: ResolvedConnection[] = [];
  /** `start` loops, `tunsec up`, acquires and lost peers (./initiation.ts). */
  private readonly initiation: Initiation;
  /** dpd_action, close_action, further children, hard expiry (./end-actions.ts). */
  private readonly endActions: EndActions;
  /** `tunsec global down|up` (./global-switch.ts). */
  private readonly globalSwitch: GlobalSwitch;
  /** SIGHUP and `tunsec reload` (./reload.ts). */
  private readonly reloader: Reloader;
  private credentialWatch?: CredentialWatch;
  /** Received IKE datagrams to the manager (./ike-sockets.ts). */
  private readonly receiver: IkeReceiver;
  private pidFile?: string;
  private bypass?: IkeBypassRules;
  private datapathInstance?: UserspaceDatapath;
  /** Manual (static) SAs and policies (./manual.ts); with the userspace datapath. */
  private manualSas?: ManualSas;
  private readonly nattPort: number;
  private control?: ControlServer;
  private vici?: ViciServer;
  private viciEvents?: ViciEventSource;
  private stopViciLog?: () => void;
  private metricsServer?: MetricsServer;
  private daemonConfig?: DaemonConfig;
  private startTime?: number;
  /** When connections were last up / connecting / not connected, for `tunsec status`. */
  readonly connectionStates = new ConnectionStates();
  /** The per-peer instances of group connections (./groups.ts). */
  readonly groups = new GroupInstances();
  /** Idle IKE SAs closed (`inactivity`). */
  readonly inactivity: InactivityCheck;

  constructor(private readonly options: DaemonOptions = {}) {
    this.log = options.logger ?? new DaemonLogger();
    this.nattPort = options.nattPort ?? NATT_PORT;
    this.events = new SaEventReporter(this.log);
    this.operations = new SaOperations({ log: this.log, manager: () => this.managerInstance, up: (name, timeoutMs) => this.up(name, timeoutMs) });
    const base: DaemonView = {
      log: this.log,
      manager: () => this.managerInstance,
      connections: () => this.connections,
      mayNegotiate: () => this.state === 'running' && this.globalSwitch.state === 'up',
    };
    this.initiation = new Initiation({
      ...base,
      loopsMayRun: () => this.state === 'starting' || this.state === 'running',
      retryDelayMs: options.retryDelayMs,
      groups: this.groups,
    });
    this.inactivity = new InactivityCheck(base, this.backend);
    const initiation = this.initiation;
    this.endActions = new EndActions({
      ...base,
      running: () => this.state === 'running',
      installTrap: (c, child, remote) => void this.datapathInstance?.installTrap(c, child, remote),
      initiation,
    });
    this.globalSwitch = new GlobalSwitch({
      log: this.log,
      mustRun: () => this.mustRun(),
      mode: () => this.daemonConfig!.global,
      manager: () => this.managerInstance!,
      setDatapathOff: async (mode) => this.datapathInstance?.setGlobalOff(mode),
      startConnections: () => this.connections.filter((c) => c.startChildren.length > 0),
      initiation,
    });
    this.reloader = new Reloader({
      ...base,
      nattPort: this.nattPort,
      phase: () => this.state,
      hasSockets: () => this.transport !== undefined,
      adopt: (daemon, connections) => {
        this.daemonConfig = daemon;
        this.connections = connections;
        this.managerInstance!.setConnections(connections.map((c) => c.entry));
        this.inactivity.update();
      },
      datapath: () => this.datapathInstance,
      initiation,
    });
    this.receiver = new IkeReceiver({
      ...base,
      globalDown: () => this.globalSwitch.state === 'down',
      delivering: () => this.state === 'running' || this.state === 'stopping',
      guard: (what, f) => this.guard(what, f),
    });
  }

  get manager(): IkeSaManager | undefined {
    return this.managerInstance;
  }

  /** The manual SAs (with the userspace datapath, once started). */
  get manual(): ManualSas | undefined {
    return this.manualSas;
  }

  /** The userspace ESP datapath (absent with `datapath: none`). */
  get datapath(): UserspaceDatapath | undefined {
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
    return this.globalSwitch.snapshot;
  }

  /** The metrics endpoint (with `daemon.metrics`, once started). */
  get metrics(): MetricsServer | undefined {
    return this.metricsServer;
  }

  /** The VICI socket (with `control: true` and `daemon.vici`, once started). */
  get viciServer(): ViciServer | undefined {
    return this.vici;
  }

  /** The control socket (with `control: true`, once started). */
  get controlServer(): ControlServer | undefined {
    return this.control;
  }

  /** Since when the daemon has been initiating `name` (an attempt running or waiting to retry); undefined when it is not. */
  initiatingSince(name: string): number | undefined {
    return this.initiation.since(name);
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
    let started: { pidFile: string; connections: string[] };
    try {
      started = await this.startUp(configPath);
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
    // Only now: whoever waits for this line may use the control socket at once.
    const endpoints = this.endpoints;
    this.log.event('daemon', 'daemon_started', `tunsec daemon running (pid ${process.pid}), IKE on ${endpoints.map(fmt).join(' ') || 'no sockets'}`, {
      pid: process.pid,
      pid_file: started.pidFile,
      endpoints,
      connections: started.connections,
    });
    this.options.serviceManager?.ready(`running, ${started.connections.length} connection(s), IKE on ${endpoints.map(fmt).join(' ') || 'no sockets'}`);
  }

  /**
   * The start-up steps, in order. A failing step throws; start() then undoes
   * what the steps before it set up (the comments say who undoes what).
   */
  private async startUp(configPath: string): Promise<{ pidFile: string; connections: string[] }> {
    this.log.log('daemon', 'info', `tunsec daemon starting (pid ${process.pid}), configuration ${configPath}`);
    const config = loadConfiguration(configPath, this.log);
    const connections = loadCredentials(configPath, config, this.log);
    const ikePort = chooseIkePort(config, this.nattPort);
    this.pidFile = writePidFile(config.daemon, this.log); // removed by cleanUp()
    this.daemonConfig = config.daemon;
    await this.serveControl(config.daemon); // stopped by cleanUp()
    await this.serveVici(config.daemon); // stopped by cleanUp()
    await this.serveMetrics(config.daemon); // stopped by cleanUp()
    await this.bindSockets(config, connections, ikePort); // sockets closed by cleanUp(), bypass rules removed by start()
    if (config.daemon.datapath === 'userspace') {
      await this.startDatapath(config.daemon, connections); // stopped by start(), its backstop kept (fail closed)
      this.manualSas = new ManualSas({
        sad: this.backend,
        log: this.log,
        udpAvailable: (address, port) => this.transport?.nattSocket({ address, port }) !== undefined,
        routesSettled: () => this.datapathInstance?.routesSettled() ?? Promise.resolve(),
      });
      installManualSas(this.manualSas, config); // all or none: a failure removes those installed
    }
    this.startManager(config.daemon, connections, ikePort);
    this.connections = connections;
    this.reloader.started(configPath, config, ikePort);
    this.watchCredentials(config.daemon); // stopped by cleanUp()
    this.datapathInstance?.setPolicyGroupShunts(config.policy_groups);
    await this.installTrapsAndInitiate(connections);
    return { pidFile: config.daemon.pid_file, connections: connections.map((c) => c.name) };
  }

  /**
   * `daemon.watch_credentials`: renewed certificates and keys are reloaded
   * without an operator (the running configuration otherwise stays); SAs up
   * keep theirs, the next authentication uses the new ones.
   */
  private watchCredentials(daemon: DaemonConfig): void {
    if (daemon.watch_credentials <= 0) return;
    const watch = new CredentialWatch({
      paths: () => {
        const running = this.reloader.config;
        return running ? credentialPaths(running) : [];
      },
      intervalMs: daemon.watch_credentials * 1000,
      settleMs: 2000,
      changed: (paths) => {
        if (this.state !== 'running') return;
        this.log.log('cfg', 'info', `credential files changed (${paths.join(', ')}): reloading the credentials`);
        void this.globalSwitch.serialize(() => this.reloader.reload({ credentialsOnly: true }));
      },
    });
    watch.start();
    this.credentialWatch = watch;
  }

  /** With `control: true`; stopped by cleanUp(). */
  private async serveControl(daemon: DaemonConfig): Promise<void> {
    if (!this.options.control) return;
    const control = new ControlServer({ path: daemon.control_socket, log: this.log, handlers: controlCommands(this) });
    await startOrFail(control);
    this.control = control;
  }

  /**
   * The VICI socket for swanctl (./vici/), with `control: true` and `daemon.vici`;
   * stopped by cleanUp(). Its SA events follow the manager once it exists (startManager).
   */
  private async serveVici(daemon: DaemonConfig): Promise<void> {
    if (!this.options.control || daemon.vici === undefined) return;
    const ids = new ViciIds();
    let events: ViciEventSource | undefined;
    const server = new ViciServer({
      path: daemon.vici,
      log: this.log,
      events: VICI_EVENTS,
      commands: viciCommands({
        daemon: this,
        control: controlCommands(this),
        ids,
        get events() {
          return events!;
        },
        log: this.log,
        version: packageVersion(),
      }),
    });
    events = new ViciEventSource(server, ids);
    await startOrFail(server);
    this.vici = server;
    this.viciEvents = events;
    this.stopViciLog = events.attachLog(this.log);
  }

  /** With `daemon.metrics`; stopped by cleanUp(). */
  private async serveMetrics(daemon: DaemonConfig): Promise<void> {
    if (!daemon.metrics) return;
    const metrics = new MetricsServer({ listen: daemon.metrics, log: this.log, source: daemonMetricsSource(this) });
    await startOrFail(metrics);
    this.metricsServer = metrics;
  }

  /**
   * The IKE and NAT-T sockets (closed by cleanUp()) when there is anything to
   * serve, and the IKE bypass rules with `daemon.bypass_rules` (removed by
   * start() on failure).
   */
  private async bindSockets(config: TunsecConfig, connections: readonly ResolvedConnection[], ikePort: number): Promise<void> {
    // ESP-in-UDP of manual SAs goes through the NAT-T sockets: their addresses are bound too.
    const manualUdp = Object.values(config.manual.sas).flatMap((m) => (m.encap ? [m.local_addr] : []));
    if (connections.length > 0 || manualUdp.length > 0) {
      try {
        this.transport = await bindIkeSockets(
          [...Object.values(config.connections).flatMap((c) => c.local_addrs), ...manualUdp],
          ikePort,
          this.nattPort,
          this.log,
        );
      } catch (err) {
        throw new DaemonStartError((err as Error).message);
      }
    }
    if (config.daemon.bypass_rules && this.transport) {
      this.bypass = new IkeBypassRules([ikePort, this.nattPort]);
      for (const problem of await this.bypass.install()) this.log.log('net', 'warn', `IKE bypass rule not installed: ${problem}`);
    }
  }

  /** The userspace ESP datapath; on failure start() stops it keeping its backstop (fail closed). */
  private async startDatapath(daemon: DaemonConfig, connections: readonly ResolvedConnection[]): Promise<void> {
    const dp = new UserspaceDatapath(daemon, this.backend, this.log, (trap, e) =>
      this.initiation.acquired(trap.connection, trap.child, trap.group ? e.packetSelector.remote.startAddress : undefined),
    );
    this.datapathInstance = dp;
    this.backend.on('expire', (e) => this.guard('SA expiry', () => this.endActions.hardExpired(e)));
    try {
      await dp.start(this.transport, connections);
    } catch (err) {
      throw new DaemonStartError(`cannot start the userspace ESP datapath: ${(err as Error).message}`);
    }
  }

  /** The IKE SA manager over the sockets, its events wired to the log, the end actions and the key log. */
  private startManager(daemon: DaemonConfig, connections: readonly ResolvedConnection[], ikePort: number): void {
    const transport = this.transport;
    this.crypto = createPublicKeyCrypto(daemon.crypto_workers);
    const manager = new IkeSaManager({
      crypto: this.crypto,
      connections: connections.map((c) => c.entry),
      backend: this.backend,
      log: this.log.ikeLogger(connections.map((c) => c.name)),
      io: ikeIo(transport, this.nattPort, daemon.keep_alive * 1000, this.log),
      ikePort,
      retransmit: { ...daemon.retransmit, ...this.options.retransmit },
      ...managerLimits(daemon.limits),
      unknownSaRequest: (remote) => this.guard('IKE request for an unknown IKE_SA', () => this.initiation.peerLostUs(remote.address)),
      instanceFor: (entry, remoteAddress) => {
        const group = this.connections.find((c) => c.entry === entry);
        return group === undefined ? undefined : this.groups.instance(group, remoteAddress)?.entry;
      },
    });
    this.managerInstance = manager;
    this.events.attach(manager);
    this.viciEvents?.attach(manager);
    this.operations.attach(manager);
    this.connectionStates.attach(manager);
    manager.on('established', (sa) => this.guard('IKE_SA established', () => this.endActions.createMissingChildren(sa)));
    manager.on('destroyed', (sa, _reason, cause) => this.guard('IKE_SA end', () => this.endActions.ikeSaEnded(sa, cause)));
    // An instance no IKE SA uses any more is forgotten: the next one with that peer starts afresh.
    manager.on('destroyed', (sa) => {
      if (!manager.sas.some((s) => s !== sa && s.state !== 'destroyed' && s.ctx.config === sa.ctx.config)) this.groups.release(sa.ctx.config);
    });
    manager.on('childClosed', (sa, child) => this.guard('CHILD_SA closed', () => this.endActions.childClosed(sa, child.name)));
    const keylog = this.datapathInstance?.keyLog;
    if (keylog) manager.on('established', (sa) => keylog.ikeSaEstablished(sa));
    transport?.on('ike', (d) => this.receiver.receive(d));
    if (transport) logOtherDatagrams(transport, this.log, this.datapathInstance !== undefined);
  }

  /** The trap policies, then what a previous daemon's backstop holds beyond them dropped, then the `start` connections initiated. */
  private async installTrapsAndInitiate(connections: readonly ResolvedConnection[]): Promise<void> {
    await this.datapathInstance?.installTraps(connections);
    await this.datapathInstance?.settleBackstop();
    for (const c of connections) {
      if (c.startChildren.length > 0) void this.initiation.keepInitiating(c);
    }
    this.inactivity.update();
  }

  /** Run a handler; an exception is logged, never thrown into the event loop. */
  guard(what: string, f: () => void): void {
    try {
      f();
    } catch (err) {
      this.log.log('daemon', 'error', `internal error in ${what} handler: ${(err as Error).stack ?? String(err)}`);
    }
  }

  /** SIGHUP and `tunsec reload` (./reload.ts), after any global switch transition. Never rejects. */
  reload(): Promise<ReloadResult> {
    return this.globalSwitch.serialize(async () => {
      const sm = this.options.serviceManager;
      sm?.reloading();
      try {
        return await this.reloader.reload();
      } finally {
        // READY=1 also after a failed reload: the old configuration goes on serving
        if (this.state === 'running') sm?.ready(`running, ${this.connections.length} connection(s), configuration reloaded`);
      }
    });
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
    return this.initiation.up(c, timeoutMs);
  }

  /**
   * `tunsec down NAME`: stop initiating the connection and delete its IKE SAs
   * (Delete sent; SAs whose peer has not answered after `timeoutMs` are
   * removed anyway). Resolves with the number of IKE SAs deleted.
   */
  async down(name: string, timeoutMs: number): Promise<number> {
    this.mustRun();
    if (!this.connections.some((x) => x.name === name)) throw new Error(`no connection named '${name}'`);
    this.initiation.stopRetrying(name);
    const sas = this.managerInstance!.sas.filter((sa) => sa.ctx.config.name === name && sa.state !== 'destroyed');
    this.log.log('daemon', 'info', `connection ${name}: deleting ${sas.length} IKE SA(s) (tunsec down)`, { conn: name });
    await deleteSas(sas, 'deleted by the operator (tunsec down)', timeoutMs);
    return sas.length;
  }

  /** `tunsec global down` (./global-switch.ts); IKE requests from peers are ignored while the switch is down. */
  globalDown(timeoutMs: number): Promise<{ deleted: number; already: boolean }> {
    return this.globalSwitch.down(timeoutMs);
  }

  /** `tunsec global up`: release the datapath's off state and initiate the `start` connections again (./global-switch.ts). */
  globalUp(timeoutMs: number): Promise<{ connections: Array<{ name: string; established: boolean; error?: string }>; already: boolean }> {
    return this.globalSwitch.up(timeoutMs);
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
    this.options.serviceManager?.stopping();
    this.log.log('daemon', 'info', `${reason}: deleting ${this.managerInstance?.sas.length ?? 0} IKE SA(s)`);
    // no new IKE SA from here on, whoever asks (a peer redialing on our Delete included)
    this.managerInstance?.drain();
    this.initiation.wakeAll();
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
    this.options.serviceManager?.close();
    this.log.event('daemon', 'daemon_stopped', 'tunsec daemon stopped', { pid: process.pid });
  }

  private cleanUp(): void {
    this.initiation.clearTimers();
    this.credentialWatch?.stop();
    this.credentialWatch = undefined;
    this.inactivity.stop();
    this.transport?.stop();
    this.transport = undefined;
    this.control?.stop();
    this.control = undefined;
    this.stopViciLog?.();
    this.stopViciLog = undefined;
    this.vici?.stop();
    this.vici = undefined;
    this.metricsServer?.stop();
    this.metricsServer = undefined;
    // workers are unref'd: a pool left running never holds the process; closing ends the threads now
    void this.crypto?.close();
    this.crypto = undefined;
    if (this.pidFile) releasePidFile(this.pidFile);
    this.pidFile = undefined;
  }
}
