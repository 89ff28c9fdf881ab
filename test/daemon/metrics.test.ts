import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Daemon, DaemonStartError } from '../../src/daemon/daemon.js';
import { DaemonLogger } from '../../src/daemon/logger.js';
import { MetricsServer, TunsecMetrics, type MetricsSnapshot } from '../../src/daemon/metrics.js';
import type { ChildSaInfo, IkeSaInfo } from '../../src/control/protocol.js';
import type { DatapathCounters } from '../../src/esp/engine.js';
import type { IoCounters } from '../../src/esp/io.js';
import { freePort, tempDir, writeLoopbackConfig, writePki, type LogLine, type PkiFiles } from './support.js';

// ---------------------------------------------------------------------------
// The Prometheus text format, parsed back.

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

interface Exposition {
  samples: Sample[];
  help: Map<string, string>;
  type: Map<string, string>;
}

function parseExposition(text: string): Exposition {
  const samples: Sample[] = [];
  const help = new Map<string, string>();
  const type = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (meta) {
      (meta[1] === 'HELP' ? help : type).set(meta[2]!, meta[3]!);
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, '$1');
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return { samples, help, type };
}

/** The value of the one sample of `name` whose labels include `labels`. */
function value(e: Exposition, name: string, labels: Record<string, string> = {}): number {
  const hits = e.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (hits.length !== 1) throw new Error(`${hits.length} samples of ${name}${JSON.stringify(labels)}: ${JSON.stringify(hits)}`);
  return hits[0]!.value;
}

// ---------------------------------------------------------------------------
// In-process data.

const DATAPATH_KEYS: Array<keyof DatapathCounters> = [
  'outPackets',
  'outBytes',
  'inPackets',
  'inBytes',
  'outMalformed',
  'outNoPolicy',
  'outBypass',
  'outDiscard',
  'outHeld',
  'outHoldOverflow',
  'outNoSa',
  'outFallbackClear',
  'outGlobalClear',
  'outGlobalDrop',
  'acquires',
  'inMalformed',
  'inUnknownSpi',
  'inHeldPendingSpi',
  'inHeldPendingSpiDropped',
  'inReplay',
  'inIcv',
  'inPadding',
  'inDummy',
  'inPolicy',
  'expiredDrops',
  'inRouteWaitOverflow',
];
const IO_KEYS: Array<keyof IoCounters> = [
  'tunReads',
  'tunWrites',
  'tunWriteDrops',
  'espReceived',
  'udpReceived',
  'sendDrops',
  'clearSent',
  'internalErrors',
  'tunGsoPackets',
  'tunGsoRefused',
  'tunGroWrites',
  'tunGroSegments',
  'udpGsoSends',
  'udpGsoPackets',
  'udpGsoRefused',
  'udpGroDatagrams',
  'udpGroSegments',
  'udpGroRefused',
  'sealFailures',
];

function child(o: Partial<ChildSaInfo> = {}): ChildSaInfo {
  return {
    name: 'host',
    reqid: 1,
    mode: 'transport',
    encap: false,
    proposal: 'aes128gcm16-ecp384bp',
    spi_in: 'c1000001',
    spi_out: 'c2000001',
    local_ts: ['10.0.0.1/32'],
    remote_ts: ['10.0.0.2/32'],
    installed: new Date().toISOString(),
    installed_age: 5,
    bytes_in: 252,
    packets_in: 3,
    bytes_out: 336,
    packets_out: 4,
    last_in: 1,
    last_out: 1,
    replay_window: 32,
    replay_drops: 2,
    icv_failures: 7,
    bad_padding: 0,
    policy_drops: 1,
    ...o,
  };
}

function ikeSa(o: Partial<IkeSaInfo> = {}): IkeSaInfo {
  return {
    name: 'dc1',
    instance: null,
    spi_i: '0102030405060708',
    spi_r: '1112131415161718',
    initiator: true,
    state: 'established',
    local: { address: '10.0.0.1', port: 500 },
    remote: { address: '10.0.0.2', port: 500 },
    local_id: 'moon',
    remote_id: 'sun',
    local_auth: 'pubkey',
    remote_auth: 'pubkey',
    proposal: 'aes128gcm16-prfsha384-ecp384bp',
    established: new Date().toISOString(),
    established_age: 5,
    nat_local: false,
    nat_remote: false,
    children: [child()],
    ...o,
  };
}

