/**
 * The daemon's userspace ESP datapath: the TUN device and sockets
 * (src/esp/io.ts), the packet logic (src/esp/engine.ts) over the SAD/SPD
 * that IKE fills, the routes and rules that bring the SPD's flows into the
 * TUN device (./routes.ts), trap policies, and the key log.
 *
 * Trap policies (RFC 4301 §5.1.1, strongSwan's start_action=trap): for every
 * child with `start_action` trap or start whose selectors can be resolved
 * without a peer (concrete `remote_addrs`), an outbound `protect` policy with
 * the child's reqid is installed at start. Until the CHILD_SA exists, its
 * traffic is held and triggers negotiation (`private`) or passes in the clear
 * (`private-or-clear`); the CHILD_SA's own policy replaces it, and when IKE
 * removes that policy (the CHILD_SA is gone) the trap comes back at once —
 * so traffic of a `private` child is never sent in the clear, not before the
 * first SA, not between SAs, not after one is lost. A `private` child without
 * a configured trap (one we only respond for) keeps its last CHILD_SA's
 * policy as a learned trap once that CHILD_SA is gone, for the same reason.
 *
 * Those guarantees need the process. For when it is gone (kill -9, a crash,
 * the gap before systemd restarts it) every `private` and `drop` policy also
 * has a backstop in the kernel (./routes.ts, option `backstop`): prohibit
 * routes behind the TUN routes that outlive the daemon. A new daemon adopts
 * them and drops only those its configuration no longer needs, once its own
 * policies are in (settleBackstop); a clean stop removes them last, after the
 * TUN routes, and `global: clear` lifts them while the switch is down.
 */
import { networkInterfaces } from 'node:os';
import type { DaemonConfig, PolicyGroups } from '../config/index.js';
import type { AcquireEvent, PolicySpec, TrafficSelector } from '../esp/api.js';
import { PacketEngine, type DatapathLogger } from '../esp/engine.js';
import { IoLoop, zeroIoCounters } from '../esp/io.js';
import type { DatapathStatus } from '../control/protocol.js';
import type { SecurityAssociationDatabase } from '../esp/sadb.js';
import type { SpdEntry } from '../esp/spd.js';
import { compileSelector, selectorMatches } from '../esp/spd.js';
import type { UdpTransport } from '../ike/net/udp.js';
import { formatRanges, initiatorTs, toEspSelectors } from '../ike/ts/index.js';
import { dgramFd, setBufferSize, setsockoptInt, stopDgramReceive, constants } from '../tun/raw-esp.js';
import { loadNative } from '../native/addon.js';
import { formatIp, parseIp, prefixRange } from '../util/ip.js';
import type { ResolvedConnection } from './credentials.js';
import { KeyLog } from './keylog.js';
import type { DaemonLogger } from './logger.js';
import { routeMtuFor, sourceAddressFor, tunMtuFor } from './net.js';
import { TunRoutes, runIp } from './routes.js';
import { spiHex } from '../util/format.js';

/** Socket buffers of the NAT-T sockets that carry ESP-in-UDP. */
const UDP_BUFFER = 4 * 1024 * 1024;
/** Packets the kernel may queue on the TUN device for tunsec to read. */
const TUN_QUEUE_LENGTH = 4096;

export interface TrapInfo {
  connection: string;
  child: string;
  spec: PolicySpec;
  /** A trap of a group connection: one per prefix, the packet's destination is the peer (./groups.ts). */
  group?: ResolvedConnection;
  /** Drops only, negotiates nothing: a `private` group we only respond for (its traffic is never sent in the clear). */
  passive?: boolean;
}

/**
 * Group traps come after every CHILD_SA's policy (priority 100), so a peer's
 * own SA takes its traffic, and among themselves longest prefix first.
 */
export const GROUP_TRAP_PRIORITY = 1000;
/** reqids of group traps beyond a child's first prefix (the first uses the child's reqid). */
const GROUP_TRAP_REQID_BASE = 0x800000;

