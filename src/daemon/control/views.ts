/**
 * The read-only commands: `status`, `list-sas`, `list-conns`, `check`, `list-certs` (and
 * `global-status`'s object), each a function from the daemon's state to the
 * result the control protocol carries (src/control/protocol.ts). Metrics are
 * the same results (`daemonMetricsSource`). They change nothing.
 */
import type { DaemonConfig } from '../../config/index.js';
import type {
  CertInfo,
  CertKind,
  CheckResult,
  ChildSaInfo,
  ConnectionState,
  ConnectionStatus,
  ConnInfo,
  DaemonState,
  GlobalStatus,
  GlobalSwitchState,
  IkeDefenceStatus,
  IkeSaInfo,
  ListCertsResult,
  ListConnsResult,
  ListSasResult,
  StartAction,
  StatusResult,
} from '../../control/protocol.js';
import type { SaCounters } from '../../esp/api.js';
import type { SecurityAssociationDatabase } from '../../esp/sadb.js';
import { reassemblyBudget } from '../../ike/codec/fragments.js';
import type { IkeSaManager } from '../../ike/manager.js';
import { compareIp } from '../../util/ip.js';
import { formatProposal } from '../../ike/proposal/index.js';
import { formatGeneralName, formatSerial, formatTime, type Certificate } from '../../pki/certificate.js';
import type { IkeSa } from '../../ike/sa/ike-sa.js';
import type { ConnectionStates } from '../connection-states.js';
import { describeIdentity, type ResolvedConnection } from '../credentials.js';
import type { UserspaceDatapath } from '../datapath.js';
import type { ManualSas } from '../manual.js';
import type { MetricsSource } from '../metrics.js';
import type { ControlCounters } from './server.js';
import { spiHex, plural } from '../../util/format.js';

/** What the views read of the daemon (a Daemon is one). */
export interface DaemonView {
  readonly phase: DaemonState;
  readonly startedAt: number | undefined;
  readonly settings: Pick<DaemonConfig, 'control_socket' | 'datapath' | 'global'> | undefined;
  readonly global: { readonly state: GlobalSwitchState; readonly since: number };
  readonly controlServer: { readonly counters: ControlCounters; readonly clientCount: number } | undefined;
  readonly manager: Pick<IkeSaManager, 'sas' | 'counters' | 'halfOpenCount' | 'limits' | 'peerStateCount'> | undefined;
  readonly connectionList: readonly ResolvedConnection[];
  readonly connectionStates: ConnectionStates;
  initiatingSince(name: string): number | undefined;
  readonly backend: Pick<SecurityAssociationDatabase, 'querySa' | 'inboundSa'>;
  readonly datapath: Pick<UserspaceDatapath, 'status' | 'engine'> | undefined;
  readonly manual: Pick<ManualSas, 'list'> | undefined;
}

/** The snapshot of a running daemon for the metrics: the results of `status` and `list-sas`. */
export function daemonMetricsSource(daemon: DaemonView): MetricsSource {
  return () => ({ status: statusOf(daemon), sas: listSas(daemon) });
}