/** Two connections: dc1 established with one CHILD_SA, dc2 connecting; every datapath and I/O counter distinct. */
function snapshot(o: { datapath?: boolean; children?: ChildSaInfo[] } = {}): MetricsSnapshot {
  const now = new Date().toISOString();
  const counters = Object.fromEntries(DATAPATH_KEYS.map((k, i) => [k, 1000 + i])) as unknown as DatapathCounters;
  const io = Object.fromEntries(IO_KEYS.map((k, i) => [k, 2000 + i])) as unknown as IoCounters;
  const conn = (name: string, state: 'established' | 'connecting' | 'not connected', ike: number, children: number) => ({
    name,
    state,
    since: now,
    age: 42,
    peer: '10.0.0.2',
    local_id: 'moon',
    remote_id: 'sun',
    ike_sas: ike,
    children,
    failed_children: [],
    start_action: 'start' as const,
  });
  return {
    status: {
      daemon: {
        pid: 1,
        state: 'running',
        started: '2026-01-01T00:00:00.000Z',
        uptime: 10,
        control_socket: null,
        datapath: 'userspace',
        global: { state: 'down', mode: 'drop', since: now, age: 1 },
        control: { clients: 1, connections: 3, requests: 9, bad_requests: 2, rejected_clients: 0 },
      },
      connections: [conn('dc1', 'established', 1, 1), conn('dc2', 'connecting', 1, 0), conn('dc3', 'not connected', 0, 0)],
    },
    sas: {
      ike_sas: [ikeSa({ children: o.children ?? [child()] }), ikeSa({ name: 'dc2', state: 'connecting', children: [], spi_i: 'aa', spi_r: '00' })],
      datapath:
        o.datapath === false
          ? null
          : { tun: 'tunsec0', counters, io, traps: [], backstop: { table: 221, rules: 0, routes: 0, lifted: false }, global_off: 'drop' },
      manager: {
        malformed: 11,
        unknownSpi: 12,
        noConnection: 13,
        cookiesSent: 14,
        cookiesRejected: 15,
        internalErrors: 16,
        invalidSpiSent: 17,
        halfOpenLimitDrops: 18,
        peerHalfOpenDrops: 19,
        initRateDrops: 20,
        authRateDrops: 21,
        halfOpenTimeouts: 22,
        dpdChecks: 23,
        deadPeers: 24,
        drainingDrops: 25,
        authFailures: 26,
        nullAuthRefused: 27,
        cryptoWorkerFailures: 28,
        half_open: 3,
      },
    },
  };
}

async function scrape(source: () => MetricsSnapshot): Promise<Exposition> {
  return parseExposition(await new TunsecMetrics(source, { defaultMetrics: false }).metrics());
}