export class UserspaceDatapath {
  readonly engine: PacketEngine;
  private ioLoop?: IoLoop;
  private routes?: TunRoutes;
  private backstop?: TunRoutes;
  /** The backstop is lifted (global switch down in `clear` mode). */
  private backstopLifted = false;
  private readonly traps = new Map<number, TrapInfo>();
  private keylog?: KeyLog;
  private stopped = false;

  constructor(
    private readonly config: DaemonConfig,
    readonly sad: SecurityAssociationDatabase,
    private readonly log: DaemonLogger,
    /** A trap policy saw traffic: negotiate its child. */
    private readonly onAcquire: (trap: TrapInfo, e: AcquireEvent) => void,
  ) {
    const espLog: DatapathLogger = { log: (level, message) => this.log.log('esp', level, message) };
    this.engine = new PacketEngine(sad, {
      holdPackets: config.hold_packets,
      log: espLog,
      onHeldReady: (reqid) => this.ioLoop?.releaseHeld(reqid),
      onPendingSpiReady: (spi) => this.ioLoop?.releasePendingSpi(spi),
    });
    if (config.keylog !== undefined) {
      this.keylog = KeyLog.open(config.keylog);
      this.log.log('daemon', 'warn', `key log is on: IKE and ESP keys are written to ${config.keylog} (debugging only)`);
      sad.onSaAdded((sa) => this.keylog?.espSa(sa));
    }
  }

  get keyLog(): KeyLog | undefined {
    return this.keylog;
  }

