/**
 * Ed25519 certificates (RFC 8420) and intermediate CAs with a real
 * strongSwan 5.9.8 (kernel-libipsec, tunnel mode, ESP-in-UDP, own netns),
 * both roles, the mission's proposal aes128gcm16-prfsha384-ecp384bp.
 *
 * The certificates come from src/pki/issue.ts: an Ed25519 root, Ed25519
 * end entities, and an Ed25519 intermediate for the chain tests. strongSwan
 * loads the keys as PKCS#8 PEM and the intermediates from swanctl/x509ca.
 * strongSwan missing is a failure, never a skip.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCa, issueCertificate, issueIntermediate, type Issued } from '../../src/pki/issue.js';
import { NetnsPair } from '../support/netns.js';
import { waitFor } from '../support/proc.js';
import { StrongSwan, requireStrongSwan, type ViciValue } from '../support/strongswan.js';
import { TunsecDaemon, tunsecYaml } from './tunsec-daemon.js';

requireStrongSwan();

const PROPOSAL = 'aes128gcm16-prfsha384-ecp384bp';
const root = createCa({ subject: 'C=CH, O=tunsec interop, CN=tunsec Ed25519 Root CA', key: 'ed25519' });
const intermediate = issueIntermediate(root, { subject: 'C=CH, O=tunsec interop, CN=tunsec Ed25519 Intermediate CA', key: 'ed25519' });

describe('Ed25519 certificates and intermediate CAs with strongSwan 5.9.8 (RFC 8420)', () => {
  let pair: NetnsPair;

  beforeAll(async () => {
    pair = await NetnsPair.create('te');
  });
  afterAll(async () => {
    await pair?.destroy();
  });

  const host = (issuer: Issued, name: 'moon' | 'sun', ip: string): Issued =>
    issueCertificate(issuer, { subject: `C=CH, O=tunsec interop, CN=${name}`, key: 'ed25519', subjectAltNames: { dns: [`${name}.ikev2.test`], ip: [ip] } });

  /**
   * moon = strongSwan (netns a), sun = tunsec (netns b). `moonCas` goes to
   * strongSwan's x509ca (the first is what it trusts the peer with, the rest
   * it holds as intermediates); `sunCacerts` is tunsec's authorities.cacerts.
   */
  function peers(o: { initiator: 'tunsec' | 'strongswan'; moonCert: Issued; sunCert: Issued; moonCas: Issued[]; sunCacerts: Issued[] }) {
    const [trusted, ...held] = o.moonCas;
    const moon = new StrongSwan({
      netns: pair.a.ns,
      connections: [
        {
          name: 'host-host',
          localAddrs: [pair.a.ip4],
          remoteAddrs: [pair.b.ip4],
          proposals: PROPOSAL,
          localId: 'moon.ikev2.test',
          remoteId: 'sun.ikev2.test',
          certPem: o.moonCert.certificatePem,
          keyPem: o.moonCert.privateKeyPem!,
          caPem: trusted!.certificatePem,
          extraCaPems: held.map((c) => c.certificatePem),
          children: [{ name: 'host-host', mode: 'tunnel', espProposals: 'aes128gcm16-ecp384bp', localTs: ['dynamic'], remoteTs: ['dynamic'] }],
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
        startAction: o.initiator === 'tunsec' ? 'start' : 'none',
        mode: 'tunnel',
      }),
      {
        // One PEM bundle: every certificate in it is loaded from authorities.cacerts.
        'ca.pem': o.sunCacerts.map((c) => c.certificatePem).join(''),
        'cert.pem': o.sunCert.certificatePem,
        'key.pem': o.sunCert.privateKeyPem!,
      },
    );
    return { moon, sun };
  }

  async function establish(initiator: 'tunsec' | 'strongswan', moon: StrongSwan, sun: TunsecDaemon): Promise<void> {
    await moon.start();
    await sun.start();
    if (initiator === 'strongswan') {
      await sun.event('daemon_started', 60_000);
      const r = await moon.initiate('host-host');
      expect(r.code, r.stdout + r.stderr + sun.text()).toBe(0);
    }
    await sun.event('child_established', 60_000);
    const ike = await sun.event('ike_established');
    expect(ike.proposal).toBe(PROPOSAL);
    const sas = await moon.listSas();
    const moonIke = sas['host-host'] as Record<string, ViciValue>;
    expect(moonIke.state).toBe('ESTABLISHED');
    expect([moonIke['initiator-spi'], moonIke['responder-spi']]).toEqual([ike.spi_i, ike.spi_r]);
    const children = Object.values(moonIke['child-sas'] as Record<string, Record<string, ViciValue>>);
    expect(children[0]?.state).toBe('INSTALLED');
    expect(children[0]?.encap).toBe('yes');
  }

  it('strongSwan initiates with an Ed25519 certificate: both sides verify Ed25519 AUTH signatures', async () => {
    const { moon, sun } = peers({
      initiator: 'strongswan',
      moonCert: host(root, 'moon', pair.a.ip4),
      sunCert: host(root, 'sun', pair.b.ip4),
      moonCas: [root],
      sunCacerts: [root],
    });
    try {
      await establish('strongswan', moon, sun);
      expect(sun.text()).toContain("authentication of 'moon.ikev2.test' with RFC 7427 signature (Ed25519) successful");
      expect(moon.log()).toMatch(/authentication of 'sun\.ikev2\.test' with ED25519 successful/);
    } finally {
      await sun.stop();
      await moon.stop();
    }
  });

  it('tunsec initiates with Ed25519 to strongSwan: both sides verify Ed25519 AUTH signatures', async () => {
    const { moon, sun } = peers({
      initiator: 'tunsec',
      moonCert: host(root, 'moon', pair.a.ip4),
      sunCert: host(root, 'sun', pair.b.ip4),
      moonCas: [root],
      sunCacerts: [root],
    });
    try {
      await establish('tunsec', moon, sun);
      expect(sun.text()).toContain("authentication of 'moon.ikev2.test' with RFC 7427 signature (Ed25519) successful");
      expect(moon.log()).toMatch(/authentication of 'sun\.ikev2\.test' with ED25519 successful/);
    } finally {
      await sun.stop();
      await moon.stop();
    }
  });

  it('tunsec sends the intermediate it holds only in authorities.cacerts: strongSwan, trusting only the root, authenticates tunsec', async () => {
    const { moon, sun } = peers({
      initiator: 'tunsec',
      moonCert: host(root, 'moon', pair.a.ip4),
      sunCert: host(intermediate, 'sun', pair.b.ip4),
      moonCas: [root],
      sunCacerts: [root, intermediate],
    });
    try {
      await establish('tunsec', moon, sun);
      expect(moon.log()).toMatch(/received issuer cert "C=CH, O=tunsec interop, CN=tunsec Ed25519 Intermediate CA"/);
      expect(moon.log()).toMatch(/authentication of 'sun\.ikev2\.test' with ED25519 successful/);
    } finally {
      await sun.stop();
      await moon.stop();
    }
  });

  it('strongSwan sends the intermediate it holds: tunsec, trusting only the root, authenticates strongSwan', async () => {
    const { moon, sun } = peers({
      initiator: 'strongswan',
      moonCert: host(intermediate, 'moon', pair.a.ip4),
      sunCert: host(root, 'sun', pair.b.ip4),
      moonCas: [root, intermediate],
      sunCacerts: [root],
    });
    try {
      await establish('strongswan', moon, sun);
      expect(sun.text()).toContain("authentication of 'moon.ikev2.test' with RFC 7427 signature (Ed25519) successful");
    } finally {
      await sun.stop();
      await moon.stop();
    }
  });

  it('without the intermediate strongSwan refuses tunsec, and tunsec logs that an intermediate may be missing', async () => {
    const { moon, sun } = peers({
      initiator: 'tunsec',
      moonCert: host(root, 'moon', pair.a.ip4),
      sunCert: host(intermediate, 'sun', pair.b.ip4),
      moonCas: [root],
      sunCacerts: [root],
    });
    try {
      await moon.start();
      await sun.start();
      await waitFor('tunsec to log the AUTHENTICATION_FAILED answer', () => sun.text().includes('peer answered AUTHENTICATION_FAILED'), 20_000);
      expect(sun.text()).toContain('peer answered AUTHENTICATION_FAILED: it did not accept our credentials');
      expect(sun.text()).toContain('an intermediate CA certificate may be missing; list it under authorities.cacerts or local.certs');
      expect(moon.log()).toMatch(/no trusted .*public key found for 'sun\.ikev2\.test'|no issuer certificate found/);
    } finally {
      await sun.stop();
      await moon.stop();
    }
  });
});
