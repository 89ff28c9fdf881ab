/**
 * A hub and a fleet of tunsec peers on one Ethernet segment (./netns-lan.ts),
 * for the fleet test (test/interop/fleet-netns.test.ts) and the fleet bench
 * (bench/fleet.ts). Every host is a tunsec daemon in a namespace of its own.
 * The hub has ONE group template over the segment's /24 (`fleet`: transport
 * mode, `private`, start_action trap, remote.id `*.fleet.test`, DPD and
 * inactivity); each peer an ordinary responder-only connection to the hub.
 * All certificates come from one CA. Peers can be killed (SIGKILL: no Delete,
 * as a crash) and started again; the hub learns of it by DPD.
 */
import { join } from 'node:path';
import { controlRequest } from '../../src/cli/control-client.js';
import type { ListSasResult, StatusResult } from '../../src/control/protocol.js';
import { createCa, issueCertificate } from '../../src/pki/issue.js';
import { FAST_RETRANSMIT, SOURCE_CLI, TunsecDaemon, credentialFiles, daemonAndCredentials } from '../interop/tunsec-daemon.js';
import type { CapturedPacket } from './capture.js';
import { NetnsLan } from './netns-lan.js';
import type { NetnsSide } from './netns.js';
import { waitFor, type RunResult } from './proc.js';

/** The group template's name (connection and child) on the hub. */
export const FLEET_TEMPLATE = 'fleet';
/** The hub's /metrics, on its namespace's own loopback. */
const HUB_METRICS = '127.0.0.1:9810';

export interface FleetOptions {
  peers: number;
  /** Namespace name prefix (a random suffix is added). */
  label: string;
  /** The template child's `inactivity`, seconds. */
  inactivityS: number;
  /** The template's `dpd_delay`, seconds. */
  dpdDelayS: number;
  /** node arguments running the CLI (default: the source through tsx). */
  entry?: string[];
  /** The `daemon.retransmit_*` lines of every daemon (default FAST_RETRANSMIT: a silent peer is dead after ~2.4 s). */
  retransmit?: string[];
  /** Peer daemons starting at once (each compiles or loads the CLI: CPU-bound). */
  startConcurrency?: number;
}

export interface FleetPeer {
  index: number;
  side: NetnsSide;
  daemon: TunsecDaemon;
}

export interface PingResult {
  peer: FleetPeer;
  ok: boolean;
  /** Round trip of the reply, ms (the first packet's includes the negotiation). */
  rttMs?: number;
  output: string;
}

/** The template of the hub: one connection for every host of `prefix`. */
function hubYaml(hub: NetnsSide, prefix: string, o: FleetOptions): string {
  return [
    ...daemonAndCredentials([`metrics: ${HUB_METRICS}`, ...(o.retransmit ?? FAST_RETRANSMIT)]),
    'connections:',
    `  ${FLEET_TEMPLATE}:`,
    `    local_addrs: ${hub.ip4}`,
    `    remote_addrs: ${prefix}`,
    '    proposals: aes128gcm16-prfsha384-ecp384bp!',
    `    dpd_delay: ${o.dpdDelayS}s`,
    '    local:',
    '      certs: [${DIR}/cert.pem]',
    '      id: hub.fleet.test',
    '    remote:',
    '      id: "*.fleet.test"',
    '    children:',
    `      ${FLEET_TEMPLATE}:`,
    '        mode: transport',
    '        esp_proposals: aes128gcm16-ecp384bp!',
    '        start_action: trap',
    '        policy: private',
    `        inactivity: ${o.inactivityS}s`,
    '',
  ].join('\n');
}

/** A peer: answers the hub, never initiates. */
function peerYaml(name: string, me: NetnsSide, hub: NetnsSide, o: FleetOptions): string {
  return [
    ...daemonAndCredentials(o.retransmit ?? FAST_RETRANSMIT),
    'connections:',
    '  hub:',
    `    local_addrs: ${me.ip4}`,
    `    remote_addrs: ${hub.ip4}`,
    '    proposals: aes128gcm16-prfsha384-ecp384bp!',
    '    local:',
    '      certs: [${DIR}/cert.pem]',
    `      id: ${name}.fleet.test`,
    '    remote:',
    '      id: hub.fleet.test',
    '    children:',
    '      hub:',
    '        mode: transport',
    '        esp_proposals: aes128gcm16-ecp384bp!',
    '        start_action: none',
    '        policy: private',
    '',
  ].join('\n');
}