  /** Open the TUN device and sockets, install routes; throws (after cleaning up) if the device or sockets cannot be opened. */
  async start(transport: UdpTransport | undefined, connections: readonly ResolvedConnection[] = []): Promise<void> {
    const c = this.config;
    this.connections = connections;
    const mtu = c.tun_mtu === 'auto' ? await this.autoMtu(connections) : c.tun_mtu;
    if (c.mss_clamp) this.engine.mssClampMtu = mtu;
    // The trap listener goes first: when IKE removes a CHILD_SA's policy, the trap
    // comes back before the route manager sees the removal, so routes never lapse.
    this.sad.onPolicyChange(({ entry, added }) => {
      const spec = entry.spec;
      if (added || this.stopped || spec.direction !== 'out' || spec.action !== 'protect' || this.sad.spd.get(spec.reqid, 'out')) return;
      let trap = this.traps.get(spec.reqid);
      if (!trap && spec.failureMode === 'private') {
        // A `private` CHILD_SA without a configured trap (a responder's) is gone: its policy stays as a
        // learned trap, so its traffic is dropped (and renegotiated) instead of leaving in the clear.
        const child = this.childByReqid(spec.reqid);
        if (child) {
          trap = { connection: child.connection, child: child.child, spec: { ...spec } };
          this.traps.set(spec.reqid, trap);
          this.log.log(
            'esp',
            'info',
            `CHILD_SA ${child.connection}/${child.child}{${spec.reqid}} is gone: its private policy stays as a trap (traffic dropped, never sent in the clear)`,
          );
        }
      }
      if (trap) this.sad.addPolicy(trap.spec);
    });
    this.routes = new TunRoutes({ tunName: c.tun_name, table: c.route_table, rulePref: c.route_priority, fwmark: c.fwmark });
    this.backstop = new TunRoutes({ tunName: c.tun_name, table: c.backstop_table, rulePref: c.backstop_priority, backstop: true });
    for (const p of await this.backstop.start()) this.log.log('knl', 'warn', `backstop: ${p}`);
    const found = this.backstop.leftovers;
    if (found.rules + found.routes > 0) {
      this.log.log(
        'knl',
        'info',
        `backstop of a previous daemon found (${found.rules} rule(s), ${found.routes} prohibit route(s) in table ${c.backstop_table}): kept until this daemon's policies are in`,
      );
    }
    this.sad.onPolicyChange((change) => this.followPolicy(change.entry, change.added));
    this.sad.on('acquire', (e) => {
      const trap = this.traps.get(e.reqid);
      if (trap && !trap.passive) this.onAcquire(trap, e);
    });
    this.sad.on('expire', (e) =>
      this.log.log(
        'esp',
        e.hard ? 'warn' : 'info',
        `SA ${spiHex(e.spi)}_${e.direction === 'in' ? 'i' : 'o'} {${e.reqid}} reached its ${e.hard ? 'hard' : 'soft'} ${e.reason} limit${e.hard ? ': removed' : ''}`,
      ),
    );

    this.ioLoop = new IoLoop({
      engine: this.engine,
      tunName: c.tun_name,
      mtu,
      mark: c.fwmark,
      offload: c.offload,
      crypto: c.datapath_crypto,
      udp: {
        fdFor: (address, port) => {
          const socket = transport?.nattSocket({ address, port });
          return socket ? dgramFd(socket) : undefined;
        },
      },
      log: { log: (level, message) => this.log.log('esp', level, message) },
    });
    this.ioLoop.start();
    // The kernel queues packets for tunsec on the TUN device (txqueuelen, default 500): a deeper queue
    // absorbs bursts while a batch is being encrypted instead of dropping them (TCP would back off).
    const qlen = await runIp(['link', 'set', 'dev', c.tun_name, 'txqueuelen', String(TUN_QUEUE_LENGTH)]);
    if (qlen.code !== 0) this.log.log('knl', 'warn', `cannot set the TUN queue length: ${qlen.stderr}`);
    for (const p of await this.routes.start()) this.log.log('knl', 'warn', p);
    if (transport) {
      transport.on('esp', (d) => this.ioLoop?.receiveUdp(d.packet, d.remote.address));
      // Read the NAT-T sockets in batches (recvmmsg) instead of one Node callback per datagram.
      for (const n of transport.nattSockets()) {
        // Both readers demultiplex alike, so until Node's reads stop either may take a datagram.
        let dup: number | undefined;
        let adopted: { enableGro(): boolean };
        try {
          dup = loadNative().dupFd(dgramFd(n.socket));
          adopted = this.ioLoop.adoptUdpSocket(dup, (msg, address, port) => n.deliver(msg, { address, port }));
        } catch (err) {
          if (dup !== undefined) loadNative().closeFd(dup);
          this.log.log('esp', 'info', `ESP-in-UDP on ${n.local.address}:${n.local.port} is read through Node's dgram socket (${(err as Error).message})`);
          continue;
        }
        // UDP GRO only once Node no longer reads the socket: its reads would not split coalesced datagrams.
        if (!stopDgramReceive(n.socket)) this.log.log('esp', 'info', `Node keeps reading ${n.local.address}:${n.local.port} too (its dgram handle is hidden)`);
        else if (c.offload !== 'off' && adopted.enableGro()) this.log.log('esp', 'debug', `ESP-in-UDP on ${n.local.address}:${n.local.port}: UDP GRO on`);
      }
      // Mark the IKE sockets too (the sport rules of bypass.ts cover them already; this also covers custom ports).
      const k = constants();
      for (const s of transport.allSockets()) {
        try {
          const fd = dgramFd(s);
          setsockoptInt(fd, k.SOL_SOCKET, k.SO_MARK, c.fwmark);
          // ESP-in-UDP shares the NAT-T sockets: give bursts room (rmem_max does not apply to the FORCE variant)
          setBufferSize(fd, 'recv', UDP_BUFFER);
          setBufferSize(fd, 'send', UDP_BUFFER);
        } catch (err) {
          this.log.log('net', 'debug', `cannot set options on an IKE socket: ${(err as Error).message}`);
        }
      }
    }
    this.log.log(
      'esp',
      'info',
      `userspace ESP datapath on ${this.ioLoop.tunName} (MTU ${mtu}${c.tun_mtu === 'auto' ? ', auto' : ''}), routes in table ${c.route_table} (rule priority ${c.route_priority}), own packets marked 0x${c.fwmark.toString(16)}`,
    );
  }

