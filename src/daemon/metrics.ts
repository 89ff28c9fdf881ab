/**
 * Prometheus metrics: `daemon.metrics: 127.0.0.1:9810` serves the text
 * exposition format at `/metrics` (node:http, prom-client with a registry of
 * its own — never prom-client's global one).
 *
 * Nothing is counted here: every scrape takes one snapshot of what `tunsec
 * status` and `tunsec list-sas` show (the same views, src/daemon/control/views.ts,
 * passed in as a MetricsSource) and the metrics' collect callbacks turn it into
 * samples; this module knows the results, not the daemon. The datapath pays
 * nothing per packet for metrics.
 *
 * A bad path gets 404, another method 405; a failing collection is logged and
 * answered 500. Nothing a client sends stops the daemon. docs/daemon.md lists
 * the metrics.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { ListenAddress } from '../config/index.js';
import type { DatapathCounters } from '../esp/engine.js';
import type { IoCounters } from '../esp/io.js';
import type { ManagerCounters } from '../ike/manager.js';
import type { IkeSaState } from '../ike/sa/context.js';
import type { ConnectionState, GlobalSwitchState, ListSasResult, StatusResult } from '../control/protocol.js';
import type { DaemonLogger } from './logger.js';

/** The counters of a manual SA pair in `list-sas` (`ManualSaInfo`, src/control/protocol.ts). */
interface ManualSaCounters {
  name: string;
  reqid: number;
  spi_in: string;
  spi_out: string;
  bytes_in: number;
  packets_in: number;
  bytes_out: number;
  packets_out: number;
  replay_drops: number;
  icv_failures: number;
}

/** What one scrape sees: the results of `status` and `list-sas`. */
export interface MetricsSnapshot {
  status: StatusResult;
  sas: ListSasResult;
}

/** A daemon's is `daemonMetricsSource` (./control/views.ts); tests pass their own. */
export type MetricsSource = () => MetricsSnapshot;

/** `tunsec_connection_state`'s values. */
export const CONNECTION_STATE_VALUE: Record<ConnectionState, number> = { 'not connected': 0, connecting: 1, established: 2 };

const IKE_SA_STATES: readonly IkeSaState[] = ['created', 'connecting', 'established', 'deleting'];
const GLOBAL_STATES: readonly GlobalSwitchState[] = ['up', 'going-down', 'down', 'going-up'];

type DatapathTarget =
  | { metric: 'packets' | 'bytes'; direction: 'in' | 'out' }
  | { metric: 'dropped'; direction: 'in' | 'out'; reason: string }
  | { metric: 'clear'; reason: string }
  | { metric: 'fallback' | 'held' | 'held_pending_spi' | 'acquires' };

/** Every datapath counter has its place (a new counter without one does not compile). */
const DATAPATH_COUNTERS: Record<keyof DatapathCounters, DatapathTarget> = {
  outPackets: { metric: 'packets', direction: 'out' },
  outBytes: { metric: 'bytes', direction: 'out' },
  inPackets: { metric: 'packets', direction: 'in' },
  inBytes: { metric: 'bytes', direction: 'in' },
  outMalformed: { metric: 'dropped', direction: 'out', reason: 'malformed' },
  outNoPolicy: { metric: 'dropped', direction: 'out', reason: 'no_policy' },
  outBypass: { metric: 'clear', reason: 'bypass_policy' },
  outDiscard: { metric: 'dropped', direction: 'out', reason: 'discard_policy' },
  outHeld: { metric: 'held' },
  outHoldOverflow: { metric: 'dropped', direction: 'out', reason: 'hold_queue_full' },
  outNoSa: { metric: 'dropped', direction: 'out', reason: 'no_sa' },
  outFallbackClear: { metric: 'fallback' },
  outGlobalClear: { metric: 'clear', reason: 'global_off' },
  outGlobalDrop: { metric: 'dropped', direction: 'out', reason: 'global_off' },
  acquires: { metric: 'acquires' },
  inMalformed: { metric: 'dropped', direction: 'in', reason: 'malformed' },
  inUnknownSpi: { metric: 'dropped', direction: 'in', reason: 'unknown_spi' },
  inHeldPendingSpi: { metric: 'held_pending_spi' },
  inHeldPendingSpiDropped: { metric: 'dropped', direction: 'in', reason: 'pending_spi_hold' },
  inReplay: { metric: 'dropped', direction: 'in', reason: 'replay' },
  inIcv: { metric: 'dropped', direction: 'in', reason: 'icv_failure' },
  inPadding: { metric: 'dropped', direction: 'in', reason: 'bad_padding' },
  inDummy: { metric: 'dropped', direction: 'in', reason: 'dummy' },
  inPolicy: { metric: 'dropped', direction: 'in', reason: 'outside_selectors' },
  expiredDrops: { metric: 'dropped', direction: 'out', reason: 'sa_expired' },
  inRouteWaitOverflow: { metric: 'dropped', direction: 'in', reason: 'route_pending' },
};

