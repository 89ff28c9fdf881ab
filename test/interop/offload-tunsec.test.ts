/**
 * TUN offloads end to end: two `tunsec daemon` processes in their own network namespaces carry an
 * iperf3 TCP transfer, transport mode over raw ESP and tunnel mode over ESP-in-UDP, with
 * `daemon.offload: on` and `off`. With offloads on, the sender's kernel hands tunsec TSO
 * super-packets (split before sealing) and the receiver writes coalesced GRO super-packets; the
 * veth still carries one ESP packet per segment, and the datapath's packet and byte counters count
 * segments exactly as with offloads off.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCa } from '../../src/pki/issue.js';
import { NetnsPair, type NetnsSide } from '../support/netns.js';
import { scrapeMetrics } from '../support/metrics.js';
import { pidFromFile, requireRootAndPrograms, stopPid } from '../support/proc.js';
import { Capture } from '../support/capture.js';
import { peerCertificates, peerDaemon, type PeerName, type TunsecDaemon, startResponderThenInitiator } from './tunsec-daemon.js';

requireRootAndPrograms('tunsec TUN offloads', ['ip', 'iperf3', 'curl', 'tcpdump']);

const ca = createCa({ subject: 'C=CH, O=tunsec offload, CN=tunsec Offload Root CA', key: 'p384' });
const TUN_MTU = 1400;
const METRICS_URL = 'http://127.0.0.1:9810/metrics';

describe.each([
  ['on', 'transport', 'ip4'],
  ['off', 'transport', 'ip4'],
  ['on', 'transport', 'ip6'],
  ['on', 'tunnel', 'ip4'],
  ['off', 'tunnel', 'ip4'],
  ['on', 'tunnel', 'ip6'],
] as const)('iperf3 TCP through tunsec ↔ tunsec with offload: %s (%s mode, %s)', (offload, mode, fam) => {
  let pair: NetnsPair;
  let moon: TunsecDaemon;
  let sun: TunsecDaemon;
  // tunnel mode: inner networks on lo behind each side, protected between each other (ESP-in-UDP)
  const inner = { moon: { ip4: '192.168.81.1', ip6: 'fd81::1' }, sun: { ip4: '192.168.82.1', ip6: 'fd82::1' } };

  beforeAll(async () => {
    pair = await NetnsPair.create('of');
    const certs = peerCertificates(ca, pair, 'tunsec offload');
    if (mode === 'tunnel') {
      for (const [side, addrs] of [
        [pair.a, inner.moon],
        [pair.b, inner.sun],
      ] as const) {
        await pair.exec(side, 'ip', ['addr', 'add', `${addrs.ip4}/24`, 'dev', 'lo']);
        await pair.exec(side, 'ip', ['-6', 'addr', 'add', `${addrs.ip6}/64`, 'dev', 'lo']);
        // ESP-in-UDP leaves as UDP GSO datagrams; a veth would carry them whole to the other side
        // (a NIC cuts them on the wire): let the sender's stack cut them, so the capture sees datagrams.
        const k = await pair.exec(side, 'ethtool', ['-K', side.ifname, 'tx-udp-segmentation', 'off']);
        expect(k.code, k.stderr).toBe(0);
      }
    }
    const daemon = (name: PeerName): TunsecDaemon => {
      const [mine, theirs] = name === 'moon' ? ['81', '82'] : ['82', '81'];
      return peerDaemon(pair, ca, certs, name, {
        name: 'offload',
        mode,
        encap: mode === 'tunnel',
        startAction: name === 'moon' ? 'start' : 'none',
        ...(mode === 'transport'
          ? { family: fam, localTs: 'dynamic[tcp]', remoteTs: 'dynamic[tcp]' }
          : { localTs: `192.168.${mine}.0/24,fd${mine}::/64`, remoteTs: `192.168.${theirs}.0/24,fd${theirs}::/64` }),
        daemonExtra: [`offload: ${offload}`, `tun_mtu: ${TUN_MTU}`, 'metrics: 127.0.0.1:9810'],
      });
    };
    sun = daemon('sun');
    moon = daemon('moon');
    await startResponderThenInitiator(sun, moon);
  }, 60_000);

  afterAll(async () => {
    await moon?.stop();
    await sun?.stop();
    await pair?.destroy();
  });

  const metrics = (side: NetnsSide): Promise<Map<string, number>> => scrapeMetrics(pair, side, METRICS_URL);

  it('the transfer succeeds, every segment is its own ESP packet on the wire, and the counters count segments', async () => {
    const espFilter =
      mode === 'tunnel' ? ['-c', '300', 'udp', 'port', '4500', 'and', 'greater', '1000'] : ['-c', '300', 'esp', 'or', '(', 'ip6', 'proto', '50', ')'];
    const esp = await Capture.start(pair.b.ns, pair.b.ifname, espFilter);
    const [from, to] = mode === 'tunnel' ? [inner.moon[fam], inner.sun[fam]] : [pair.a[fam], pair.b[fam]];
    try {
      const pidFile = `/tmp/iperf3-${pair.b.ns}.pid`;
      const server = await pair.exec(pair.b, 'iperf3', ['-s', '-D', '-1', '-p', '5201', '-I', pidFile]);
      expect(server.code).toBe(0);
      await new Promise((r) => setTimeout(r, 300));
      const client = await pair.exec(pair.a, 'iperf3', ['-c', to, '-B', from, '-p', '5201', '-t', '2', '-J'], 30_000);
      const serverPid = pidFromFile(pidFile);
      if (serverPid !== undefined) await stopPid(serverPid);
      expect(client.code, `${client.stdout}\n${client.stderr}\nmoon:\n${moon.text()}\nsun:\n${sun.text()}`).toBe(0);
      const result = JSON.parse(client.stdout) as { end: { sum_received: { bytes: number } } };
      expect(result.end.sum_received.bytes).toBeGreaterThan(1_000_000);

      // On the veth: full-sized ESP packets, none larger than the link MTU (no super-packet was sealed whole).
      const wire = await esp.stop();
      expect(wire.length).toBeGreaterThan(0);
      expect(Math.max(...wire.map((p) => p.ip.length))).toBeLessThanOrEqual(1500);

      const m = await metrics(pair.a);
      const s = await metrics(pair.b);
      const outPackets = m.get('tunsec_datapath_packets_total{direction="out"}')!;
      const outBytes = m.get('tunsec_datapath_bytes_total{direction="out"}')!;
      const inPackets = s.get('tunsec_datapath_packets_total{direction="in"}')!;
      const inBytes = s.get('tunsec_datapath_bytes_total{direction="in"}')!;
      // Every packet the datapath counted is one segment of at most the TUN MTU, in both daemons.
      expect(outPackets).toBeGreaterThan(700);
      expect(outBytes / outPackets).toBeLessThanOrEqual(TUN_MTU);
      expect(inBytes / inPackets).toBeLessThanOrEqual(TUN_MTU);
      expect(outBytes).toBeGreaterThan(result.end.sum_received.bytes);
      // What sun opened is what moon sealed, less what the network lost.
      expect(inPackets).toBeLessThanOrEqual(outPackets);
      expect(inBytes).toBeLessThanOrEqual(outBytes);
      // Segments read from the TUN are counted as packets read; opened segments as packets written.
      expect(m.get('tunsec_io_tun_read_packets_total')).toBeGreaterThanOrEqual(outPackets);
      expect(s.get('tunsec_io_tun_written_packets_total')).toBe(inPackets);
      expect(m.get('tunsec_io_tun_gso_refused_total')).toBe(0);
      // ESP-in-UDP: sealed and sent by the batched native path as UDP GSO datagrams
      if (mode === 'tunnel') {
        expect(m.get('tunsec_io_udp_gso_sends_total')).toBeGreaterThan(0);
        expect(m.get('tunsec_io_udp_gso_packets_total')).toBeGreaterThan(m.get('tunsec_io_udp_gso_sends_total')!);
        expect(m.get('tunsec_io_udp_gso_refused_total')).toBe(0);
      }
      expect(m.get('tunsec_io_seal_failures_total')).toBe(0);
      expect(m.get('tunsec_io_internal_errors_total')).toBe(0);
      expect(s.get('tunsec_io_internal_errors_total')).toBe(0);
      expect(s.get('tunsec_datapath_dropped_packets_total{direction="in",reason="icv_failure"}') ?? 0).toBe(0);
      const gso = m.get('tunsec_io_tun_gso_packets_total')!;
      const gro = s.get('tunsec_io_tun_gro_writes_total')!;
      const groSegments = s.get('tunsec_io_tun_gro_segments_total')!;
      if (offload === 'on') {
        // The sender's kernel handed over TSO super-packets, the receiver wrote coalesced ones.
        expect(gso).toBeGreaterThan(0);
        expect(gro).toBeGreaterThan(0);
        expect(groSegments).toBeGreaterThanOrEqual(2 * gro);
        expect(groSegments).toBeLessThanOrEqual(inPackets);
      } else {
        expect([gso, gro, groSegments]).toEqual([0, 0, 0]);
      }
    } finally {
      await esp.stop();
      esp.remove();
    }
  }, 90_000);
});