  private connections: readonly ResolvedConnection[] = [];

  private childByReqid(reqid: number): { connection: string; child: string } | undefined {
    for (const c of this.connections) for (const ch of c.entry.config.children) if (ch.reqid === reqid) return { connection: c.name, child: ch.name };
    return undefined;
  }

  /** The smallest path MTU towards the connections' peers (1500 when none is known) less the ESP overhead. */
  private async autoMtu(connections: readonly ResolvedConnection[]): Promise<number> {
    const remotes = [...new Set(connections.flatMap((c) => c.entry.remoteAddrs).filter((a) => a !== '%any'))];
    const mtus = (await Promise.all(remotes.map((r) => routeMtuFor(r)))).filter((m): m is number => m !== undefined);
    return tunMtuFor(mtus.length > 0 ? Math.min(...mtus) : 1500);
  }

  /** Install the shunt policies (`mode: pass | drop`) and the trap policies of the connections' trap/start children. */
  async installTraps(connections: readonly ResolvedConnection[]): Promise<void> {
    for (const conn of connections) {
      for (const shunt of conn.shunts) {
        if (shunt.reqid === undefined) continue;
        const remote = conn.entry.remoteAddrs.find((a) => a !== '%any');
        const local =
          conn.entry.localAddrs.find((a) => a !== '%any') ?? (remote === undefined ? undefined : await sourceAddressFor(remote).catch(() => undefined));
        const v6 = (remote ?? local ?? '').includes(':');
        const ts = initiatorTs({
          localConfig: shunt.localTs,
          remoteConfig: shunt.remoteTs,
          localAddr: local ?? (v6 ? '::' : '0.0.0.0'),
          remoteAddr: remote ?? (v6 ? '::' : '0.0.0.0'),
        });
        this.sad.addPolicy({
          reqid: shunt.reqid,
          direction: 'out',
          local: toEspSelectors(ts.tsi),
          remote: toEspSelectors(ts.tsr),
          action: shunt.mode === 'pass' ? 'bypass' : 'discard',
          failureMode: 'private',
          // shunts go before IPsec policies, as strongSwan's
          priority: 50,
          mode: 'transport',
          localAddress: local ?? '',
          remoteAddress: remote ?? '',
        });
        this.log.log(
          'esp',
          'info',
          `shunt policy ${conn.name}/${shunt.name}{${shunt.reqid}} installed: ${shunt.mode === 'pass' ? 'bypass' : 'discard'} ${formatRanges(ts.tsi)} === ${formatRanges(ts.tsr)}`,
        );
      }
      const names = new Set([...conn.trapChildren, ...conn.startChildren]);
      for (const child of conn.entry.config.children) {
        if (names.has(child.name)) await this.installTrap(conn, child.name);
        // A private group we only answer for: its prefixes still never see cleartext.
        else if (conn.group && child.policy === 'private') await this.installTrap(conn, child.name, undefined, true);
      }
    }
  }