const IO_COUNTERS: Record<keyof IoCounters, { name: string; help: string }> = {
  tunReads: { name: 'tunsec_io_tun_read_packets_total', help: 'Packets read from the TUN device.' },
  tunWrites: { name: 'tunsec_io_tun_written_packets_total', help: 'Packets written to the TUN device.' },
  tunWriteDrops: { name: 'tunsec_io_tun_write_drops_total', help: 'Decrypted packets lost because the TUN device refused the write (queue full).' },
  espReceived: { name: 'tunsec_io_esp_received_packets_total', help: 'Raw ESP packets received (IP protocol 50).' },
  udpReceived: { name: 'tunsec_io_udp_esp_received_packets_total', help: 'ESP-in-UDP packets received on the NAT-T sockets.' },
  sendDrops: { name: 'tunsec_io_send_drops_total', help: 'Packets lost on sending: socket buffer full or a routing error.' },
  clearSent: { name: 'tunsec_io_clear_sent_packets_total', help: 'Packets sent in the clear by the datapath (bypass, fallback, global off).' },
  internalErrors: { name: 'tunsec_io_internal_errors_total', help: 'Packets dropped because processing them hit a bug (logged with its stack).' },
  tunGsoPackets: {
    name: 'tunsec_io_tun_gso_packets_total',
    help: 'TSO/USO super-packets read from the TUN device and split into segments (the segments count as packets read).',
  },
  tunGsoRefused: {
    name: 'tunsec_io_tun_gso_refused_total',
    help: 'Packets read from the TUN device that could not be segmented (IPv6 extension headers, IPv4 source routes, malformed): dropped.',
  },
  tunGroWrites: {
    name: 'tunsec_io_tun_gro_writes_total',
    help: 'Coalesced TCP super-packets written to the TUN device (their segments count as packets written).',
  },
  tunGroSegments: { name: 'tunsec_io_tun_gro_segments_total', help: 'Segments inside the coalesced super-packets written to the TUN device.' },
  udpGsoSends: { name: 'tunsec_io_udp_gso_sends_total', help: 'ESP-in-UDP datagrams sent with UDP GSO (UDP_SEGMENT).' },
  udpGsoPackets: { name: 'tunsec_io_udp_gso_packets_total', help: 'ESP packets inside the UDP GSO datagrams.' },
  udpGsoRefused: { name: 'tunsec_io_udp_gso_refused_total', help: 'UDP sockets whose route refused GSO (EIO); their packets were resent one by one.' },
  udpGroDatagrams: {
    name: 'tunsec_io_udp_gro_datagrams_total',
    help: 'Coalesced ESP-in-UDP datagrams received with UDP GRO (split into their datagrams before the demultiplexing).',
  },
  udpGroSegments: {
    name: 'tunsec_io_udp_gro_segments_total',
    help: 'Datagrams inside the coalesced UDP GRO datagrams (they count in tunsec_io_udp_esp_received_packets_total too).',
  },
  udpGroRefused: { name: 'tunsec_io_udp_gro_refused_total', help: 'NAT-T sockets on which UDP GRO could not be enabled; read one datagram at a time.' },
  sealFailures: { name: 'tunsec_io_seal_failures_total', help: 'Packets the batched native seal could not seal (dropped).' },
};