export function ikeDefenceStatus(manager: NonNullable<DaemonView['manager']>): IkeDefenceStatus {
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

export function globalStatus(daemon: DaemonView): GlobalStatus {
  const g = daemon.global;
  return { state: g.state, mode: daemon.settings?.global ?? 'drop', since: iso(g.since), age: ageOf(g.since, Date.now()) };
}

function startActionOf(startChildren: readonly string[], trapChildren: readonly string[], child?: string): StartAction {
  const start = child === undefined ? startChildren.length > 0 : startChildren.includes(child);
  const trap = child === undefined ? trapChildren.length > 0 : trapChildren.includes(child);
  return start && trap ? 'trap|start' : start ? 'start' : trap ? 'trap' : 'none';
}

function aliveSas(daemon: DaemonView, name?: string): IkeSa[] {
  return (daemon.manager?.sas ?? []).filter((sa) => sa.state !== 'destroyed' && (name === undefined || sa.ctx.config.name === name));
}

export function statusOf(daemon: DaemonView): StatusResult {
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

function controlStats(server: DaemonView['controlServer']): StatusResult['daemon']['control'] {
  const c = server?.counters ?? { connections: 0, requests: 0, badRequests: 0, rejectedClients: 0, refusedPeers: 0 };
  return {
    clients: server?.clientCount ?? 0,
    connections: c.connections,
    requests: c.requests,
    bad_requests: c.badRequests,
    rejected_clients: c.rejectedClients,
    refused_peers: c.refusedPeers,
  };
}

function connectionStatus(daemon: DaemonView, name: string, now: number): ConnectionStatus {
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
    // a group's peers are its prefixes; those with an IKE SA are its instances
    peer: c.group ? c.entry.remoteAddrs.join(', ') : (shown?.ctx.remote.address ?? c.entry.remoteAddrs.find((a) => a !== '%any') ?? null),
    ...(c.group ? { instances: [...new Set(sas.map((sa) => sa.ctx.config.instancePeer ?? sa.ctx.remote.address))].sort(compareIp) } : {}),
    local_id: describeIdentity(cfg.localId),
    remote_id: c.group ? remoteIdOf(cfg) : describeIdentity(shown?.ctx.peerId ?? cfg.remoteId),
    ike_sas: sas.length,
    children: established.reduce((n, sa) => n + sa.ctx.children.length, 0),
    failed_children: established.flatMap((sa) => daemon.connectionStates.failedChildren(sa)).map((f) => ({ name: f.name, reason: f.reason, since: iso(f.at) })),
    start_action: startActionOf(c.startChildren, c.trapChildren),
  };
}

/** The configured remote identity, a pattern (`*.eqiad.example`, `%fromcert-ip`) included. */
function remoteIdOf(cfg: ResolvedConnection['entry']['config']): string {
  const p = cfg.remoteIdPattern;
  if (p === undefined) return describeIdentity(cfg.remoteId);
  return p.kind === 'wildcard' ? `*.${p.suffix}` : '%fromcert-ip';
}

export function listSas(daemon: DaemonView, name?: string): ListSasResult {
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
      instance: ctx.config.instancePeer === undefined ? null : `${ctx.config.name}[${ctx.config.instancePeer}]`,
      spi_i: ctx.spiI.toString('hex'),
      spi_r: ctx.spiR.toString('hex'),
      initiator: ctx.originalInitiator,
      state: ctx.state,
      local: { address: ctx.local.address, port: ctx.local.port },
      remote: { address: ctx.remote.address, port: ctx.remote.port },
      local_id: describeIdentity(ctx.config.localId),
      remote_id: describeIdentity(ctx.peerId ?? ctx.config.remoteId),
      local_auth: ctx.config.localAuth ?? 'pubkey',
      remote_auth: ctx.peerAuth ?? null,
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
    datapath: dp ? { ...dp.status(), global_off: dp.engine.globalOff ?? null } : null,
    manager: manager ? { ...manager.counters, half_open: manager.halfOpenCount } : null,
    manual_sas: daemon.manual?.list().sas ?? [],
  };
}