  /**
   * Install the trap policy of one child (start_action trap/start at start;
   * dpd_action / close_action `trap` later). `remoteAddress` stands in for a
   * connection whose remote_addrs names no concrete peer (the address the
   * lost IKE SA had). Returns false if no trap could be made. An installed
   * CHILD_SA policy of the child stays in place: the trap takes over when it goes.
   */
  async installTrap(conn: ResolvedConnection, childName: string, remoteAddress?: string, passive = false): Promise<boolean> {
    const child = conn.entry.config.children.find((c) => c.name === childName);
    if (!child || child.reqid === undefined || this.stopped) return false;
    if (conn.group) return this.installGroupTraps(conn, child, passive);
    const remote = conn.entry.remoteAddrs.find((a) => a !== '%any') ?? remoteAddress;
    if (remote === undefined) {
      this.log.log('esp', 'warn', `connection ${conn.name}: child ${child.name} gets no trap policy: remote_addrs names no concrete address`);
      return false;
    }
    let local = conn.entry.localAddrs.find((a) => a !== '%any');
    try {
      local ??= await sourceAddressFor(remote);
    } catch (err) {
      this.log.log(
        'esp',
        'warn',
        `connection ${conn.name}: child ${child.name} gets no trap policy: no local address towards ${remote} (${(err as Error).message})`,
      );
      return false;
    }
    const ts = initiatorTs({ localConfig: child.localTs, remoteConfig: child.remoteTs, localAddr: local, remoteAddr: remote });
    const spec: PolicySpec = {
      reqid: child.reqid,
      direction: 'out',
      local: toEspSelectors(ts.tsi),
      remote: toEspSelectors(ts.tsr),
      action: 'protect',
      failureMode: child.policy,
      priority: 100,
      mode: child.mode,
      localAddress: local,
      remoteAddress: remote,
    };
    this.traps.set(child.reqid, { connection: conn.name, child: child.name, spec });
    if (!this.sad.spd.get(child.reqid, 'out')) this.sad.addPolicy(spec);
    this.log.log('esp', 'info', `trap policy for ${conn.name}/${child.name}{${child.reqid}} installed (${child.policy})`);
    return true;
  }

  /** The `block` / `clear` policy group shunts in place, by reqid. */
  private groupShunts = new Map<number, string>();

  /**
   * The `block` and `clear` policy groups (config policy_groups): a discard or
   * bypass policy per prefix, ordered with the group traps by prefix length
   * (longest prefix wins between groups). Replaces those of a previous call.
   */
  setPolicyGroupShunts(groups: PolicyGroups | undefined): void {
    if (this.stopped) return;
    for (const reqid of this.groupShunts.keys()) this.sad.deletePolicy(reqid, 'out');
    this.groupShunts.clear();
    for (const e of groups?.entries ?? []) {
      if (e.group !== 'block' && e.group !== 'clear') continue;
      const { start, end } = prefixRange(e.prefix.network, e.prefix.length);
      const any = (address: Buffer): TrafficSelector => ({
        protocol: 0,
        startAddress: formatIp(address),
        endAddress: formatIp(address),
        startPort: 0,
        endPort: 0xffff,
      });
      const whole = e.prefix.family === 4 ? { start: Buffer.alloc(4), end: Buffer.alloc(4, 0xff) } : { start: Buffer.alloc(16), end: Buffer.alloc(16, 0xff) };
      const reqid = this.nextGroupReqid++;
      this.sad.addPolicy({
        reqid,
        direction: 'out',
        local: [{ ...any(whole.start), endAddress: formatIp(whole.end) }],
        remote: [{ ...any(start), endAddress: formatIp(end) }],
        action: e.group === 'block' ? 'discard' : 'bypass',
        failureMode: 'private',
        priority: GROUP_TRAP_PRIORITY + (128 - e.prefix.length),
        mode: 'transport',
        localAddress: '',
        remoteAddress: '',
      });
      this.groupShunts.set(reqid, `${e.group} ${e.prefix.text}`);
    }
    if (this.groupShunts.size > 0) this.log.log('esp', 'info', `policy group shunts installed: ${[...this.groupShunts.values()].join(', ')}`);
  }

  private nextGroupReqid = GROUP_TRAP_REQID_BASE;
  /** Extra reqids of group traps, by connection and child, kept across reinstalls. */
  private readonly groupReqids = new WeakMap<ResolvedConnection, Map<string, number[]>>();