const MANAGER_COUNTERS: Record<keyof ManagerCounters, { name: string; help: string }> = {
  malformed: { name: 'tunsec_ike_malformed_messages_total', help: 'IKE datagrams dropped as malformed.' },
  unknownSpi: { name: 'tunsec_ike_unknown_spi_messages_total', help: 'IKE messages for an IKE SA that does not exist here.' },
  noConnection: { name: 'tunsec_ike_no_connection_total', help: 'IKE_SA_INIT requests no configured connection matches.' },
  cookiesSent: { name: 'tunsec_ike_cookies_sent_total', help: 'COOKIE notifies sent (too many half-open IKE SAs).' },
  cookiesRejected: { name: 'tunsec_ike_cookies_rejected_total', help: 'IKE_SA_INIT requests with a wrong or missing COOKIE.' },
  internalErrors: { name: 'tunsec_ike_internal_errors_total', help: 'IKE messages whose processing hit a bug (logged with its stack).' },
  invalidSpiSent: { name: 'tunsec_ike_invalid_spi_notifies_sent_total', help: 'INVALID_IKE_SPI notifies sent in answer to unknown IKE SPIs.' },
  halfOpenLimitDrops: {
    name: 'tunsec_ike_half_open_limit_drops_total',
    help: 'IKE_SA_INIT requests dropped because daemon.limits.half_open_max half-open IKE SAs existed.',
  },
  peerHalfOpenDrops: {
    name: 'tunsec_ike_peer_half_open_drops_total',
    help: 'IKE_SA_INIT requests dropped because their address had daemon.limits.half_open_per_peer half-open IKE SAs.',
  },
  initRateDrops: {
    name: 'tunsec_ike_init_rate_drops_total',
    help: 'IKE_SA_INIT requests dropped by the per-address rate limit (daemon.limits.ike_init_rate).',
  },
  authRateDrops: { name: 'tunsec_ike_auth_rate_drops_total', help: 'IKE_AUTH requests dropped by the per-address rate limit (daemon.limits.ike_auth_rate).' },
  halfOpenTimeouts: {
    name: 'tunsec_ike_half_open_timeouts_total',
    help: 'Half-open IKE SAs dropped because IKE_AUTH did not complete within daemon.limits.half_open_timeout.',
  },
  dpdChecks: {
    name: 'tunsec_ike_dpd_checks_total',
    help: 'Liveness checks (empty INFORMATIONAL requests) sent after dpd_delay without traffic from the peer.',
  },
  deadPeers: {
    name: 'tunsec_ike_dead_peers_total',
    help: 'Established IKE SAs ended because the peer stopped answering (DPD or any unanswered exchange); dpd_action applied.',
  },
  drainingDrops: { name: 'tunsec_ike_shutdown_drops_total', help: 'IKE_SA_INIT requests dropped because the daemon was shutting down.' },
  authFailures: { name: 'tunsec_ike_auth_failures_total', help: "Peers' IKE_AUTH refused with AUTHENTICATION_FAILED (the log line says why)." },
  nullAuthRefused: {
    name: 'tunsec_ike_null_auth_refused_total',
    help: 'Peers refused for offering NULL Authentication (RFC 7619) to a connection whose remote.auth is pubkey (also counted in auth_failures).',
  },
  cryptoWorkerFailures: {
    name: 'tunsec_ike_crypto_worker_failures_total',
    help: 'Key exchanges and AUTH signatures lost to a crypto worker that failed (daemon.crypto_workers): that exchange failed, the worker was replaced.',
  },
};

/**
 * The registry and its metrics over a snapshot source. `metrics()` renders one
 * scrape; the registry can also be read directly (every collect then takes its
 * own snapshot).
 */
export class TunsecMetrics {
  readonly registry = new Registry();
  /** The snapshot of the scrape being rendered. */
  private scrape?: MetricsSnapshot;

  constructor(
    private readonly source: MetricsSource,
    options: { defaultMetrics?: boolean } = {},
  ) {
    const r = this.registry;
    const snap = (): MetricsSnapshot => this.scrape ?? this.source();
    const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[], fill: (g: Gauge<L>, s: MetricsSnapshot) => void): void => {
      new Gauge<L>({
        name,
        help,
        labelNames,
        registers: [r],
        collect() {
          this.reset();
          fill(this, snap());
        },
      });
    };
    const counter = <L extends string>(name: string, help: string, labelNames: readonly L[], fill: (c: Counter<L>, s: MetricsSnapshot) => void): void => {
      new Counter<L>({
        name,
        help,
        labelNames,
        registers: [r],
        collect() {
          this.reset();
          fill(this, snap());
        },
      });
    };