/** Wait for `event` in the daemon's log after line `from` (a restarted daemon keeps its old lines). */
async function eventAfter(d: TunsecDaemon, event: string, from: number, timeoutMs: number): Promise<void> {
  try {
    await waitFor(`tunsec event ${event}`, () => d.lines.slice(from).some((l) => l.event === event) || undefined, timeoutMs, 100);
  } catch (err) {
    throw new Error(`${(err as Error).message}; tunsec log:\n${d.text().split('\n').slice(-30).join('\n')}`);
  }
}

export class Fleet {
  private constructor(
    readonly lan: NetnsLan,
    readonly hub: NetnsSide,
    readonly hubDaemon: TunsecDaemon,
    readonly peers: FleetPeer[],
    private readonly options: FleetOptions,
  ) {}

  /** Namespaces, CA, certificates and configurations; nothing runs yet. */
  static async create(o: FleetOptions): Promise<Fleet> {
    const lan = await NetnsLan.create(o.peers + 1, o.label);
    const [hub, ...sides] = lan.hosts as [NetnsSide, ...NetnsSide[]];
    const ca = createCa({ subject: 'C=CH, O=tunsec fleet, CN=tunsec Fleet CA', key: 'p384' });
    const issue = (name: string, side: NetnsSide) =>
      issueCertificate(ca, {
        subject: `C=CH, O=tunsec fleet, CN=${name}.fleet.test`,
        key: 'p384',
        subjectAltNames: { dns: [`${name}.fleet.test`], ip: [side.ip4] },
      });
    const daemon = (ns: string, yaml: string, files: Record<string, string>): TunsecDaemon => {
      const d = new TunsecDaemon(ns, yaml, files);
      d.entry = o.entry ?? SOURCE_CLI;
      return d;
    };
    const hubDaemon = daemon(hub.ns, hubYaml(hub, lan.prefix, o), credentialFiles(ca.certificatePem, issue('hub', hub)));
    const peers = sides.map((side, index) => {
      const name = `p${index + 1}`;
      return { index, side, daemon: daemon(side.ns, peerYaml(name, side, hub, o), credentialFiles(ca.certificatePem, issue(name, side))) };
    });
    return new Fleet(lan, hub, hubDaemon, peers, o);
  }

  /** Start the hub, then the peers (a few at a time), each until it logs daemon_started. */
  async start(timeoutMs = 120_000): Promise<void> {
    await this.hubDaemon.start();
    await eventAfter(this.hubDaemon, 'daemon_started', 0, timeoutMs);
    const queue = [...this.peers];
    const worker = async (): Promise<void> => {
      for (let p = queue.shift(); p; p = queue.shift()) {
        await p.daemon.start();
        await eventAfter(p.daemon, 'daemon_started', 0, timeoutMs);
      }
    };
    await Promise.all(Array.from({ length: this.options.startConcurrency ?? 4 }, worker));
  }

  /** Stop every daemon (SIGTERM: Deletes sent) and delete the namespaces. Returns processes left inside. */
  async destroy(): Promise<string[]> {
    await Promise.all([this.hubDaemon, ...this.peers.map((p) => p.daemon)].map((d) => d.stop().catch(() => null)));
    return this.lan.destroy();
  }

  private get socket(): string {
    return join(this.hubDaemon.dir, 'tunsec.sock');
  }

  /** The hub's `list-sas`, straight from its control socket. */
  async hubSas(): Promise<ListSasResult> {
    return (await controlRequest(this.socket, 'list-sas')) as ListSasResult;
  }

  /** The hub's `status`. */
  async hubStatus(): Promise<StatusResult> {
    return (await controlRequest(this.socket, 'status')) as StatusResult;
  }

  /** Peer addresses with an established IKE SA of the template on the hub (sorted). */
  async establishedPeers(): Promise<string[]> {
    return (await this.hubSas()).ike_sas
      .filter((sa) => sa.state === 'established' && sa.name === FLEET_TEMPLATE && sa.children.length > 0)
      .map((sa) => sa.remote.address)
      .sort();
  }