  /**
   * The traps of a group connection's child: one per prefix of remote_addrs
   * (crossed with the protocol/ports of remote_ts), each matching any host in
   * it, `perDestination` so that each peer is held and negotiated on its own.
   * When remote_ts names addresses, those are the traps' selectors instead.
   */
  private async installGroupTraps(
    conn: ResolvedConnection,
    child: ResolvedConnection['entry']['config']['children'][number],
    passive: boolean,
  ): Promise<boolean> {
    const prefixes = conn.group ?? [];
    const first = prefixes[0];
    if (first === undefined || child.reqid === undefined) return false;
    let local = conn.entry.localAddrs.find((a) => a !== '%any' && a.includes(':') === first.family > 4);
    try {
      local ??= await sourceAddressFor(formatIp(first.network));
    } catch (err) {
      this.log.log(
        'esp',
        'warn',
        `connection ${conn.name}: child ${child.name} gets no trap policy: no local address towards ${first.text} (${(err as Error).message})`,
      );
      return false;
    }
    const localTs = toEspSelectors(initiatorTs({ localConfig: child.localTs, remoteConfig: child.localTs, localAddr: local, remoteAddr: local }).tsi);
    const named = child.remoteTs.filter((t) => !t.dynamic);
    const targets: Array<{ remote: TrafficSelector[]; length: number; text: string }> =
      named.length > 0
        ? named.map((t) => ({
            remote: [{ protocol: t.protocol, startAddress: t.startAddress!, endAddress: t.endAddress!, startPort: t.startPort, endPort: t.endPort }],
            length: prefixLengthOf(t.startAddress!, t.endAddress!),
            text: t.text,
          }))
        : prefixes
            .filter((p) => p.family === first.family || conn.entry.localAddrs.includes('%any'))
            .map((p) => {
              const { start, end } = prefixRange(p.network, p.length);
              const ranges = child.remoteTs.map((t) => ({
                protocol: t.protocol,
                startAddress: formatIp(start),
                endAddress: formatIp(end),
                startPort: t.startPort,
                endPort: t.endPort,
              }));
              return { remote: ranges, length: p.length, text: p.text };
            });
    let reqids = this.groupReqids.get(conn);
    if (!reqids) this.groupReqids.set(conn, (reqids = new Map()));
    const extra = reqids.get(child.name) ?? [];
    reqids.set(child.name, extra);
    let installed = 0;
    for (const [i, target] of targets.entries()) {
      const family = target.remote[0]!.startAddress.includes(':') ? 6 : 4;
      if ((local.includes(':') ? 6 : 4) !== family) {
        this.log.log(
          'esp',
          'warn',
          `connection ${conn.name}: no trap for ${target.text}: no local ${family === 6 ? 'IPv6' : 'IPv4'} address (set local_addrs)`,
        );
        continue;
      }
      const reqid = i === 0 ? child.reqid : (extra[i - 1] ??= this.nextGroupReqid++);
      const spec: PolicySpec = {
        reqid,
        direction: 'out',
        local: localTs,
        remote: target.remote,
        action: 'protect',
        failureMode: child.policy,
        priority: GROUP_TRAP_PRIORITY + (128 - target.length),
        mode: child.mode,
        localAddress: local,
        remoteAddress: '',
        perDestination: true,
      };
      this.traps.set(reqid, { connection: conn.name, child: child.name, spec, group: conn, ...(passive ? { passive } : {}) });
      this.sad.addPolicy(spec);
      installed++;
    }
    this.log.log(
      'esp',
      'info',
      `group trap policies for ${conn.name}/${child.name} installed (${child.policy}${passive ? ', respond only: traffic dropped until a peer negotiates' : ''}): ${targets.map((t) => t.text).join(', ')}`,
    );
    return installed > 0;
  }

  /**
   * Reload: `current` is the connection list from now on; the trap and shunt
   * policies of `gone` (removed or replaced connections) are forgotten, so
   * they do not come back when those connections' CHILD_SAs are deleted, and
   * removed where they are in the SPD (not where a CHILD_SA's own policy
   * holds the reqid: IKE removes that one with the CHILD_SA).
   */
  removeTraps(gone: readonly ResolvedConnection[], current: readonly ResolvedConnection[]): void {
    this.connections = current;
    for (const conn of gone) {
      for (const [reqid, trap] of [...this.traps]) {
        if (trap.group !== conn) continue;
        this.traps.delete(reqid);
        if (this.sad.spd.get(reqid, 'out')?.spec === trap.spec) this.sad.deletePolicy(reqid, 'out');
        this.log.log('esp', 'info', `group trap policy {${reqid}} of connection ${conn.name} removed (reload)`);
      }
      for (const reqid of [...conn.entry.config.children.map((c) => c.reqid), ...conn.shunts.map((s) => s.reqid)]) {
        if (reqid === undefined) continue;
        const trap = this.traps.get(reqid);
        this.traps.delete(reqid);
        const installed = this.sad.spd.get(reqid, 'out');
        const isShunt = conn.shunts.some((s) => s.reqid === reqid);
        if (installed && (isShunt || (trap && installed.spec === trap.spec) || !this.sad.outboundSaFor(reqid))) {
          this.sad.deletePolicy(reqid, 'out');
          this.log.log('esp', 'info', `${isShunt ? 'shunt' : 'trap'} policy {${reqid}} of connection ${conn.name} removed (reload)`);
        }
      }
    }
  }

