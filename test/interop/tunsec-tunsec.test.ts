/**
 * Two `tunsec daemon` processes in their own network namespaces on the real
 * IKE ports 500/4500: transport mode (USE_TRANSPORT_MODE) over IPv4 and IPv6,
 * no NAT so no UDP encapsulation; and the same with `encap: yes`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCa, type Issued } from '../../src/pki/issue.js';
import { NetnsPair } from '../support/netns.js';
import { must, run } from '../support/proc.js';
import { TunsecDaemon, credentialFiles, peerCertificates, tunsecYaml, type PeerName } from './tunsec-daemon.js';

const ca = createCa({ subject: 'C=CH, O=tunsec interop, CN=tunsec Interop Root CA', key: 'p384' });

describe.each([
  ['IPv4', 'ip4'],
  ['IPv6', 'ip6'],
] as const)('tunsec ↔ tunsec daemons on ports 500/4500 over %s', (_f, key) => {
  let pair: NetnsPair;
  let certs: Record<PeerName, Issued>;
  beforeAll(async () => {
    pair = await NetnsPair.create('tt');
    certs = peerCertificates(ca, pair, 'tunsec interop');
  });
  afterAll(async () => {
    await pair?.destroy();
  });

  const daemon = (name: 'moon' | 'sun', start: boolean, encap: boolean, bypassRules = true): TunsecDaemon => {
    const [me, other, peer] = name === 'moon' ? [pair.a, pair.b, 'sun'] : [pair.b, pair.a, 'moon'];
    return new TunsecDaemon(
      me.ns,
      tunsecYaml({
        name: 'host-host',
        local: me[key],
        remote: other[key],
        localId: `${name}.tunsec.test`,
        remoteId: `${peer}.tunsec.test`,
        mode: 'transport',
        startAction: start ? 'start' : 'none',
        encap,
        daemonExtra: [`bypass_rules: ${bypassRules ? 'yes' : 'no'}`, 'datapath: none'],
      }),
      credentialFiles(ca.certificatePem, certs[name]!),
    );
  };

  it("with the peer's address routed into a TUN device, IKE still reaches it through the sport bypass rules, which are removed at stop", async () => {
    const fam = key === 'ip4' ? '-4' : '-6';
    const tun = `tsb${Math.floor(Math.random() * 1e5)}`;
    // What the datapath does for a host-to-host policy: the peer's address goes into the TUN device.
    await must('ip', ['-n', pair.a.ns, 'tuntap', 'add', 'dev', tun, 'mode', 'tun']);
    await must('ip', ['-n', pair.a.ns, 'link', 'set', tun, 'up']);
    await must('ip', ['-n', pair.a.ns, fam, 'route', 'add', 'table', '220', pair.b[key], 'dev', tun]);
    await must('ip', ['-n', pair.a.ns, fam, 'rule', 'add', 'pref', '220', 'lookup', '220']);
    try {
      // Control: without the bypass rules the IKE_SA_INIT disappears into the TUN device.
      let sun = daemon('sun', false, false);
      let moon = daemon('moon', true, false, false);
      try {
        await sun.start();
        await sun.event('daemon_started');
        await moon.start();
        await moon.event('daemon_started');
        await new Promise((r) => setTimeout(r, 2500));
        expect(moon.lines.some((l) => l.event === 'ike_established')).toBe(false);
      } finally {
        await moon.stop();
        await sun.stop();
      }
      sun = daemon('sun', false, false);
      moon = daemon('moon', true, false, true);
      let codes: Array<number | null> = [];
      try {
        await sun.start();
        await sun.event('daemon_started');
        await moon.start();
        expect((await moon.event('child_established')).mode).toBe('transport');
        const rules = await must('ip', ['-n', pair.a.ns, fam, 'rule', 'show', 'pref', '210']);
        expect(rules).toMatch(/ipproto udp sport 500 lookup main/);
        expect(rules).toMatch(/ipproto udp sport 4500 lookup main/);
      } finally {
        codes = [await moon.stop(), await sun.stop()];
      }
      expect(codes).toEqual([0, 0]);
      expect(await must('ip', ['-n', pair.a.ns, fam, 'rule', 'show', 'pref', '210'])).toBe('');
    } finally {
      await run('ip', ['-n', pair.a.ns, fam, 'rule', 'del', 'pref', '220', 'lookup', '220']);
      await run('ip', ['-n', pair.a.ns, 'link', 'del', tun]);
    }
  });

  it.each([
    ['without NAT: raw IKE on 500, transport-mode SAs without UDP encapsulation', false],
    ['with encap: yes: IKE floats to 4500 and the transport-mode SAs are UDP-encapsulated', true],
  ] as const)('%s', async (_title, encap) => {
    const sun = daemon('sun', false, false);
    const moon = daemon('moon', true, encap);
    let codes: Array<number | null> = [];
    try {
      await sun.start();
      await sun.event('daemon_started');
      await moon.start();
      const [mc, sc] = [await moon.event('child_established'), await sun.event('child_established')];
      expect(mc.mode).toBe('transport');
      expect(sc.mode).toBe('transport');
      expect(mc.spi_in).toBe(sc.spi_out);
      expect(mc.spi_out).toBe(sc.spi_in);
      expect(mc.proposal).toBe('aes128gcm16-noesn'); // no KE in IKE_AUTH: PFS only on rekey
      expect(mc.encap).toBe(encap);
      expect(sc.encap).toBe(encap);
      const ike = await moon.event('ike_established');
      expect((ike.local as { port: number }).port).toBe(encap ? 4500 : 500);
      expect((ike.remote as { port: number }).port).toBe(encap ? 4500 : 500);
    } finally {
      codes = [await moon.stop(), await sun.stop()];
    }
    expect(codes).toEqual([0, 0]);
  });
});
