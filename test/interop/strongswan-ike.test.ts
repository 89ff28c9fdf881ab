/**
 * IKEv2 interop with a real strongSwan 5.9.8 (kernel-libipsec datapath, own
 * netns): both roles, IPv4 and IPv6 outer addresses, the mission's strict
 * proposals, RSA certificates from an RSA-3072 CA (IKE_AUTH ~1.7 kB, so it is
 * fragmented per RFC 7383 in both directions). libipsec supports tunnel mode
 * only and forces UDP encapsulation (it fakes a NAT in NAT_DETECTION_SOURCE_IP).
 * strongSwan missing is a failure, never a skip.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCa, issueCertificate } from '../../src/pki/issue.js';
import { NetnsPair } from '../support/netns.js';
import { StrongSwan, requireStrongSwan, type ViciValue } from '../support/strongswan.js';
import { TunsecDaemon, credentialFiles, tunsecYaml } from './tunsec-daemon.js';

requireStrongSwan();

const ca = createCa({ subject: 'C=CH, O=tunsec interop, CN=tunsec Interop Root CA', key: 'rsa3072' });

type Sas = Record<string, ViciValue>;
const childOf = (sas: Sas): Record<string, ViciValue> => {
  const ike = sas['host-host'] as Record<string, ViciValue>;
  const children = ike['child-sas'] as Record<string, Record<string, ViciValue>>;
  return Object.values(children)[0]!;
};

describe.each([
  ['IPv4', 'ip4'],
  ['IPv6', 'ip6'],
] as const)('IKEv2 with strongSwan 5.9.8 over %s', (_family, key) => {
  let pair: NetnsPair;
  let moonCert: ReturnType<typeof issueCertificate>;
  let sunCert: ReturnType<typeof issueCertificate>;

  beforeAll(async () => {
    pair = await NetnsPair.create('ti');
    moonCert = issueCertificate(ca, {
      subject: 'C=CH, O=tunsec interop, CN=moon',
      key: 'rsa2048',
      subjectAltNames: { dns: ['moon.ikev2.test'], ip: [pair.a.ip4, pair.a.ip6] },
    });
    sunCert = issueCertificate(ca, {
      subject: 'C=CH, O=tunsec interop, CN=sun',
      key: 'rsa2048',
      subjectAltNames: { dns: ['sun.ikev2.test'], ip: [pair.b.ip4, pair.b.ip6] },
    });
  });
  afterAll(async () => {
    await pair?.destroy();
  });

  async function run(initiator: 'tunsec' | 'strongswan', mode: 'tunnel' | 'transport' = 'tunnel') {
    const moon = new StrongSwan({
      netns: pair.a.ns,
      connections: [
        {
          name: 'host-host',
          localAddrs: [pair.a[key]],
          remoteAddrs: [pair.b[key]],
          proposals: 'aes128gcm16-prfsha384-ecp384bp',
          localId: 'moon.ikev2.test',
          remoteId: 'sun.ikev2.test',
          certPem: moonCert.certificatePem,
          keyPem: moonCert.privateKeyPem!,
          caPem: ca.certificatePem,
          children: [{ name: 'host-host', mode, espProposals: 'aes128gcm16-ecp384bp', localTs: ['dynamic'], remoteTs: ['dynamic'] }],
        },
      ],
    });
    const sun = new TunsecDaemon(
      pair.b.ns,
      tunsecYaml({
        name: 'host-host',
        local: pair.b[key],
        remote: pair.a[key],
        localId: 'sun.ikev2.test',
        remoteId: 'moon.ikev2.test',
        startAction: initiator === 'tunsec' ? 'start' : 'none',
        mode,
      }),
      credentialFiles(ca.certificatePem, sunCert),
    );
    return { moon, sun };
  }

  async function expectSameSas(moon: StrongSwan, sun: TunsecDaemon) {
    const child = await sun.event('child_established');
    const ike = await sun.event('ike_established');
    const sas = await moon.listSas();
    const moonIke = sas['host-host'] as Record<string, ViciValue>;
    expect(moonIke.state).toBe('ESTABLISHED');
    expect(moonIke['encr-alg']).toBe('AES_GCM_16');
    expect(moonIke['encr-keysize']).toBe('128');
    expect(moonIke['prf-alg']).toBe('PRF_HMAC_SHA2_384');
    expect(moonIke['dh-group']).toBe('ECP_384_BP');
    expect([moonIke['initiator-spi'], moonIke['responder-spi']]).toEqual([ike.spi_i, ike.spi_r]);
    expect(ike.proposal).toBe('aes128gcm16-prfsha384-ecp384bp');
    const moonChild = childOf(sas);
    expect(moonChild.state).toBe('INSTALLED');
    expect(moonChild.mode).toBe('TUNNEL');
    expect(moonChild.encap).toBe('yes');
    expect(moonChild['encr-alg']).toBe('AES_GCM_16');
    // strongSwan's inbound SPI is tunsec's outbound one and vice versa.
    expect(moonChild['spi-in']).toBe(child.spi_out);
    expect(moonChild['spi-out']).toBe(child.spi_in);
    expect(child.encap).toBe(true);
    expect(child.mode).toBe('tunnel');
  }

  it('tunsec initiates, strongSwan responds: IKE and CHILD SAs with the same SPIs and algorithms on both sides', async () => {
    const { moon, sun } = await run('tunsec');
    try {
      await moon.start();
      await sun.start();
      await expectSameSas(moon, sun);
      // RFC 7383: both IKE_AUTH messages were fragmented: strongSwan reassembled tunsec's, tunsec strongSwan's.
      expect(moon.log()).toMatch(/received fragment #\d of \d/);
      expect(sun.text()).toMatch(/IKE_AUTH 1 reassembled from [2-9] fragments/);
    } finally {
      await sun.stop();
      await moon.stop();
    }
  });

  it('strongSwan initiates, tunsec responds: IKE and CHILD SAs with the same SPIs and algorithms on both sides', async () => {
    const { moon, sun } = await run('strongswan');
    try {
      await moon.start();
      await sun.start();
      await sun.event('daemon_started');
      const r = await moon.initiate('host-host');
      expect(r.code, r.stdout + r.stderr + sun.text()).toBe(0);
      await expectSameSas(moon, sun);
      // strongSwan deletes the CHILD_SA: tunsec removes its pair and answers with its own Delete.
      const t = await moon.swanctl(['--terminate', '--child', 'host-host', '--timeout', '10']);
      expect(t.code, t.stdout + t.stderr).toBe(0);
      expect(t.stdout).toMatch(/closing CHILD_SA host-host\{1\}/);
      const after = (await moon.listSas())['host-host'] as Record<string, ViciValue>;
      expect(Object.keys((after['child-sas'] as Record<string, ViciValue> | undefined) ?? {})).toHaveLength(0);
      expect(sun.text()).toMatch(/CHILD_SA host-host\{\d+\} deleted by the peer/);
    } finally {
      await sun.stop();
      await moon.stop();
    }
  });

  it('transport mode toward libipsec: strongSwan refuses the CHILD_SA, the IKE SA stays up and nothing crashes', async () => {
    const { moon, sun } = await run('tunsec', 'transport');
    try {
      await moon.start();
      await sun.start();
      await sun.event('ike_established');
      await sun.event('child_failed');
      const failed = sun.lines.find((l) => l.event === 'child_failed')!;
      expect(String(failed.reason)).toContain('NO_PROPOSAL_CHOSEN');
      const sas = await moon.listSas();
      expect((sas['host-host'] as Record<string, ViciValue>).state).toBe('ESTABLISHED');
      expect(sun.lines.some((l) => l.level === 'error')).toBe(false);
    } finally {
      await sun.stop();
      await moon.stop();
    }
  });
});