  /**
   * A new daemon's policies are in: remove the backstop a previous daemon
   * left for policies this configuration no longer has.
   */
  async settleBackstop(): Promise<void> {
    if (!this.backstop) return;
    const dropped = this.backstop.leftovers;
    for (const p of await this.backstop.dropLeftovers()) this.log.log('knl', 'warn', `removing the backstop of a previous daemon: ${p}`);
    if (dropped.rules + dropped.routes > 0)
      this.log.log('knl', 'info', `backstop of a previous daemon no policy claims removed (${dropped.rules} rule(s), ${dropped.routes} route(s))`);
  }

  /**
   * The global off switch: `clear` lets the traffic of tunsec's policies pass
   * in the clear, so the backstop is lifted meanwhile; `drop` keeps it; up
   * (undefined) restores it for the outbound policies in place.
   */
  async setGlobalOff(mode: 'drop' | 'clear' | undefined): Promise<void> {
    this.engine.globalOff = mode;
    const lift = mode === 'clear';
    if (lift === this.backstopLifted || !this.backstop) return;
    this.backstopLifted = lift;
    if (lift) {
      for (const p of await this.backstop.stop()) this.log.log('knl', 'warn', `lifting the backstop: ${p}`);
      return;
    }
    for (const entry of this.sad.spd.list('out')) this.followBackstop(entry, true);
  }

  /** The backstop of a policy whose traffic must never leave in the clear: `private` protect policies and drop shunts. */
  private followBackstop(entry: SpdEntry, added: boolean): void {
    const spec = entry.spec;
    if (!this.backstop || this.backstopLifted || spec.direction !== 'out') return;
    if (!(spec.action === 'discard' || (spec.action === 'protect' && spec.failureMode === 'private'))) return;
    const key = policyKey(entry);
    const report = (problems: string[]): void => {
      for (const p of problems) this.log.log('knl', 'warn', `${added ? 'installing' : 'removing'} the backstop of policy {${spec.reqid}}: ${p}`);
    };
    if (added) void this.backstop.addPolicy(key, { local: spec.local, remote: spec.remote }).then(report);
    else void this.backstop.removePolicy(key).then(report);
  }

  /** Resolves once the route changes of every policy added or removed so far are made (TUN routes and backstop). */
  async routesSettled(): Promise<void> {
    await Promise.all([this.routes?.settled(), this.backstop?.settled()]);
  }

  /** Keep the routes in step with the outbound `protect` policies. */
  private followPolicy(entry: SpdEntry, added: boolean): void {
    const spec = entry.spec;
    // bypass needs no route (the main table sends it in the clear); discard is routed here to be dropped
    if (spec.direction !== 'out' || spec.action === 'bypass' || !this.routes) return;
    // Teardown has begun: a policy that still comes in (an exchange completing late) gets no routes;
    // those of the policies going are removed by stop() with the rest.
    if (this.stopped) return;
    this.followBackstop(entry, added);
    const key = policyKey(entry);
    const done = (what: string) => (problems: string[]) => {
      for (const p of problems) this.log.log('knl', 'warn', `${what} routes of policy {${spec.reqid}}: ${p}`);
    };
    if (added) {
      const localAddress = sourceWithin(spec.local, spec.localAddress);
      // Until its routes are in, the host's replies to this policy's decrypted packets would leave in
      // the clear (main table): they wait in the datapath, and go once the routes are there.
      const protect = spec.action === 'protect';
      if (protect) this.engine.waitInbound(spec.reqid);
      void this.routes
        .addPolicy(key, { local: spec.local, remote: spec.remote, ...(localAddress ? { localAddress } : {}) })
        .then(done('installing'))
        .finally(() => {
          if (protect) this.ioLoop?.releaseInbound(spec.reqid);
        });
    } else {
      void this.routes.removePolicy(key).then(done('removing'));
    }
  }

