/**
 * Rekeying between tunsec and a real strongSwan 5.9.8 (kernel-libipsec,
 * tunnel mode, ESP-in-UDP), in both IKE roles, with a 20 Hz ping running
 * across the rekeys (RFC 7296 §1.3.2, §1.3.3, §2.18): CHILD_SA rekeys with
 * PFS (ecp384bp) and IKE_SA rekeys driven by strongSwan's rekey_time, and
 * CHILD_SA rekeys driven by tunsec's own rekey_time. strongSwan missing is a
 * failure, never a skip.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createCa, issueCertificate, type Issued } from '../../src/pki/issue.js';
import { NetnsPair } from '../support/netns.js';
import { pingSummary, requireRootAndPrograms } from '../support/proc.js';
import { StrongSwan, requireStrongSwan, type ViciValue } from '../support/strongswan.js';
import { TunsecDaemon, credentialFiles, tunsecYaml } from './tunsec-daemon.js';

requireStrongSwan();
requireRootAndPrograms('tunsec ↔ strongSwan rekeying', ['ip', 'ping']);

const ca = createCa({ subject: 'C=CH, O=tunsec interop, CN=tunsec Rekey Interop CA', key: 'p384' });

interface Setup {
  pair: NetnsPair;
  moon: StrongSwan;
  sun: TunsecDaemon;
}

/** strongSwan's installed CHILD_SAs (a rekeyed one stays listed as DELETED/REKEYED for charon.delete_rekeyed_delay). */
function childSpis(sas: Record<string, ViciValue>): string[] {
  const out: string[] = [];
  for (const ike of Object.values(sas)) {
    const children = (ike as Record<string, ViciValue>)['child-sas'] as Record<string, Record<string, ViciValue>> | undefined;
    for (const c of Object.values(children ?? {})) if (c.state === 'INSTALLED') out.push(`${String(c['spi-in'])}/${String(c['spi-out'])}`);
  }
  return out;
}

function ikeSpis(sas: Record<string, ViciValue>): string[] {
  return Object.values(sas).map((ike) => String((ike as Record<string, ViciValue>)['initiator-spi']));
}