    // --- connections and SAs
    gauge(
      'tunsec_connection_state',
      'State of each configured connection: 0 not connected, 1 connecting, 2 established (as tunsec status).',
      ['connection'],
      (g, s) => {
        for (const c of s.status.connections) g.set({ connection: c.name }, CONNECTION_STATE_VALUE[c.state]);
      },
    );
    gauge('tunsec_connection_state_age_seconds', 'Seconds since each connection entered its current state.', ['connection'], (g, s) => {
      for (const c of s.status.connections) g.set({ connection: c.name }, c.age);
    });
    gauge('tunsec_ike_sas', 'IKE SAs by connection and state (destroyed ones are gone).', ['connection', 'state'], (g, s) => {
      for (const c of s.status.connections) for (const state of IKE_SA_STATES) g.set({ connection: c.name, state }, 0);
      for (const sa of s.sas.ike_sas) g.inc({ connection: sa.name, state: sa.state }, 1);
    });
    gauge('tunsec_ike_sas_half_open', 'Half-open IKE SAs (responder side, IKE_AUTH not completed).', [], (g, s) => {
      g.set(s.sas.manager?.half_open ?? 0);
    });
    gauge('tunsec_ike_cookie_mode', '1 while IKE_SA_INIT requests must return a COOKIE (half-open IKE SAs ≥ daemon.limits.cookie_threshold).', [], (g, s) => {
      g.set(s.status.daemon.ike?.cookie_mode ? 1 : 0);
    });
    gauge('tunsec_ike_peer_rate_entries', 'Peer addresses with rate-limit state (bounded by daemon.limits.peers_max).', [], (g, s) => {
      g.set(s.status.daemon.ike?.peers ?? 0);
    });
    gauge(
      'tunsec_ike_fragment_reassembly_bytes',
      'Octets held in IKE fragment reassembly over all IKE SAs (bounded by daemon.limits.fragments_total_bytes).',
      [],
      (g, s) => {
        g.set(s.status.daemon.ike?.fragment_bytes ?? 0);
      },
    );
    gauge('tunsec_limit', 'The denial-of-service limits in force (daemon.limits; times in seconds, rates per second).', ['limit'], (g, s) => {
      const l = s.status.daemon.ike?.limits;
      if (!l) return;
      g.set({ limit: 'cookie_threshold' }, l.cookieThreshold);
      g.set({ limit: 'half_open_max' }, l.halfOpenMax);
      g.set({ limit: 'half_open_per_peer' }, l.halfOpenPerPeer);
      g.set({ limit: 'half_open_timeout' }, l.halfOpenTimeoutMs / 1000);
      g.set({ limit: 'ike_init_rate' }, l.initPerPeerPerSecond);
      g.set({ limit: 'ike_auth_rate' }, l.authPerPeerPerSecond);
      g.set({ limit: 'peers_max' }, l.peersMax);
      g.set({ limit: 'invalid_spi_rate' }, l.invalidSpiPerSecond);
    });
    gauge('tunsec_child_sas', 'CHILD SAs under established IKE SAs, by connection.', ['connection'], (g, s) => {
      for (const c of s.status.connections) g.set({ connection: c.name }, c.children);
    });
    const childLabels = ['connection', 'child', 'reqid', 'direction', 'spi'] as const;
    const inboundLabels = ['connection', 'child', 'reqid', 'spi'] as const;
    const eachChild = (
      s: MetricsSnapshot,
      f: (ike: ListSasResult['ike_sas'][number], child: ListSasResult['ike_sas'][number]['children'][number]) => void,
    ): void => {
      for (const ike of s.sas.ike_sas) for (const child of ike.children) f(ike, child);
    };
    counter(
      'tunsec_child_sa_bytes_total',
      'Octets through each CHILD_SA (the IP packets before encryption / after decryption), by direction and the SPI of that direction.',
      childLabels,
      (c, s) =>
        eachChild(s, (ike, ch) => {
          c.inc({ connection: ike.name, child: ch.name, reqid: String(ch.reqid), direction: 'in', spi: ch.spi_in }, ch.bytes_in);
          c.inc({ connection: ike.name, child: ch.name, reqid: String(ch.reqid), direction: 'out', spi: ch.spi_out }, ch.bytes_out);
        }),
    );
    counter('tunsec_child_sa_packets_total', 'Packets through each CHILD_SA, by direction and the SPI of that direction.', childLabels, (c, s) =>
      eachChild(s, (ike, ch) => {
        c.inc({ connection: ike.name, child: ch.name, reqid: String(ch.reqid), direction: 'in', spi: ch.spi_in }, ch.packets_in);
        c.inc({ connection: ike.name, child: ch.name, reqid: String(ch.reqid), direction: 'out', spi: ch.spi_out }, ch.packets_out);
      }),
    );
    const inbound = (name: string, help: string, value: (ch: ListSasResult['ike_sas'][number]['children'][number]) => number): void =>
      counter(name, help, inboundLabels, (c, s) =>
        eachChild(s, (ike, ch) => c.inc({ connection: ike.name, child: ch.name, reqid: String(ch.reqid), spi: ch.spi_in }, value(ch))),
      );
    inbound(
      'tunsec_child_sa_replay_drops_total',
      'Inbound packets of each CHILD_SA dropped as replayed or too old for the replay window.',
      (ch) => ch.replay_drops,
    );
    inbound('tunsec_child_sa_icv_failures_total', 'Inbound packets of each CHILD_SA whose integrity check (ICV) failed.', (ch) => ch.icv_failures);
    inbound('tunsec_child_sa_bad_padding_total', 'Inbound packets of each CHILD_SA with invalid ESP padding.', (ch) => ch.bad_padding);
    inbound('tunsec_child_sa_policy_drops_total', 'Inbound packets of each CHILD_SA outside its traffic selectors.', (ch) => ch.policy_drops);