describe('tunsec metrics from a snapshot', () => {
  it('connection state is 2 for established, 1 for connecting and 0 for not connected', async () => {
    const e = await scrape(() => snapshot());
    expect(value(e, 'tunsec_connection_state', { connection: 'dc1' })).toBe(2);
    expect(value(e, 'tunsec_connection_state', { connection: 'dc2' })).toBe(1);
    expect(value(e, 'tunsec_connection_state', { connection: 'dc3' })).toBe(0);
    expect(value(e, 'tunsec_connection_state_age_seconds', { connection: 'dc1' })).toBe(42);
  });

  it('IKE SAs are counted per connection and state, with zeros for the states a connection has none in, and half-open SAs on their own', async () => {
    const e = await scrape(() => snapshot());
    expect(value(e, 'tunsec_ike_sas', { connection: 'dc1', state: 'established' })).toBe(1);
    expect(value(e, 'tunsec_ike_sas', { connection: 'dc1', state: 'connecting' })).toBe(0);
    expect(value(e, 'tunsec_ike_sas', { connection: 'dc2', state: 'connecting' })).toBe(1);
    expect(value(e, 'tunsec_ike_sas', { connection: 'dc3', state: 'established' })).toBe(0);
    expect(value(e, 'tunsec_ike_sas_half_open')).toBe(3);
    expect(value(e, 'tunsec_child_sas', { connection: 'dc1' })).toBe(1);
    expect(value(e, 'tunsec_child_sas', { connection: 'dc2' })).toBe(0);
  });

  it('each CHILD_SA has bytes and packets in and out, labelled with connection, child, reqid, direction and SPI', async () => {
    const e = await scrape(() => snapshot());
    const sa = { connection: 'dc1', child: 'host', reqid: '1' };
    expect(value(e, 'tunsec_child_sa_bytes_total', { ...sa, direction: 'in', spi: 'c1000001' })).toBe(252);
    expect(value(e, 'tunsec_child_sa_bytes_total', { ...sa, direction: 'out', spi: 'c2000001' })).toBe(336);
    expect(value(e, 'tunsec_child_sa_packets_total', { ...sa, direction: 'in' })).toBe(3);
    expect(value(e, 'tunsec_child_sa_packets_total', { ...sa, direction: 'out' })).toBe(4);
    expect(value(e, 'tunsec_child_sa_replay_drops_total', { ...sa, spi: 'c1000001' })).toBe(2);
    expect(value(e, 'tunsec_child_sa_icv_failures_total', sa)).toBe(7);
    expect(value(e, 'tunsec_child_sa_policy_drops_total', sa)).toBe(1);
    expect(e.type.get('tunsec_child_sa_bytes_total')).toBe('counter');
  });

  it('a CHILD_SA that is gone disappears from the next scrape, and its replacement appears', async () => {
    let children = [child()];
    const metrics = new TunsecMetrics(() => snapshot({ children }), { defaultMetrics: false });
    const first = parseExposition(await metrics.metrics());
    expect(first.samples.filter((s) => s.name === 'tunsec_child_sa_bytes_total').map((s) => s.labels.spi)).toEqual(['c1000001', 'c2000001']);
    children = [child({ spi_in: 'c1000002', spi_out: 'c2000002', bytes_in: 0, bytes_out: 0 })];
    const second = parseExposition(await metrics.metrics());
    expect(second.samples.filter((s) => s.name === 'tunsec_child_sa_bytes_total').map((s) => [s.labels.spi, s.value])).toEqual([
      ['c1000002', 0],
      ['c2000002', 0],
    ]);
  });

  it('manual SAs have their own bytes, packets, replay and ICV counters, and none are exported without manual SAs', async () => {
    const manual = {
      name: 'static1',
      reqid: 9,
      spi_in: '00001001',
      spi_out: '00001002',
      bytes_in: 0,
      packets_in: 0,
      bytes_out: 840,
      packets_out: 10,
      replay_drops: 0,
      icv_failures: 10,
    };
    const base = snapshot();
    const e = await scrape(() => ({ ...base, sas: { ...base.sas, manual_sas: [manual] } }) as MetricsSnapshot);
    expect(value(e, 'tunsec_manual_sa_bytes_total', { sa: 'static1', reqid: '9', direction: 'out', spi: '00001002' })).toBe(840);
    expect(value(e, 'tunsec_manual_sa_packets_total', { sa: 'static1', direction: 'out' })).toBe(10);
    expect(value(e, 'tunsec_manual_sa_icv_failures_total', { sa: 'static1', spi: '00001001' })).toBe(10);
    const none = await scrape(() => snapshot());
    expect(none.samples.filter((x) => x.name.startsWith('tunsec_manual_sa_'))).toEqual([]);
  });

  it('every datapath and I/O counter is exported exactly once, drops by direction and reason, cleartext fallbacks as their own metric', async () => {
    const e = await scrape(() => snapshot());
    const tunsec = e.samples.filter(
      (s) => s.name.startsWith('tunsec_datapath_') || s.name.startsWith('tunsec_io_') || s.name === 'tunsec_cleartext_fallbacks_total',
    );
    const seen = tunsec.map((s) => s.value).sort((a, b) => a - b);
    expect(seen).toEqual([...DATAPATH_KEYS.map((_k, i) => 1000 + i), ...IO_KEYS.map((_k, i) => 2000 + i)]);
    const at = (k: keyof DatapathCounters): number => 1000 + DATAPATH_KEYS.indexOf(k);
    expect(value(e, 'tunsec_cleartext_fallbacks_total')).toBe(at('outFallbackClear'));
    expect(value(e, 'tunsec_datapath_dropped_packets_total', { direction: 'in', reason: 'icv_failure' })).toBe(at('inIcv'));
    expect(value(e, 'tunsec_datapath_dropped_packets_total', { direction: 'in', reason: 'replay' })).toBe(at('inReplay'));
    expect(value(e, 'tunsec_datapath_dropped_packets_total', { direction: 'out', reason: 'no_policy' })).toBe(at('outNoPolicy'));
    expect(value(e, 'tunsec_datapath_dropped_packets_total', { direction: 'out', reason: 'global_off' })).toBe(at('outGlobalDrop'));
    expect(value(e, 'tunsec_datapath_clear_packets_total', { reason: 'global_off' })).toBe(at('outGlobalClear'));
    expect(value(e, 'tunsec_datapath_bytes_total', { direction: 'out' })).toBe(at('outBytes'));
    expect(value(e, 'tunsec_io_send_drops_total')).toBe(2000 + IO_KEYS.indexOf('sendDrops'));
  });

  it('with datapath none the datapath counters read 0 and no labelled drop series is missing', async () => {
    const e = await scrape(() => snapshot({ datapath: false }));
    expect(value(e, 'tunsec_cleartext_fallbacks_total')).toBe(0);
    expect(value(e, 'tunsec_datapath_dropped_packets_total', { direction: 'in', reason: 'icv_failure' })).toBe(0);
    expect(value(e, 'tunsec_io_tun_read_packets_total')).toBe(0);
  });

  it('the IKE manager counters, the global switch and the control socket are exported', async () => {
    const e = await scrape(() => snapshot());
    expect(value(e, 'tunsec_ike_malformed_messages_total')).toBe(11);
    expect(value(e, 'tunsec_ike_dpd_checks_total')).toBe(23);
    expect(value(e, 'tunsec_ike_dead_peers_total')).toBe(24);
    expect(value(e, 'tunsec_ike_shutdown_drops_total')).toBe(25);
    expect(value(e, 'tunsec_ike_auth_failures_total')).toBe(26);
    expect(value(e, 'tunsec_ike_null_auth_refused_total')).toBe(27);
    expect(value(e, 'tunsec_ike_unknown_spi_messages_total')).toBe(12);
    expect(value(e, 'tunsec_ike_no_connection_total')).toBe(13);
    expect(value(e, 'tunsec_ike_cookies_sent_total')).toBe(14);
    expect(value(e, 'tunsec_ike_cookies_rejected_total')).toBe(15);
    expect(value(e, 'tunsec_ike_internal_errors_total')).toBe(16);
    expect(value(e, 'tunsec_ike_invalid_spi_notifies_sent_total')).toBe(17);
    expect(value(e, 'tunsec_global_switch_state', { state: 'down' })).toBe(1);
    expect(value(e, 'tunsec_global_switch_state', { state: 'up' })).toBe(0);
    expect(value(e, 'tunsec_daemon_start_time_seconds')).toBe(Date.parse('2026-01-01T00:00:00.000Z') / 1000);
    expect(value(e, 'tunsec_control_requests_total')).toBe(9);
    expect(value(e, 'tunsec_control_bad_requests_total')).toBe(2);
  });

  it('every tunsec metric has a HELP text and a type', async () => {
    const e = await scrape(() => snapshot());
    const names = [...e.type.keys()];
    expect(names.length).toBeGreaterThan(30);
    for (const name of names) {
      expect(name).toMatch(/^tunsec_[a-z0-9_]+$/);
      expect(e.help.get(name)?.length ?? 0, `HELP of ${name}`).toBeGreaterThan(10);
      if (e.type.get(name) === 'counter') expect(name).toMatch(/_total$/);
    }
  });

  it('one scrape gathers the daemon state once, not once per metric', async () => {
    let calls = 0;
    const metrics = new TunsecMetrics(() => (calls++, snapshot()), { defaultMetrics: false });
    await metrics.metrics();
    expect(calls).toBe(1);
  });
});

