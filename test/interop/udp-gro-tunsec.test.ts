/**
 * UDP GRO receive end to end: two `tunsec daemon` processes in their own network namespaces,
 * tunnel mode over ESP-in-UDP (RFC 3948, port 4500 shared with IKE). The sender seals TSO
 * super-packets' segments into runs of equal-size ESP packets (the last shorter) and sends each run
 * as one UDP GSO datagram; the veth keeps it whole (tx-udp-segmentation on), so the receiver's
 * NAT-T socket (UDP_GRO on) gets coalesced datagrams and splits them before the demultiplexing.
 * CREATE_CHILD_SA exchanges (rekey_time 3s) and NAT-T keepalives arrive on the same socket
 * between the ESP batches. With `daemon.offload: off` the socket is read without GRO and the
 * kernel cuts the GSO datagrams for it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCa } from '../../src/pki/issue.js';
import { NetnsPair, type NetnsSide } from '../support/netns.js';
import { scrapeMetrics } from '../support/metrics.js';
import { pidFromFile, requireRootAndPrograms, stopPid } from '../support/proc.js';
import { peerCertificates, peerDaemon, type PeerName, type TunsecDaemon, startResponderThenInitiator } from './tunsec-daemon.js';

requireRootAndPrograms('tunsec UDP GRO', ['ip', 'iperf3', 'curl', 'ethtool']);

const ca = createCa({ subject: 'C=CH, O=tunsec gro, CN=tunsec GRO Root CA', key: 'p384' });
const METRICS_URL = 'http://127.0.0.1:9811/metrics';

describe.each(['on', 'off'] as const)('ESP-in-UDP through tunsec ↔ tunsec with UDP GRO (offload: %s)', (offload) => {
  let pair: NetnsPair;
  let moon: TunsecDaemon;
  let sun: TunsecDaemon;
  const inner = { moon: '192.168.83.1', sun: '192.168.84.1' };

  beforeAll(async () => {
    pair = await NetnsPair.create('ug');
    const certs = peerCertificates(ca, pair, 'tunsec gro');
    for (const [side, address] of [
      [pair.a, inner.moon],
      [pair.b, inner.sun],
    ] as const) {
      await pair.exec(side, 'ip', ['addr', 'add', `${address}/24`, 'dev', 'lo']);
      // the veth carries UDP GSO datagrams whole: the receiver gets them coalesced
      const k = await pair.exec(side, 'ethtool', ['-K', side.ifname, 'tx-udp-segmentation', 'on']);
      expect(k.code, k.stderr).toBe(0);
    }
    const daemon = (name: PeerName): TunsecDaemon => {
      const [mine, theirs] = name === 'moon' ? ['83', '84'] : ['84', '83'];
      return peerDaemon(pair, ca, certs, name, {
        name: 'gro',
        mode: 'tunnel',
        encap: true,
        startAction: name === 'moon' ? 'start' : 'none',
        localTs: `192.168.${mine}.0/24`,
        remoteTs: `192.168.${theirs}.0/24`,
        childExtra: ['rekey_time: 3s', 'life_time: 6s', 'rand_time: 1s'],
        daemonExtra: [`offload: ${offload}`, 'metrics: 127.0.0.1:9811', 'log:', '    net: 2'],
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

  /** UDP receive-buffer overflows in `side`'s namespace (/proc/net/snmp `Udp: … RcvbufErrors`). */
  async function rcvbufErrors(side: NetnsSide): Promise<number> {
    const r = await pair.exec(side, 'cat', ['/proc/net/snmp']);
    const udp = r.stdout.split('\n').filter((l) => l.startsWith('Udp:'));
    const names = udp[0]!.split(/\s+/);
    return Number(udp[1]!.split(/\s+/)[names.indexOf('RcvbufErrors')]);
  }

  it('every ESP packet is opened once, CHILD_SA rekeys and keepalives on the same socket in between are handled', async () => {
    const pidFile = `/tmp/iperf3-${pair.b.ns}.pid`;
    const server = await pair.exec(pair.b, 'iperf3', ['-s', '-D', '-1', '-p', '5201', '-I', pidFile]);
    expect(server.code).toBe(0);
    await new Promise((r) => setTimeout(r, 300));
    // NAT-T keepalives (RFC 3948 §2.3: one 0xFF octet) from sun's namespace to moon's NAT-T port during the transfer
    const keepalives = pair.exec(
      pair.b,
      process.execPath,
      [
        '-e',
        `const s=require('dgram').createSocket('udp4');let n=0;const t=setInterval(()=>{s.send(Buffer.from([0xff]),4500,${JSON.stringify(pair.a.ip4)});if(++n===5){clearInterval(t);setTimeout(()=>s.close(),100);}},700);`,
      ],
      20_000,
    );
    const client = await pair.exec(pair.a, 'iperf3', ['-c', inner.sun, '-B', inner.moon, '-p', '5201', '-t', '5', '-J'], 30_000);
    const serverPid = pidFromFile(pidFile);
    if (serverPid !== undefined) await stopPid(serverPid);
    expect((await keepalives).code).toBe(0);
    const diag = `moon:\n${moon.text().slice(-4000)}\nsun:\n${sun.text().slice(-4000)}`;
    expect(client.code, `${client.stdout}\n${client.stderr}\n${diag}`).toBe(0);
    const result = JSON.parse(client.stdout) as { end: { sum_received: { bytes: number } } };
    expect(result.end.sum_received.bytes).toBeGreaterThan(1_000_000);

    const m = await metrics(pair.a);
    const s = await metrics(pair.b);
    const outPackets = m.get('tunsec_datapath_packets_total{direction="out"}')!;
    const inPackets = s.get('tunsec_datapath_packets_total{direction="in"}')!;
    const lost = await rcvbufErrors(pair.b);
    // sun opened every ESP packet moon sent exactly once (the tunnel's own traffic: TCP one way, ACKs the other)
    if (lost === 0) expect(inPackets, diag).toBe(outPackets);
    else expect(inPackets, diag).toBeLessThanOrEqual(outPackets);
    for (const [side, x] of [
      ['moon', m],
      ['sun', s],
    ] as const) {
      expect(x.get('tunsec_io_internal_errors_total'), side).toBe(0);
      expect(x.get('tunsec_datapath_dropped_packets_total{direction="in",reason="icv_failure"}') ?? 0, side).toBe(0);
      expect(x.get('tunsec_datapath_dropped_packets_total{direction="in",reason="replay"}') ?? 0, side).toBe(0);
      expect(x.get('tunsec_io_udp_gro_refused_total'), side).toBe(0);
    }
    expect(m.get('tunsec_io_udp_gso_sends_total')).toBeGreaterThan(0);
    const groDatagrams = s.get('tunsec_io_udp_gro_datagrams_total')!;
    const groSegments = s.get('tunsec_io_udp_gro_segments_total')!;
    console.info(
      `udp-gro offload ${offload}: moon sealed ${outPackets}, sun opened ${inPackets} (rcvbuf drops ${lost}); ${groDatagrams} GRO datagrams, ${groSegments} segments`,
    );
    if (offload === 'on') {
      // coalesced datagrams arrived and were split: the segments are counted, not the datagrams
      expect(groDatagrams).toBeGreaterThan(0);
      expect(groSegments).toBeGreaterThanOrEqual(2 * groDatagrams);
      expect(s.get('tunsec_io_udp_esp_received_packets_total')).toBeGreaterThanOrEqual(inPackets);
    } else {
      expect([groDatagrams, groSegments]).toEqual([0, 0]);
    }
    // IKE on port 4500 between the ESP batches: the CHILD_SA was rekeyed while the data flowed
    const both = moon.text() + '\n' + sun.text();
    expect((both.match(/CHILD_SA gro\{\d+\} rekeyed with SPIs/g) ?? []).length, diag).toBeGreaterThanOrEqual(2);
    // the keepalives reached IKE's demultiplexer as keepalives
    expect((moon.text().match(/NAT-T keepalive from/g) ?? []).length, diag).toBe(5);
  }, 90_000);
});
