/**
 * The userspace ESP datapath end to end: two `tunsec daemon` processes in
 * their own network namespaces protect the traffic between them (transport
 * mode, raw ESP; IPv4 and IPv6), and a capture on the veth shows that the
 * protected flows cross it only as ESP while a flow outside the policy stays
 * in the clear.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCa } from '../../src/pki/issue.js';
import { NetnsPair } from '../support/netns.js';
import { join } from 'node:path';
import { pidFromFile, requireRootAndPrograms, run, stopPid, waitFor } from '../support/proc.js';
import { Capture, isNeighborDiscovery, type CapturedPacket } from '../support/capture.js';
import { peerCertificates, peerDaemon, type PeerName, type TunsecDaemon, startResponderThenInitiator } from './tunsec-daemon.js';

requireRootAndPrograms('tunsec datapath', ['ip', 'ping', 'tcpdump', 'iperf3', 'tshark', 'python3']);

const ca = createCa({ subject: 'C=CH, O=tunsec datapath, CN=tunsec Datapath Root CA', key: 'p384' });

describe.each([
  ['IPv4', 'ip4'],
  ['IPv6', 'ip6'],
] as const)('tunsec ↔ tunsec transport mode over raw ESP (%s)', (_f, fam) => {
  let pair: NetnsPair;
  let moon: TunsecDaemon;
  let sun: TunsecDaemon;
  beforeAll(async () => {
    pair = await NetnsPair.create('dp');
    const certs = peerCertificates(ca, pair, 'tunsec datapath');
    const daemon = (name: PeerName): TunsecDaemon =>
      peerDaemon(pair, ca, certs, name, {
        family: fam,
        name: 'host-host',
        mode: 'transport',
        startAction: name === 'moon' ? 'start' : 'none',
        // TCP and ICMP are protected; UDP port 9 (discard) stays outside the policy.
        localTs: `dynamic[${fam === 'ip4' ? 'icmp' : 'ipv6-icmp'}],dynamic[tcp]`,
        remoteTs: `dynamic[${fam === 'ip4' ? 'icmp' : 'ipv6-icmp'}],dynamic[tcp]`,
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

  it('ping and a TCP transfer succeed, and the veth carries only ESP and IKE between the hosts', async () => {
    // Two captures: everything but ESP (must hold no protected flow), and the first ESP packets (must exist).
    // Keeping ESP out of the first one lets tcpdump keep up with iperf3 without dropping anything that matters.
    const clear = await Capture.start(pair.b.ns, pair.b.ifname, ['not', 'esp', 'and', 'not', '(', 'ip6', 'proto', '50', ')']);
    const esp = await Capture.start(pair.b.ns, pair.b.ifname, ['-c', '20', 'esp', 'or', '(', 'ip6', 'proto', '50', ')']);
    try {
      const target = pair.b[fam];
      const ping = await pair.exec(pair.a, 'ping', ['-c', '5', '-i', '0.2', '-W', '2', target], 20_000);
      expect(ping.code, `${ping.stdout}\n${ping.stderr}\nmoon:\n${moon.text()}`).toBe(0);
      // UDP to the discard port: outside the policy, so it must go in the clear.
      const probe = `const s = require('node:dgram').createSocket('${fam === 'ip4' ? 'udp4' : 'udp6'}'); s.send('clear-text-probe', 9, '${target}', () => s.close());`;
      const sent = await pair.exec(pair.a, process.execPath, ['-e', probe]);
      expect(sent.code, sent.stderr).toBe(0);
      const pidFile = `/tmp/iperf3-${pair.b.ns}.pid`;
      const server = await pair.exec(pair.b, 'iperf3', ['-s', '-D', '-1', '-p', '5201', '-I', pidFile]);
      expect(server.code).toBe(0);
      await new Promise((r) => setTimeout(r, 300));
      const client = await pair.exec(pair.a, 'iperf3', ['-c', target, '-p', '5201', '-t', '2', '-J'], 30_000);
      const serverPid = pidFromFile(pidFile);
      if (serverPid !== undefined) await stopPid(serverPid);
      expect(client.code, client.stderr).toBe(0);
      const result = JSON.parse(client.stdout) as { end: { sum_received: { bytes: number } } };
      expect(result.end.sum_received.bytes).toBeGreaterThan(1_000_000);
      const ours = (p: CapturedPacket): boolean => (p.src === pair.a[fam] || p.dst === pair.a[fam]) && !isNeighborDiscovery(p);
      const clearPackets = (await clear.stop()).filter(ours);
      expect(clearPackets.filter((p) => p.protocol === 'tcp' || p.protocol === 'icmp').map((p) => `${p.protocol} ${p.src} → ${p.dst}`)).toEqual([]);
      expect(clearPackets.some((p) => p.protocol === 'udp' && p.dstPort === 9)).toBe(true);
      expect((await esp.stop()).filter(ours).length).toBeGreaterThan(0);
    } finally {
      await clear.stop();
      await esp.stop();
      clear.remove();
      esp.remove();
    }
  }, 90_000);
});

describe('tunsec ↔ tunsec tunnel mode over ESP-in-UDP', () => {
  let pair: NetnsPair;
  let moon: TunsecDaemon;
  let sun: TunsecDaemon;
  // Inner networks behind each side (on lo), protected between each other.
  const inner = { moon: { v4: '192.168.71.1', v6: 'fd71::1' }, sun: { v4: '192.168.72.1', v6: 'fd72::1' } };

  beforeAll(async () => {
    pair = await NetnsPair.create('dq');
    const certs = peerCertificates(ca, pair, 'tunsec datapath');
    for (const [side, addrs] of [
      [pair.a, inner.moon],
      [pair.b, inner.sun],
    ] as const) {
      await pair.exec(side, 'ip', ['addr', 'add', `${addrs.v4}/24`, 'dev', 'lo']);
      await pair.exec(side, 'ip', ['-6', 'addr', 'add', `${addrs.v6}/64`, 'dev', 'lo']);
    }
    const daemon = (name: PeerName): TunsecDaemon => {
      const [mine, theirs] = name === 'moon' ? ['71', '72'] : ['72', '71'];
      return peerDaemon(pair, ca, certs, name, {
        name: 'net-net',
        mode: 'tunnel',
        encap: true,
        startAction: name === 'moon' ? 'start' : 'none',
        localTs: `192.168.${mine}.0/24,fd${mine}::/64`,
        remoteTs: `192.168.${theirs}.0/24,fd${theirs}::/64`,
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

  it('IPv4 and IPv6 between the inner networks cross the veth only as ESP-in-UDP on port 4500', async () => {
    const clear = await Capture.start(pair.b.ns, pair.b.ifname, ['not', 'udp', 'port', '4500', 'and', 'not', 'udp', 'port', '500']);
    const encapsulated = await Capture.start(pair.b.ns, pair.b.ifname, ['-c', '10', 'udp', 'port', '4500']);
    try {
      for (const [from, to] of [
        [inner.moon.v4, inner.sun.v4],
        [inner.moon.v6, inner.sun.v6],
      ] as const) {
        const ping = await pair.exec(pair.a, 'ping', ['-c', '3', '-i', '0.2', '-W', '2', '-I', from, to], 20_000);
        expect(ping.code, `${ping.stdout}\n${ping.stderr}\nmoon:\n${moon.text()}\nsun:\n${sun.text()}`).toBe(0);
      }
      // only the inner networks' traffic is protected (link-local MLD/ND plumbing is not)
      const innerAddresses = new Set([inner.moon.v4, inner.moon.v6, inner.sun.v4, inner.sun.v6]);
      const leaked = (await clear.stop()).filter((p) => innerAddresses.has(p.src) || innerAddresses.has(p.dst));
      expect(leaked.map((p) => `${p.protocol} ${p.src} → ${p.dst}`)).toEqual([]);
      const esp = await encapsulated.stop();
      expect(esp.length).toBeGreaterThan(0);
      expect(esp.every((p) => p.src === pair.a.ip4 || p.src === pair.b.ip4)).toBe(true);
    } finally {
      await clear.stop();
      await encapsulated.stop();
      clear.remove();
      encapsulated.remove();
    }
  }, 60_000);
});

describe('wire evidence: standard ESP, decryptable with the key log, replays dropped', () => {
  let pair: NetnsPair;
  let moon: TunsecDaemon;
  let sun: TunsecDaemon;
  let capture: Capture;

  beforeAll(async () => {
    pair = await NetnsPair.create('dw');
    const certs = peerCertificates(ca, pair, 'tunsec datapath');
    const daemon = (name: PeerName): TunsecDaemon =>
      peerDaemon(pair, ca, certs, name, {
        name: 'host-host',
        mode: 'transport',
        startAction: name === 'moon' ? 'start' : 'none',
        daemonExtra: name === 'sun' ? ['keylog: ${DIR}/keys', 'log: { esp: 2 }'] : [],
      });
    // The capture starts first: IKE_AUTH is needed to check the IKE keys too.
    capture = await Capture.start(pair.b.ns, pair.b.ifname);
    sun = daemon('sun');
    moon = daemon('moon');
    await sun.start();
    await sun.event('daemon_started');
    await moon.start();
    await sun.event('child_established');
    await moon.event('child_established');
    const ping = await pair.exec(pair.a, 'ping', ['-c', '3', '-i', '0.2', '-W', '2', pair.b.ip4], 20_000);
    expect(ping.code, ping.stdout).toBe(0);
    await capture.stop();
  }, 60_000);

  afterAll(async () => {
    await capture?.stop();
    capture?.remove();
    await moon?.stop();
    await sun?.stop();
    await pair?.destroy();
  });

  it("tshark decrypts tunsec's IKE_AUTH and its ESP with the esp_sa / ikev2_decryption_table files tunsec wrote", async () => {
    const keys = join(sun.dir, 'keys');
    const env = { ...process.env, WIRESHARK_CONFIG_DIR: keys, HOME: keys };
    const icmp = await run('tshark', ['-r', capture.file, '-Y', 'esp && icmp.type == 8', '-T', 'fields', '-e', 'ip.src', '-e', 'ip.dst'], {
      env,
      timeoutMs: 60_000,
    });
    expect(icmp.code, icmp.stderr).toBe(0);
    expect(icmp.stdout.trim().split('\n')).toEqual(Array(3).fill(`${pair.a.ip4}\t${pair.b.ip4}`));
    // The identities travel only inside the encrypted IKE_AUTH (exchange type 35) messages.
    const ike = await run('tshark', ['-r', capture.file, '-Y', 'isakmp.exchangetype == 35', '-T', 'fields', '-e', 'isakmp.id.data.fqdn'], {
      env,
      timeoutMs: 60_000,
    });
    expect(ike.code, ike.stderr).toBe(0);
    expect(ike.stdout.trim().split('\n')).toEqual(['moon.tunsec.test,sun.tunsec.test', 'sun.tunsec.test']);
  }, 90_000);

  it('an ESP packet captured on the wire and sent again is dropped as a replay and counted', async () => {
    const esp = capture.packets().find((p) => p.protocol === 'esp' && p.src === pair.a.ip4)!;
    expect(esp).toBeDefined();
    const send =
      'import socket, sys; s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW); s.sendto(bytes.fromhex(sys.argv[1]), (sys.argv[2], 0))';
    const r = await pair.exec(pair.a, 'python3', ['-c', send, esp.ip.toString('hex'), pair.b.ip4]);
    expect(r.code, r.stderr).toBe(0);
    await waitFor('replay drop in the log', () => sun.lines.some((l) => /dropped a replayed or too old packet/.test(String(l.msg))), 5000);
  });
});