    // --- manual (static) SAs, as `tunsec sa list` shows them
    const manualLabels = ['sa', 'reqid', 'direction', 'spi'] as const;
    const manualInLabels = ['sa', 'reqid', 'spi'] as const;
    const manual = (s: MetricsSnapshot): readonly ManualSaCounters[] => s.sas.manual_sas ?? [];
    counter('tunsec_manual_sa_bytes_total', 'Octets through each manual SA pair, by direction and the SPI of that direction.', manualLabels, (c, s) => {
      for (const m of manual(s)) {
        c.inc({ sa: m.name, reqid: String(m.reqid), direction: 'in', spi: m.spi_in }, m.bytes_in);
        c.inc({ sa: m.name, reqid: String(m.reqid), direction: 'out', spi: m.spi_out }, m.bytes_out);
      }
    });
    counter('tunsec_manual_sa_packets_total', 'Packets through each manual SA pair, by direction and the SPI of that direction.', manualLabels, (c, s) => {
      for (const m of manual(s)) {
        c.inc({ sa: m.name, reqid: String(m.reqid), direction: 'in', spi: m.spi_in }, m.packets_in);
        c.inc({ sa: m.name, reqid: String(m.reqid), direction: 'out', spi: m.spi_out }, m.packets_out);
      }
    });
    counter('tunsec_manual_sa_replay_drops_total', 'Inbound packets of each manual SA dropped as replayed or too old.', manualInLabels, (c, s) => {
      for (const m of manual(s)) c.inc({ sa: m.name, reqid: String(m.reqid), spi: m.spi_in }, m.replay_drops);
    });
    counter(
      'tunsec_manual_sa_icv_failures_total',
      'Inbound packets of each manual SA whose integrity check (ICV) failed (a key mismatch shows here).',
      manualInLabels,
      (c, s) => {
        for (const m of manual(s)) c.inc({ sa: m.name, reqid: String(m.reqid), spi: m.spi_in }, m.icv_failures);
      },
    );

    // --- IKE manager
    for (const [key, m] of Object.entries(MANAGER_COUNTERS) as Array<[keyof ManagerCounters, { name: string; help: string }]>) {
      counter(m.name, m.help, [], (c, s) => c.inc(s.sas.manager?.[key] ?? 0));
    }