  /**
   * Ping `peers` from the hub, all at once. `count` 1 with a deadline sends
   * one packet (held by the trap until its SA is up); `untilReply` keeps
   * sending one a second until the first reply or the deadline.
   */
  async ping(peers: FleetPeer[], o: { deadlineS: number; untilReply?: boolean }): Promise<PingResult[]> {
    const args = (p: FleetPeer): string[] => (o.untilReply ? ['-c', '1', '-w', String(o.deadlineS)] : ['-c', '1', '-W', String(o.deadlineS)]);
    const runs: RunResult[] = await Promise.all(peers.map((p) => this.lan.exec(this.hub, 'ping', [...args(p), '-n', p.side.ip4], (o.deadlineS + 10) * 1000)));
    return runs.map((r, i) => {
      const rtt = /time=([\d.]+) ms/.exec(r.stdout)?.[1];
      return { peer: peers[i]!, ok: r.code === 0, ...(rtt ? { rttMs: Number(rtt) } : {}), output: (r.stdout + r.stderr).trim() };
    });
  }

  /** Wait until every one of `peers` has an established instance on the hub. */
  async waitForInstances(peers: FleetPeer[], timeoutMs: number, pollMs = 200): Promise<void> {
    const want = peers.map((p) => p.side.ip4);
    let have: string[] = [];
    try {
      await waitFor(
        `${want.length} instances on the hub`,
        async () => {
          have = await this.establishedPeers();
          return want.every((a) => have.includes(a)) || undefined;
        },
        timeoutMs,
        pollMs,
      );
    } catch (err) {
      const missing = want.filter((a) => !have.includes(a));
      const about = this.hubDaemon
        .text()
        .split('\n')
        .filter((l) => missing.some((a) => l.includes(a)) && !l.includes('liveness check'));
      throw new Error(`${(err as Error).message}: missing ${missing.join(', ')}; the hub's log about them:\n${about.slice(-40).join('\n')}`);
    }
  }

  /** Wait until none of `peers` has an IKE SA on the hub (DPD or inactivity closed them). */
  async waitForNoInstances(peers: FleetPeer[], timeoutMs: number): Promise<void> {
    const gone = peers.map((p) => p.side.ip4);
    await waitFor(
      `the hub's instances for ${gone.join(', ')} to go`,
      async () => !(await this.hubSas()).ike_sas.some((sa) => gone.includes(sa.remote.address)) || undefined,
      timeoutMs,
      250,
    );
  }

  /** SIGKILL a peer's daemon: no Delete reaches the hub, as in a crash. */
  async kill(p: FleetPeer): Promise<void> {
    await p.daemon.kill();
  }

  /** Start a killed peer's daemon again (same configuration and credentials) until it logs daemon_started. */
  async restart(p: FleetPeer, timeoutMs = 60_000): Promise<void> {
    const from = p.daemon.lines.length;
    await p.daemon.start();
    await eventAfter(p.daemon, 'daemon_started', from, timeoutMs);
  }

  /**
   * Packets to a peer that are neither ESP nor IKE (UDP 500/4500): traffic of
   * the `private` template that went out in the clear. ARP is not IP and is
   * not in the list.
   */
  cleartextToPeers(packets: CapturedPacket[]): CapturedPacket[] {
    const peers = new Set(this.peers.map((p) => p.side.ip4));
    const ike = (p: CapturedPacket): boolean => p.protocol === 'udp' && [500, 4500].some((port) => p.srcPort === port || p.dstPort === port);
    return packets.filter((p) => peers.has(p.dst) && p.protocol !== 'esp' && !ike(p));
  }

  /** A few of the hub's `/metrics` values (Prometheus text), read inside its namespace. */
  async hubMetrics(names: string[]): Promise<Record<string, number>> {
    const r = await this.lan.exec(this.hub, 'curl', ['-sS', '--max-time', '10', `http://${HUB_METRICS}/metrics`], 15_000);
    if (r.code !== 0) throw new Error(`curl /metrics on the hub: ${r.stderr.trim()}`);
    const out: Record<string, number> = {};
    for (const name of names) {
      const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'm').exec(r.stdout);
      if (m) out[name] = Number(m[1]);
    }
    return out;
  }
}