export function listConns(daemon: DaemonView): ListConnsResult {
  return {
    connections: daemon.connectionList.map((c): ConnInfo => {
      const cfg = c.entry.config;
      return {
        name: c.name,
        local_addrs: c.entry.localAddrs,
        remote_addrs: c.entry.remoteAddrs,
        remote_port: c.entry.remotePort,
        local_id: describeIdentity(cfg.localId),
        remote_id: remoteIdOf(cfg),
        local_auth: cfg.localAuth ?? 'pubkey',
        remote_auth: cfg.remoteAuth ?? 'pubkey',
        certificate: cfg.certificate?.subject.text ?? null,
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
 * The certificates in use: each connection's own certificate and the
 * intermediates sent with it, the trust anchors, and the peers' certificates
 * of the IKE SAs up now; one entry per certificate and role, with the
 * connections using it.
 */
export function listCerts(daemon: DaemonView): ListCertsResult {
  const now = Date.now();
  const byKey = new Map<string, CertInfo>();
  const add = (kind: CertKind, cert: Certificate, conn: string, ikeSa?: string): void => {
    const key = `${kind} ${cert.fingerprint}`;
    let info = byKey.get(key);
    if (!info) {
      info = certInfo(kind, cert, now);
      byKey.set(key, info);
    }
    if (!info.connections.includes(conn)) info.connections.push(conn);
    if (ikeSa !== undefined) (info.ike_sas ??= []).push(ikeSa);
  };
  for (const c of daemon.connectionList) {
    const cfg = c.entry.config;
    if (cfg.certificate) add('own', cfg.certificate, c.name);
    for (const i of cfg.intermediates) add('intermediate', i, c.name);
    for (const a of cfg.trust.trustAnchors) add('ca', a, c.name);
  }
  for (const sa of aliveSas(daemon)) {
    const peer = sa.ctx.peerCertificate;
    if (peer) add('peer', peer, sa.ctx.config.name, `${sa.ctx.spiI.toString('hex')}_i ${sa.ctx.spiR.toString('hex')}_r`);
  }
  const order: Record<CertKind, number> = { own: 0, intermediate: 1, ca: 2, peer: 3 };
  return { certificates: [...byKey.values()].sort((a, b) => order[a.kind] - order[b.kind]) };
}

function certInfo(kind: CertKind, cert: Certificate, now: number): CertInfo {
  return {
    kind,
    subject: cert.subject.text,
    issuer: cert.issuer.text,
    serial: formatSerial(cert.serialNumber),
    sans: cert.subjectAltNames.map(formatGeneralName),
    not_before: formatTime(cert.notBefore),
    not_after: formatTime(cert.notAfter),
    validity: now < cert.notBefore.getTime() ? 'not yet valid' : now > cert.notAfter.getTime() ? 'expired' : 'valid',
    key: keyType(cert),
    fingerprint: cert.fingerprint,
    ca: cert.basicConstraints?.cA ?? false,
    source: cert.source,
    connections: [],
  };
}

const CURVES: Readonly<Record<string, string>> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' };

/** `RSA 3072`, `ECDSA P-384`, `Ed25519`, as swanctl --list-certs says it. */
function keyType(cert: Certificate): string {
  const k = cert.publicKey;
  const d = k.asymmetricKeyDetails ?? {};
  switch (k.asymmetricKeyType) {
    case 'rsa':
    case 'rsa-pss':
      return `RSA${k.asymmetricKeyType === 'rsa-pss' ? '-PSS' : ''} ${d.modulusLength ?? '?'}`;
    case 'ec':
      return `ECDSA ${CURVES[d.namedCurve ?? ''] ?? d.namedCurve ?? '?'}`;
    case 'ed25519':
      return 'Ed25519';
    case 'ed448':
      return 'Ed448';
    default:
      return k.asymmetricKeyType ?? 'unknown';
  }
}

/**
 * Nagios/Icinga semantics. Without a name, the connections that are meant to
 * be up (a child with start_action start or trap) count; with a name, that
 * connection whatever its start_action. CRITICAL: one of them is not
 * connected, or any packet went out in the clear by a private-or-clear
 * fallback; WARNING: one is connecting; else OK.
 */
export function check(daemon: DaemonView, name?: string): CheckResult {
  const now = Date.now();
  // A group connection is up on demand, per peer: having no IKE SA is its normal state, not a fault.
  const all = daemon.connectionList.map((c) => ({
    status: connectionStatus(daemon, c.name, now),
    expected: c.group === undefined && (name === undefined ? c.startChildren.length + c.trapChildren.length > 0 : c.name === name),
  }));
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
  if (fallback > 0) problems.push(`${plural(fallback, 'packet')} sent in the clear (private-or-clear fallback)`);
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

const iso = (ms: number): string => new Date(ms).toISOString();
const ageOf = (ms: number, now: number): number => Math.max(0, Math.floor((now - ms) / 1000));
const zeroCounters: SaCounters = { bytes: 0, packets: 0, replayDrops: 0, icvFailures: 0, badPadding: 0, policyDrops: 0, lastUsed: 0 };