    // --- datapath
    const dp = (s: MetricsSnapshot): Partial<DatapathCounters> => s.sas.datapath?.counters ?? {};
    const entries = Object.entries(DATAPATH_COUNTERS) as Array<[keyof DatapathCounters, DatapathTarget]>;
    counter('tunsec_datapath_packets_total', 'Packets the datapath protected (out) and decrypted and accepted (in).', ['direction'], (c, s) => {
      for (const [k, t] of entries) if (t.metric === 'packets') c.inc({ direction: t.direction }, dp(s)[k] ?? 0);
    });
    counter('tunsec_datapath_bytes_total', 'Octets of the packets the datapath protected (out) and decrypted and accepted (in).', ['direction'], (c, s) => {
      for (const [k, t] of entries) if (t.metric === 'bytes') c.inc({ direction: t.direction }, dp(s)[k] ?? 0);
    });
    counter(
      'tunsec_datapath_dropped_packets_total',
      'Packets the datapath dropped, by direction and reason (every drop counter of the datapath).',
      ['direction', 'reason'],
      (c, s) => {
        for (const [k, t] of entries) if (t.metric === 'dropped') c.inc({ direction: t.direction, reason: t.reason }, dp(s)[k] ?? 0);
      },
    );
    counter(
      'tunsec_datapath_clear_packets_total',
      'Outbound packets passed in the clear on purpose: a bypass (pass) policy, or the global switch off with daemon.global: clear.',
      ['reason'],
      (c, s) => {
        for (const [k, t] of entries) if (t.metric === 'clear') c.inc({ reason: t.reason }, dp(s)[k] ?? 0);
      },
    );
    counter(
      'tunsec_cleartext_fallbacks_total',
      'Outbound packets of a private-or-clear policy sent in the clear because no SA was up (tunsec check is CRITICAL while this is above 0).',
      [],
      (c, s) => c.inc(dp(s).outFallbackClear ?? 0),
    );
    counter('tunsec_datapath_held_packets_total', 'Outbound packets held while an SA was negotiated.', [], (c, s) => c.inc(dp(s).outHeld ?? 0));
    counter(
      'tunsec_datapath_pending_spi_held_packets_total',
      'Inbound ESP packets held because they arrived for an SPI allocated for an exchange under way (opened once its SA was installed).',
      [],
      (c, s) => c.inc(dp(s).inHeldPendingSpi ?? 0),
    );
    counter('tunsec_datapath_acquires_total', 'Acquires: traffic hit a trap policy and asked IKE for an SA.', [], (c, s) => c.inc(dp(s).acquires ?? 0));
    for (const [key, m] of Object.entries(IO_COUNTERS) as Array<[keyof IoCounters, { name: string; help: string }]>) {
      counter(m.name, m.help, [], (c, s) => c.inc(s.sas.datapath?.io[key] ?? 0));
    }

    // --- daemon
    gauge(
      'tunsec_global_switch_state',
      'The global off switch: 1 for the state it is in (up, going-down, down, going-up), 0 for the others.',
      ['state'],
      (g, s) => {
        for (const state of GLOBAL_STATES) g.set({ state }, s.status.daemon.global.state === state ? 1 : 0);
      },
    );
    gauge('tunsec_daemon_start_time_seconds', 'When the daemon started, seconds since the epoch (0 before).', [], (g, s) => {
      g.set(s.status.daemon.started === null ? 0 : Date.parse(s.status.daemon.started) / 1000);
    });
    gauge('tunsec_control_clients', 'Clients connected to the control socket now.', [], (g, s) => g.set(s.status.daemon.control.clients));
    counter('tunsec_control_requests_total', 'Requests answered on the control socket.', [], (c, s) => c.inc(s.status.daemon.control.requests));
    counter('tunsec_control_refused_peers_total', 'Control socket connections refused because the peer is not root (SO_PEERCRED).', [], (c, s) =>
      c.inc(s.status.daemon.control.refused_peers ?? 0),
    );
    counter('tunsec_control_bad_requests_total', 'Control socket requests that were not understood.', [], (c, s) =>
      c.inc(s.status.daemon.control.bad_requests),
    );

    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: r });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** One scrape in the Prometheus text format, over a single snapshot. */
  metrics(): Promise<string> {
    try {
      this.scrape = this.source();
      // prom-client runs every collect callback synchronously within this call.
      return this.registry.metrics();
    } catch (err) {
      return Promise.reject(err as Error);
    } finally {
      this.scrape = undefined;
    }
  }
}

