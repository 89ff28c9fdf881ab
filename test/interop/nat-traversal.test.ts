/**
 * NAT traversal through a real NAT (RFC 7296 §2.23, RFC 3948): moon sits
 * behind a netns router doing nftables masquerade, sun is outside. NAT
 * detection must see the NAT on both sides, IKE must float to 4500, the
 * CHILD SAs must be UDP-encapsulated, and moon must send NAT-T keepalives.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { createCa, issueCertificate } from '../../src/pki/issue.js';
import { must, requireRootAndPrograms, run, waitFor } from '../support/proc.js';
import { TunsecDaemon, credentialFiles, tunsecYaml } from './tunsec-daemon.js';

const id = randomBytes(3).toString('hex');
const n = 100 + (randomBytes(1)[0]! % 100);
const ns = { moon: `tnm${id}`, router: `tnr${id}`, sun: `tns${id}` };
const inside = { moon: `192.168.${n}.2`, router: `192.168.${n}.1` };
const outside = { router: `10.${n}.0.1`, sun: `10.${n}.0.2` };

requireRootAndPrograms('NAT traversal test', ['ip', 'nft']);

async function topology(): Promise<void> {
  for (const name of Object.values(ns)) await must('ip', ['netns', 'add', name]);
  await must('ip', ['link', 'add', `m${id}`, 'netns', ns.moon, 'type', 'veth', 'peer', 'name', `ri${id}`, 'netns', ns.router]);
  await must('ip', ['link', 'add', `ro${id}`, 'netns', ns.router, 'type', 'veth', 'peer', 'name', `s${id}`, 'netns', ns.sun]);
  const cmds: string[][] = [
    [ns.moon, 'addr', 'add', `${inside.moon}/24`, 'dev', `m${id}`],
    [ns.router, 'addr', 'add', `${inside.router}/24`, 'dev', `ri${id}`],
    [ns.router, 'addr', 'add', `${outside.router}/24`, 'dev', `ro${id}`],
    [ns.sun, 'addr', 'add', `${outside.sun}/24`, 'dev', `s${id}`],
    [ns.moon, 'link', 'set', `m${id}`, 'up'],
    [ns.router, 'link', 'set', `ri${id}`, 'up'],
    [ns.router, 'link', 'set', `ro${id}`, 'up'],
    [ns.sun, 'link', 'set', `s${id}`, 'up'],
    [ns.moon, 'link', 'set', 'lo', 'up'],
    [ns.sun, 'link', 'set', 'lo', 'up'],
    [ns.moon, 'route', 'add', 'default', 'via', inside.router],
  ];
  for (const [where, ...args] of cmds) await must('ip', ['-n', where!, ...args]);
  await must('ip', ['netns', 'exec', ns.router, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  await must('ip', ['netns', 'exec', ns.router, 'nft', 'add table ip nat']);
  await must('ip', ['netns', 'exec', ns.router, 'nft', 'add chain ip nat post { type nat hook postrouting priority 100 ; }']);
  await must('ip', ['netns', 'exec', ns.router, 'nft', `add rule ip nat post oifname ro${id} masquerade`]);
}

const ca = createCa({ subject: 'C=CH, O=tunsec interop, CN=NAT test CA', key: 'p256' });
const cert = (name: string) =>
  issueCertificate(ca, { subject: `C=CH, O=tunsec interop, CN=${name}`, key: 'p256', subjectAltNames: { dns: [`${name}.tunsec.test`] } });

describe('NAT traversal through a masquerading router (RFC 7296 §2.23, RFC 3948)', () => {
  beforeAll(topology);
  afterAll(async () => {
    for (const name of Object.values(ns)) await run('ip', ['netns', 'del', name]);
  });

  it('both sides detect the NAT, IKE floats to 4500, the SAs are UDP-encapsulated and moon sends keepalives', async () => {
    const host = (me: 'moon' | 'sun', local: string, remote: string, remoteTs: string) =>
      new TunsecDaemon(
        ns[me],
        tunsecYaml({
          name: 'nat',
          local,
          remote,
          localId: `${me}.tunsec.test`,
          remoteId: `${me === 'moon' ? 'sun' : 'moon'}.tunsec.test`,
          mode: 'tunnel',
          startAction: me === 'moon' ? 'start' : 'none',
          remoteTs,
          daemonExtra: ['keep_alive: 1s', 'log:', '  net: 2'],
        }),
        credentialFiles(ca.certificatePem, cert(me)),
      );
    const sun = host('sun', outside.sun, '%any', `192.168.${n}.0/24`);
    const moon = host('moon', inside.moon, outside.sun, 'dynamic');
    let codes: Array<number | null> = [];
    try {
      await sun.start();
      await sun.event('daemon_started');
      await moon.start();
      const moonIke = await moon.event('ike_established');
      const sunIke = await sun.event('ike_established');
      expect(moonIke.nat_local).toBe(true);
      expect(sunIke.nat_remote).toBe(true);
      expect((moonIke.local as { port: number }).port).toBe(4500);
      expect(sunIke.remote).toMatchObject({ address: outside.router });
      const [mc, sc] = [await moon.event('child_established'), await sun.event('child_established')];
      expect(mc.encap).toBe(true);
      expect(sc.encap).toBe(true);
      expect(mc.spi_in).toBe(sc.spi_out);
      // RFC 3948 §2.3: keepalives from behind the NAT reach sun through the router's mapping.
      await waitFor('a NAT-T keepalive at sun', () => sun.text().includes(`NAT-T keepalive from ${outside.router}:`), 5000);
    } finally {
      codes = [await moon.stop(), await sun.stop()];
    }
    expect(codes).toEqual([0, 0]);
  });
});
