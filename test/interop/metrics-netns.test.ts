/**
 * Metrics end to end: two `tunsec daemon` processes in their own network
 * namespaces, each serving `daemon.metrics: 127.0.0.1:9810` inside its
 * namespace, protect ICMP between them (transport mode). A ping of known size
 * must show up in both daemons' per-CHILD_SA byte and packet counters,
 * scraped over HTTP with curl inside the namespace.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCa } from '../../src/pki/issue.js';
import { NetnsPair, type NetnsSide } from '../support/netns.js';
import { requireRootAndPrograms } from '../support/proc.js';
import { peerCertificates, peerDaemon, type PeerName, type TunsecDaemon, startResponderThenInitiator } from './tunsec-daemon.js';

requireRootAndPrograms('tunsec metrics', ['ip', 'ping', 'curl']);

const ca = createCa({ subject: 'C=CH, O=tunsec metrics, CN=tunsec Metrics Root CA', key: 'p384' });
const METRICS_URL = 'http://127.0.0.1:9810/metrics';

/** The Prometheus text format: samples, and the TYPE of each metric. */
function parseExposition(text: string): { samples: Array<{ name: string; labels: Record<string, string>; value: number }>; type: Map<string, string> } {
  const samples: Array<{ name: string; labels: Record<string, string>; value: number }> = [];
  const type = new Map<string, string>();
  for (const line of text.split('\n')) {
    const t = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (t) type.set(t[1]!, t[2]!);
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return { samples, type };
}

describe('tunsec metrics scraped over HTTP in a network namespace', () => {
  let pair: NetnsPair;
  let moon: TunsecDaemon;
  let sun: TunsecDaemon;

  beforeAll(async () => {
    pair = await NetnsPair.create('mx');
    const certs = peerCertificates(ca, pair, 'tunsec metrics');
    const daemon = (name: PeerName): TunsecDaemon =>
      peerDaemon(pair, ca, certs, name, {
        name: 'host-host',
        mode: 'transport',
        startAction: name === 'moon' ? 'start' : 'none',
        // Only ICMP is protected: nothing but the test's ping is counted on the CHILD_SA.
        localTs: 'dynamic[icmp]',
        remoteTs: 'dynamic[icmp]',
        daemonExtra: ['metrics: 127.0.0.1:9810'],
      });
    sun = daemon('sun');
    moon = daemon('moon');
    await startResponderThenInitiator(sun, moon);
  }, 60_000);

  afterAll(async () => {
    await moon?.stop();
    await sun?.stop();
    await pair?.destroy();
  });

  async function scrape(side: NetnsSide, url = METRICS_URL): Promise<{ code: number; body: string }> {
    const r = await pair.exec(side, 'curl', ['-sS', '--max-time', '5', '-o', '-', '-w', '\n%{http_code}', url], 10_000);
    expect(r.code, `curl in ${side.ns}: ${r.stderr}`).toBe(0);
    const nl = r.stdout.lastIndexOf('\n');
    return { code: Number(r.stdout.slice(nl + 1)), body: r.stdout.slice(0, nl) };
  }

  async function childSa(
    side: NetnsSide,
  ): Promise<{ bytes: Record<'in' | 'out', number>; packets: Record<'in' | 'out', number>; spi: Record<'in' | 'out', string>; state: number }> {
    const r = await scrape(side);
    expect(r.code).toBe(200);
    const e = parseExposition(r.body);
    const of = (name: string, direction: 'in' | 'out') => {
      const hits = e.samples.filter(
        (s) => s.name === name && s.labels.connection === 'host-host' && s.labels.child === 'host-host' && s.labels.direction === direction,
      );
      expect(hits, `${name}{direction="${direction}"} in ${side.ns}:\n${r.body}`).toHaveLength(1);
      return hits[0]!;
    };
    const state = e.samples.find((s) => s.name === 'tunsec_connection_state' && s.labels.connection === 'host-host')?.value ?? -1;
    return {
      bytes: { in: of('tunsec_child_sa_bytes_total', 'in').value, out: of('tunsec_child_sa_bytes_total', 'out').value },
      packets: { in: of('tunsec_child_sa_packets_total', 'in').value, out: of('tunsec_child_sa_packets_total', 'out').value },
      spi: { in: of('tunsec_child_sa_bytes_total', 'in').labels.spi!, out: of('tunsec_child_sa_bytes_total', 'out').labels.spi! },
      state,
    };
  }

  it('both daemons report the connection established and one CHILD_SA whose SPIs pair up, with nothing counted yet', async () => {
    const [m, s] = [await childSa(pair.a), await childSa(pair.b)];
    expect(m.state).toBe(2);
    expect(s.state).toBe(2);
    expect(m.spi.out).toBe(s.spi.in);
    expect(m.spi.in).toBe(s.spi.out);
    expect([m.bytes, s.bytes]).toEqual([
      { in: 0, out: 0 },
      { in: 0, out: 0 },
    ]);
  });

  it('after ping -c 3 -s 56 each side counts 3 packets of 64 protected octets each way on its CHILD_SA (transport mode: the ICMP message, as XFRM counts)', async () => {
    const ping = await pair.exec(pair.a, 'ping', ['-c', '3', '-s', '56', '-i', '0.2', '-W', '2', pair.b.ip4], 20_000);
    expect(ping.code, `${ping.stdout}\n${ping.stderr}\nmoon:\n${moon.text()}`).toBe(0);
    const [m, s] = [await childSa(pair.a), await childSa(pair.b)];
    const icmp = 8 + 56; // echo header + data; the IPv4 header in front of ESP is not protected, not counted
    expect({ moon: { bytes: m.bytes, packets: m.packets }, sun: { bytes: s.bytes, packets: s.packets } }).toEqual({
      moon: { bytes: { in: 3 * icmp, out: 3 * icmp }, packets: { in: 3, out: 3 } },
      sun: { bytes: { in: 3 * icmp, out: 3 * icmp }, packets: { in: 3, out: 3 } },
    });
  });

  it('the datapath totals, the IKE SA count and the process metrics are served too, and no packet fell back to the clear', async () => {
    const r = await scrape(pair.a);
    const e = parseExposition(r.body);
    const one = (name: string, labels: Record<string, string> = {}): number => {
      const hits = e.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
      expect(hits, `${name}${JSON.stringify(labels)}`).toHaveLength(1);
      return hits[0]!.value;
    };
    expect(one('tunsec_datapath_packets_total', { direction: 'out' })).toBeGreaterThanOrEqual(3);
    expect(one('tunsec_datapath_packets_total', { direction: 'in' })).toBeGreaterThanOrEqual(3);
    expect(one('tunsec_ike_sas', { connection: 'host-host', state: 'established' })).toBe(1);
    expect(one('tunsec_child_sas', { connection: 'host-host' })).toBe(1);
    expect(one('tunsec_cleartext_fallbacks_total')).toBe(0);
    expect(one('tunsec_datapath_dropped_packets_total', { direction: 'in', reason: 'icv_failure' })).toBe(0);
    expect(one('tunsec_global_switch_state', { state: 'up' })).toBe(1);
    expect(e.type.get('process_resident_memory_bytes')).toBe('gauge');
  });

  it('another path is answered 404, and the endpoint is not reachable from the other namespace', async () => {
    expect((await scrape(pair.a, 'http://127.0.0.1:9810/')).code).toBe(404);
    const remote = await pair.exec(pair.b, 'curl', ['-sS', '--max-time', '3', `http://${pair.a.ip4}:9810/metrics`], 10_000);
    expect(remote.code).not.toBe(0);
  });
});