export interface MetricsServerOptions {
  listen: ListenAddress;
  log: DaemonLogger;
  source: MetricsSource;
  /** prom-client's process metrics (process_*, nodejs_*) in the same registry; default on. */
  defaultMetrics?: boolean;
}

/** `host:port`, with brackets for IPv6. */
export function formatListen(l: ListenAddress): string {
  return l.host.includes(':') ? `[${l.host}]:${l.port}` : `${l.host}:${l.port}`;
}

/** The HTTP listener of `/metrics`. */
export class MetricsServer {
  readonly metrics: TunsecMetrics;
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  /** Requests answered, by status code (for tests and logs). */
  readonly answered = new Map<number, number>();

  constructor(private readonly options: MetricsServerOptions) {
    this.metrics = new TunsecMetrics(options.source, { defaultMetrics: options.defaultMetrics ?? true });
  }

  get url(): string {
    const a = this.address;
    return `http://${formatListen(a ?? this.options.listen)}/metrics`;
  }

  /** The bound address (the port when 0 was asked for). */
  get address(): ListenAddress | undefined {
    const a = this.server?.address();
    return a && typeof a === 'object' ? { host: a.address, port: a.port } : undefined;
  }

  /** Listen; rejects with a message naming the address when it cannot be bound. */
  async start(): Promise<void> {
    const where = formatListen(this.options.listen);
    const server = createServer((req, res) => this.handle(req, res));
    server.headersTimeout = 10_000;
    server.requestTimeout = 15_000;
    server.keepAliveTimeout = 5_000;
    server.maxHeadersCount = 64;
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    server.on('clientError', (err, socket) => {
      this.options.log.log('daemon', 'debug', `metrics: bad HTTP request: ${err.message}`);
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      else socket.destroy();
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.options.listen.host, port: this.options.listen.port, exclusive: true }, () => {
        server.off('error', reject);
        resolve();
      });
    }).catch((err: NodeJS.ErrnoException) => {
      server.close();
      throw new Error(
        `cannot serve metrics on ${where} (daemon.metrics): ${err.code === 'EADDRINUSE' ? 'the address is in use' : err.code === 'EADDRNOTAVAIL' ? 'no such local address' : err.message}`,
      );
    });
    server.on('error', (err) => this.options.log.log('daemon', 'error', `metrics server on ${where}: ${err.message}`));
    this.server = server;
    this.options.log.log('daemon', 'info', `metrics served at ${this.url}`);
  }

  stop(): void {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.close();
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const reply = (code: number, body: string, headers: Record<string, string> = {}): void => {
      this.answered.set(code, (this.answered.get(code) ?? 0) + 1);
      res.writeHead(code, { 'Content-Type': 'text/plain; charset=utf-8', ...headers });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    try {
      res.on('error', (err) => this.options.log.log('daemon', 'debug', `metrics: response: ${err.message}`));
      const path = (req.url ?? '').split('?')[0];
      if (path !== '/metrics') return reply(404, 'not found: metrics are at /metrics\n');
      if (req.method !== 'GET' && req.method !== 'HEAD') return reply(405, 'method not allowed: GET /metrics\n', { Allow: 'GET, HEAD' });
      this.metrics.metrics().then(
        (text) => {
          if (!res.headersSent && !res.destroyed) reply(200, text, { 'Content-Type': this.metrics.contentType, 'Cache-Control': 'no-store' });
        },
        (err: Error) => {
          this.options.log.log('daemon', 'error', `metrics: collecting failed: ${err.stack ?? err.message}`);
          if (!res.headersSent && !res.destroyed) reply(500, `collecting metrics failed: ${err.message}\n`);
        },
      );
    } catch (err) {
      this.options.log.log('daemon', 'error', `metrics: internal error: ${(err as Error).stack ?? String(err)}`);
      if (!res.headersSent) reply(500, 'internal error\n');
      else res.destroy();
    }
  }
}