describe.each(['tunsec', 'strongSwan'] as const)('rekeying between tunsec and strongSwan libipsec, %s initiating the IKE_SA', (initiator) => {
  let s: Setup | undefined;

  afterEach(async () => {
    await s?.sun.stop();
    await s?.moon.stop();
    await s?.pair.destroy();
    s = undefined;
  });

  async function setup(o: { ssChildRekey?: string; ssIkeRekey?: string; tunsecChild?: string[]; tunsecConn?: string[] }): Promise<Setup> {
    const pair = await NetnsPair.create(initiator === 'tunsec' ? 'rt' : 'rs');
    const certs: Record<string, Issued> = {};
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
    const moon = new StrongSwan({
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
          ...(o.ssIkeRekey ? { rekeyTime: o.ssIkeRekey } : {}),
          children: [
            {
              name: 'host-host',
              mode: 'tunnel',
              espProposals: 'aes128gcm16-ecp384bp',
              localTs: ['dynamic'],
              remoteTs: ['dynamic'],
              ...(o.ssChildRekey ? { rekeyTime: o.ssChildRekey } : {}),
            },
          ],
        },
      ],
    });
    const sun = new TunsecDaemon(
      pair.b.ns,
      tunsecYaml({
        name: 'host-host',
        local: pair.b.ip4,
        remote: pair.a.ip4,
        localId: 'sun.ikev2.test',
        remoteId: 'moon.ikev2.test',
        startAction: initiator === 'tunsec' ? 'start' : 'none',
        mode: 'tunnel',
        ...(o.tunsecChild ? { childExtra: o.tunsecChild } : {}),
        ...(o.tunsecConn ? { connExtra: o.tunsecConn } : {}),
      }),
      credentialFiles(ca.certificatePem, certs.sun!),
    );
    s = { pair, moon, sun };
    await moon.start();
    await sun.start();
    await sun.event('daemon_started');
    if (initiator === 'strongSwan') {
      const r = await moon.initiate('host-host');
      expect(r.code, r.stdout + r.stderr + sun.text()).toBe(0);
    }
    await sun.event('child_established');
    return s;
  }

  /** A 20 Hz ping from strongSwan's side to tunsec's for `seconds`; returns [sent, received]. */
  async function ping(x: Setup, seconds: number): Promise<{ sent: number; received: number; out: string }> {
    const count = seconds * 20;
    const r = await x.pair.exec(x.pair.a, 'ping', ['-c', String(count), '-i', '0.05', '-W', '1', x.pair.b.ip4], (seconds + 15) * 1000);
    const { sent, received } = pingSummary(r.stdout);
    const text = x.sun.text();
    const n = (re: RegExp): number => (text.match(re) ?? []).length;
    console.info(
      `rekey-strongswan (${initiator} initiating): ${sent} pings, ${sent - received} lost; tunsec saw ${n(/rekeyed with SPIs/g)} CHILD rekeys (${n(/rekeying CHILD_SA/g)} initiated by tunsec), ${n(/IKE_SA rekeyed:/g)} IKE rekeys`,
    );
    return { sent, received, out: r.stdout.split('\n').slice(-4).join('\n') };
  }

  it('strongSwan rekeys the CHILD_SA (PFS, every ~10 s) and the IKE_SA (~20 s) while a 20 Hz ping loses nothing', async () => {
    const x = await setup({ ssChildRekey: '10s', ssIkeRekey: '20s' });
    const before = await x.moon.listSas();
    const p = await ping(x, 27);
    const after = await x.moon.listSas();
    const diag = `${p.out}\n--- tunsec\n${x.sun.text().slice(-6000)}\n--- strongSwan\n${x.moon.log().slice(-6000)}`;
    expect(p.sent, diag).toBe(27 * 20);
    expect(p.sent - p.received, diag).toBe(0);
    const tunsecLog = x.sun.text();
    expect((tunsecLog.match(/CHILD_SA host-host\{\d+\} rekeyed with SPIs .*\(PFS\)/g) ?? []).length, diag).toBeGreaterThanOrEqual(2);
    expect(tunsecLog, diag).toMatch(/IKE_SA rekeyed: .* carries its 1 CHILD_SA\(s\) now/);
    expect(childSpis(after)).toHaveLength(1);
    expect(childSpis(after)[0]).not.toBe(childSpis(before)[0]);
    expect(ikeSpis(after)).toHaveLength(1);
    expect(ikeSpis(after)[0]).not.toBe(ikeSpis(before)[0]);
    // traffic still flows both ways over the final SAs
    const back = await x.pair.exec(x.pair.b, 'ping', ['-c', '3', '-i', '0.2', '-W', '2', x.pair.a.ip4], 15_000);
    expect(back.code, diag).toBe(0);
  }, 120_000);

  it('tunsec rekeys the CHILD_SA (PFS) and the IKE_SA by its own rekey_times while a 20 Hz ping loses nothing', async () => {
    const x = await setup({
      tunsecChild: ['rekey_time: 5s', 'life_time: 8s', 'rand_time: 1s'],
      tunsecConn: ['rekey_time: 9s', 'over_time: 5s', 'rand_time: 1s'],
    });
    const before = await x.moon.listSas();
    const p = await ping(x, 16);
    const after = await x.moon.listSas();
    const diag = `${p.out}\n--- tunsec\n${x.sun.text().slice(-6000)}\n--- strongSwan\n${x.moon.log().slice(-6000)}`;
    expect(p.sent - p.received, diag).toBe(0);
    const tunsecLog = x.sun.text();
    expect((tunsecLog.match(/rekeying CHILD_SA host-host\{\d+\} .*\(rekey_time\)/g) ?? []).length, diag).toBeGreaterThanOrEqual(2);
    expect((tunsecLog.match(/old SAs [0-9a-f]{8}_i [0-9a-f]{8}_o deleted/g) ?? []).length, diag).toBeGreaterThanOrEqual(2);
    expect(tunsecLog, diag).toMatch(/rekeying IKE_SA \(rekey_time\)/);
    expect(tunsecLog, diag).toMatch(/IKE_SA rekeyed: .* carries its 1 CHILD_SA\(s\) now/);
    expect(ikeSpis(after)).toHaveLength(1);
    expect(ikeSpis(after)[0]).not.toBe(ikeSpis(before)[0]);
    expect(childSpis(after), JSON.stringify(after)).toHaveLength(1);
    expect(childSpis(after)[0]).not.toBe(childSpis(before)[0]);
    const back = await x.pair.exec(x.pair.b, 'ping', ['-c', '3', '-i', '0.2', '-W', '2', x.pair.a.ip4], 15_000);
    expect(back.code, diag).toBe(0);
  }, 120_000);
});