  status(): DatapathStatus {
    const installed = this.backstop?.installed();
    return {
      tun: this.ioLoop?.tunName,
      counters: { ...this.engine.counters },
      io: this.ioLoop ? { ...this.ioLoop.io } : zeroIoCounters(),
      traps: [...this.traps.entries()].map(([reqid, t]) => ({ connection: t.connection, child: t.child, reqid })),
      backstop: { table: this.config.backstop_table, rules: installed?.rules.length ?? 0, routes: installed?.routes.length ?? 0, lifted: this.backstopLifted },
    };
  }

  /**
   * Remove routes and rules, close the TUN device and sockets, and last the
   * backstop — unless `keepBackstop` (a start that failed: the traffic a
   * previous daemon protected stays blocked until one runs again).
   */
  async stop(options: { keepBackstop?: boolean } = {}): Promise<void> {
    this.stopped = true;
    for (const reqid of this.traps.keys()) this.sad.deletePolicy(reqid, 'out');
    this.traps.clear();
    const problems = (await this.routes?.stop()) ?? [];
    for (const p of problems) this.log.log('knl', 'warn', `removing routes: ${p}`);
    this.ioLoop?.stop();
    this.ioLoop = undefined;
    if (options.keepBackstop) {
      const kept = this.backstop?.installed().rules.length ?? 0;
      if (kept > 0)
        this.log.log(
          'knl',
          'warn',
          `backstop left in place (${kept} rule(s)): the traffic of private policies stays blocked until tunsec runs again and stops cleanly`,
        );
      return;
    }
    for (const p of (await this.backstop?.stop()) ?? []) this.log.log('knl', 'warn', `removing the backstop: ${p}`);
  }
}

/** The prefix length of a range that is one prefix (else the length of the shortest prefix holding it, for ordering). */
function prefixLengthOf(start: string, end: string): number {
  const a = parseIp(start);
  const b = parseIp(end);
  if (!a || !b || a.length !== b.length) return 0;
  let bits = 0;
  for (let i = 0; i < a.length * 8; i++, bits++) if (((a[i >> 3]! ^ b[i >> 3]!) & (0x80 >> (i & 7))) !== 0) break;
  return bits;
}

/** Routes and backstop are held per SPD entry (a trap and the CHILD_SA's policy replacing it are two). */
const policyKey = (entry: SpdEntry): string => `${entry.spec.reqid}#${entry.order}`;

/**
 * The source address for routes into the TUN device: the SA's outer
 * address when the local selectors contain it (transport mode, host-to-host
 * tunnels), else one of this host's addresses inside them (a gateway's
 * inner address), else none (the kernel picks).
 */
export function sourceWithin(local: readonly TrafficSelector[], outer: string): string | undefined {
  const compiled = local.map(compileSelector);
  const inside = (address: string): boolean => {
    const bytes = parseIp(address);
    if (!bytes) return false;
    const family = bytes.length === 4 ? 4 : 6;
    return compiled.some((s) => selectorMatches(s, family, s.protocol, bytes, 0, s.anyPort ? -1 : s.startPort));
  };
  if (inside(outer)) return outer;
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) {
      if (a.internal || (a.family === 'IPv6' && a.address.startsWith('fe80'))) continue;
      if (inside(a.address)) return a.address;
    }
  }
  return undefined;
}
