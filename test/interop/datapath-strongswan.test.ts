/**
 * Traffic between tunsec's userspace datapath and a real strongSwan 5.9.8
 * with its kernel-libipsec datapath (tunnel mode, ESP-in-UDP — the only way
 * libipsec works), in both IKE roles: ping and iperf3 TCP in both directions,
 * with tunsec's TUN offloads (and UDP GRO on the NAT-T socket) on; TUNSEC_TEST_OFFLOAD=off runs it
 * with them off.
 * strongSwan missing is a failure, never a skip.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCa, issueCertificate, type Issued } from '../../src/pki/issue.js';
import { NetnsPair } from '../support/netns.js';
import { pidFromFile, requireRootAndPrograms, stopPid } from '../support/proc.js';
import { StrongSwan, requireStrongSwan } from '../support/strongswan.js';
import { TunsecDaemon, credentialFiles, tunsecYaml } from './tunsec-daemon.js';

requireStrongSwan();
requireRootAndPrograms('tunsec ↔ strongSwan datapath', ['ip', 'ping', 'iperf3']);

const ca = createCa({ subject: 'C=CH, O=tunsec interop, CN=tunsec Datapath Interop CA', key: 'p384' });

describe.each(['tunsec', 'strongSwan'] as const)('ESP between tunsec and strongSwan libipsec, %s initiating', (initiator) => {
  let pair: NetnsPair;
  let moon: StrongSwan;
  let sun: TunsecDaemon;
  const certs: Record<string, Issued> = {};

  beforeAll(async () => {
    pair = await NetnsPair.create('ds');
    for (const [name, side] of [
      ['moon', pair.a],
      ['sun', pair.b],
    ] as const) {
      certs[name] = issueCertificate(ca, {
        subject: `C=CH, O=tunsec interop, CN=${name}`,
        key: 'p384',
        subjectAltNames: { dns: [`${name}.ikev2.test`], ip: [side.ip4] },
      });
    }
    moon = new StrongSwan({
      netns: pair.a.ns,
      connections: [
        {
          name: 'host-host',
          localAddrs: [pair.a.ip4],
          remoteAddrs: [pair.b.ip4],
          proposals: 'aes128gcm16-prfsha384-ecp384bp',
          localId: 'moon.ikev2.test',
          remoteId: 'sun.ikev2.test',
          certPem: certs.moon!.certificatePem,
          keyPem: certs.moon!.privateKeyPem!,
          caPem: ca.certificatePem,
          children: [{ name: 'host-host', mode: 'tunnel', espProposals: 'aes128gcm16-ecp384bp', localTs: ['dynamic'], remoteTs: ['dynamic'] }],
        },
      ],
    });
    sun = new TunsecDaemon(
      pair.b.ns,
      tunsecYaml({
        name: 'host-host',
        local: pair.b.ip4,
        remote: pair.a.ip4,
        localId: 'sun.ikev2.test',
        remoteId: 'moon.ikev2.test',
        startAction: initiator === 'tunsec' ? 'start' : 'none',
        mode: 'tunnel',
        // TUN offloads on: TSO super-packets split before sealing, GRO writes towards the kernel;
        // UDP GRO on the NAT-T socket (libipsec sends one datagram per packet; the veth may coalesce).
        daemonExtra: [`offload: ${process.env.TUNSEC_TEST_OFFLOAD === 'off' ? 'off' : 'on'}`],
      }),
      credentialFiles(ca.certificatePem, certs.sun!),
    );
    await moon.start();
    await sun.start();
    await sun.event('daemon_started');
    if (initiator === 'strongSwan') {
      const r = await moon.initiate('host-host');
      expect(r.code, r.stdout + r.stderr + sun.text()).toBe(0);
    }
    await sun.event('child_established');
  }, 90_000);

  afterAll(async () => {
    await sun?.stop();
    await moon?.stop();
    await pair?.destroy();
  });

  it('ping works in both directions', async () => {
    for (const [from, to] of [
      [pair.a, pair.b.ip4],
      [pair.b, pair.a.ip4],
    ] as const) {
      const ping = await pair.exec(from, 'ping', ['-c', '3', '-i', '0.2', '-W', '3', to], 20_000);
      expect(ping.code, `${ping.stdout}\n${ping.stderr}\ntunsec:\n${sun.text()}\nstrongSwan:\n${moon.log().slice(-4000)}`).toBe(0);
    }
  }, 40_000);

  it('a TCP transfer succeeds in both directions', async () => {
    const pidFile = `/tmp/iperf3-${pair.b.ns}.pid`;
    for (const reverse of [false, true]) {
      const server = await pair.exec(pair.b, 'iperf3', ['-s', '-D', '-1', '-p', '5202', '-I', pidFile]);
      expect(server.code).toBe(0);
      await new Promise((r) => setTimeout(r, 300));
      const client = await pair.exec(pair.a, 'iperf3', ['-c', pair.b.ip4, '-p', '5202', '-t', '2', '-J', ...(reverse ? ['-R'] : [])], 30_000);
      const serverPid = pidFromFile(pidFile);
      if (serverPid !== undefined) await stopPid(serverPid);
      expect(client.code, `${client.stdout.slice(-2000)}\n${client.stderr}`).toBe(0);
      const result = JSON.parse(client.stdout) as { end: { sum_received: { bytes: number } } };
      expect(result.end.sum_received.bytes, reverse ? 'tunsec → strongSwan' : 'strongSwan → tunsec').toBeGreaterThan(500_000);
    }
  }, 60_000);
});