// ---------------------------------------------------------------------------
// Over HTTP.

function quietLogger(lines: LogLine[] = []): DaemonLogger {
  return new DaemonLogger({ json: true, write: (line) => lines.push(JSON.parse(line) as LogLine) });
}

async function freeTcpPort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

describe('the metrics HTTP endpoint', () => {
  const servers: MetricsServer[] = [];
  afterEach(() => {
    for (const s of servers.splice(0)) s.stop();
  });

  async function serve(source: () => MetricsSnapshot, lines: LogLine[] = []): Promise<MetricsServer> {
    const s = new MetricsServer({ listen: { host: '127.0.0.1', port: 0 }, log: quietLogger(lines), source });
    servers.push(s);
    await s.start();
    return s;
  }

  it('serves the text format at /metrics, with the process metrics of a private registry', async () => {
    const s = await serve(() => snapshot());
    const res = await fetch(s.url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const e = parseExposition(await res.text());
    expect(value(e, 'tunsec_connection_state', { connection: 'dc1' })).toBe(2);
    expect(e.type.get('process_cpu_user_seconds_total')).toBe('counter');
    const query = await fetch(`${s.url}?name[]=x`);
    expect(query.status).toBe(200);
    await query.text();
  });

  it('answers 404 for any other path and 405 for another method on /metrics', async () => {
    const s = await serve(() => snapshot());
    const base = s.url.replace(/\/metrics$/, '');
    for (const path of ['/', '/metricsx', '/metrics/', '/favicon.ico']) {
      const res = await fetch(base + path);
      expect(res.status, path).toBe(404);
      await res.text();
    }
    const post = await fetch(s.url, { method: 'POST', body: 'x' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });

  it('a failing collection is answered 500 and logged, and the next scrape works', async () => {
    let fail = true;
    const lines: LogLine[] = [];
    const s = await serve(() => {
      if (fail) throw new Error('boom');
      return snapshot();
    }, lines);
    const bad = await fetch(s.url);
    expect(bad.status).toBe(500);
    expect(await bad.text()).toContain('boom');
    expect(lines.some((l) => l.level === 'error' && l.msg.includes('boom'))).toBe(true);
    fail = false;
    const good = await fetch(s.url);
    expect(good.status).toBe(200);
    await good.text();
  });

  it('a malformed HTTP request is refused without harming the server', async () => {
    const s = await serve(() => snapshot());
    const { host, port } = s.address!;
    const { createConnection } = await import('node:net');
    const reply = await new Promise<string>((resolve) => {
      const c = createConnection({ host, port }, () => c.write('NOT HTTP AT ALL\r\n\r\n'));
      let buf = '';
      c.on('data', (d) => (buf += d.toString()));
      c.on('close', () => resolve(buf));
      c.on('error', () => resolve(buf));
    });
    expect(reply).toMatch(/^HTTP\/1\.1 400/);
    const res = await fetch(s.url);
    expect(res.status).toBe(200);
    await res.text();
  });

  it('an address in use is a start error naming the address', async () => {
    const port = await freeTcpPort();
    const blocker = createServer().listen(port, '127.0.0.1');
    await new Promise((r) => blocker.once('listening', r));
    try {
      const s = new MetricsServer({ listen: { host: '127.0.0.1', port }, log: quietLogger(), source: () => snapshot(), defaultMetrics: false });
      await expect(s.start()).rejects.toThrow(`cannot serve metrics on 127.0.0.1:${port} (daemon.metrics): the address is in use`);
    } finally {
      blocker.close();
    }
  });
});

// ---------------------------------------------------------------------------
// In a daemon.

function daemonConfig(
  dir: string,
  pki: PkiFiles,
  o: { name: string; local: string; remote: string; localPort: number; remotePort: number; start: boolean; metrics: string },
): string {
  return writeLoopbackConfig(dir, pki, { ...o, daemonExtra: [`metrics: ${o.metrics}`] });
}

describe('a tunsec daemon with daemon.metrics', () => {
  const daemons: Daemon[] = [];
  const dirs: Array<ReturnType<typeof tempDir>> = [];
  afterEach(async () => {
    await Promise.all(daemons.splice(0).map((d) => d.stop('test over')));
    for (const d of dirs.splice(0)) d.remove();
  });

  it('serves the state of its connections and SAs while running, and closes the port when stopped', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const pki = writePki(dir.path);
    const sunPort = await freePort(['127.0.0.1']);
    const sunNatt = await freePort(['127.0.0.1'], [sunPort]);
    const moonPort = await freePort(['127.0.0.2'], [sunPort, sunNatt]);
    const moonNatt = await freePort(['127.0.0.2'], [sunPort, sunNatt, moonPort]);
    const metricsPort = await freeTcpPort();
    const sunLines: LogLine[] = [];
    const sun = new Daemon({ logger: quietLogger(sunLines), nattPort: sunNatt });
    const moon = new Daemon({ logger: quietLogger(), nattPort: moonNatt });
    daemons.push(sun, moon);
    await sun.start(
      daemonConfig(dir.path, pki, {
        name: 'sun',
        local: '127.0.0.1',
        remote: '127.0.0.2',
        localPort: sunPort,
        remotePort: moonPort,
        start: false,
        metrics: `127.0.0.1:${metricsPort}`,
      }),
    );
    const url = `http://127.0.0.1:${metricsPort}/metrics`;
    const before = parseExposition(await (await fetch(url)).text());
    expect(value(before, 'tunsec_connection_state', { connection: 'sun' })).toBe(0);
    expect(value(before, 'tunsec_global_switch_state', { state: 'up' })).toBe(1);

    await moon.start(
      daemonConfig(dir.path, pki, {
        name: 'moon',
        local: '127.0.0.2',
        remote: '127.0.0.1',
        localPort: moonPort,
        remotePort: sunPort,
        start: true,
        metrics: `127.0.0.2:${metricsPort}`,
      }),
    );
    const deadline = Date.now() + 10_000;
    let e = before;
    while (Date.now() < deadline) {
      e = parseExposition(await (await fetch(url)).text());
      if (value(e, 'tunsec_child_sas', { connection: 'sun' }) === 1) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(value(e, 'tunsec_connection_state', { connection: 'sun' })).toBe(2);
    expect(value(e, 'tunsec_ike_sas', { connection: 'sun', state: 'established' })).toBe(1);
    expect(value(e, 'tunsec_child_sas', { connection: 'sun' })).toBe(1);
    expect(value(e, 'tunsec_child_sa_bytes_total', { connection: 'sun', child: 'host', direction: 'in' })).toBe(0);
    expect(sunLines.some((l) => l.msg === `metrics served at ${url}`)).toBe(true);

    await sun.stop('test over');
    await expect(fetch(url)).rejects.toThrow();
  });

  it('does not start when the metrics address is in use, and says which address', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const pki = writePki(dir.path);
    const port = await freePort(['127.0.0.1']);
    const natt = await freePort(['127.0.0.1'], [port]);
    const metricsPort = await freeTcpPort();
    const blocker = createServer().listen(metricsPort, '127.0.0.1');
    await new Promise((r) => blocker.once('listening', r));
    try {
      const d = new Daemon({ logger: quietLogger(), nattPort: natt });
      daemons.push(d);
      const err = await d
        .start(
          daemonConfig(dir.path, pki, {
            name: 'sun',
            local: '127.0.0.1',
            remote: '127.0.0.2',
            localPort: port,
            remotePort: port,
            start: false,
            metrics: `127.0.0.1:${metricsPort}`,
          }),
        )
        .then(
          () => undefined,
          (x: unknown) => x,
        );
      expect(err).toBeInstanceOf(DaemonStartError);
      expect((err as Error).message).toBe(`cannot serve metrics on 127.0.0.1:${metricsPort} (daemon.metrics): the address is in use`);
      expect(d.phase).toBe('stopped');
    } finally {
      blocker.close();
    }
  });
});
