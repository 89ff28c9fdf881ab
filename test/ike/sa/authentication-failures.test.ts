/**
 * Certificate authentication failures between two tunsec peers: each one is
 * refused with AUTHENTICATION_FAILED, the responder logs one line that says
 * what was wrong, no CHILD SA is installed anywhere, and nothing crashes.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createCa, issueCertificate, issueCrl, type Issued } from '../../../src/pki/issue.js';
import { TrustStore } from '../../../src/pki/index.js';
import { freePorts, peerConfig, startPeer, testPki, type TestPeer, type TestPki } from '../support/peers.js';

describe('IKE_AUTH refuses bad peer certificates with one clear log line (RFC 7296 §2.21.2)', () => {
  const peers: TestPeer[] = [];
  afterEach(() => {
    for (const p of peers.splice(0)) p.stop();
  });

  /** moon (initiator) presents `moonCert`; sun trusts `pki.ca` only, with `sunOverrides`. */
  async function attempt(pki: TestPki, moonCert: Issued, moonId: string, sunOverrides: Parameters<typeof peerConfig>[4] = {}) {
    const ports = await freePorts();
    const sunCert = pki.host('sun.tunsec.test');
    const moon = await startPeer('127.0.0.1', ports, [
      { config: peerConfig(pki, moonCert, moonId, 'sun.tunsec.test'), localAddrs: ['127.0.0.1'], remoteAddrs: ['127.0.0.2'], remotePort: ports.ike },
    ]);
    const sun = await startPeer('127.0.0.2', ports, [
      {
        config: peerConfig(pki, sunCert, 'sun.tunsec.test', undefined, sunOverrides),
        localAddrs: ['127.0.0.2'],
        remoteAddrs: ['127.0.0.1'],
        remotePort: ports.ike,
      },
    ]);
    peers.push(moon, sun);
    const outcome = await moon.manager.initiate('host-host').then(
      () => 'established',
      (err: Error) => err.message,
    );
    expect(moon.sad.listSas()).toHaveLength(0);
    expect(sun.sad.listSas()).toHaveLength(0);
    expect(sun.manager.counters.internalErrors).toBe(0);
    return { outcome, sunLog: sun.log.text() };
  }

  it('a certificate from an untrusted CA is refused: "no trusted CA for issuer …"', async () => {
    const pki = testPki();
    const evil = createCa({ subject: 'C=CH, O=Evil, CN=Evil CA', key: 'p256' });
    const cert = issueCertificate(evil, { subject: 'C=CH, O=Evil, CN=moon', key: 'p256', subjectAltNames: { dns: ['moon.tunsec.test'] } });
    const { outcome, sunLog } = await attempt(pki, cert, 'moon.tunsec.test');
    expect(outcome).toContain('AUTHENTICATION_FAILED');
    expect(sunLog).toContain("no trusted CA for issuer 'C=CH, O=Evil, CN=Evil CA'");
  });

  it('an expired certificate is refused: "peer cert … expired on …"', async () => {
    const pki = testPki();
    const cert = pki.host('moon.tunsec.test', { notAfter: new Date(Date.now() - 86400_000) });
    const { outcome, sunLog } = await attempt(pki, cert, 'moon.tunsec.test');
    expect(outcome).toContain('AUTHENTICATION_FAILED');
    expect(sunLog).toMatch(/peer cert 'C=CH, O=tunsec test, CN=moon.tunsec.test' expired on \d{4}-/);
  });

  it('a certificate revoked by the CA\'s CRL is refused: "certificate … revoked at …"', async () => {
    const pki = testPki();
    const cert = pki.host('moon.tunsec.test');
    const crl = issueCrl(pki.ca, { revoked: [{ serialNumber: cert.certificate.serialNumber, reason: 'keyCompromise' }] });
    const sunTrustWithCrl = new TrustStore();
    sunTrustWithCrl.addTrustAnchor(pki.ca.certificate);
    sunTrustWithCrl.addCrl(crl.crl);
    const { outcome, sunLog } = await attempt(pki, cert, 'moon.tunsec.test', { trust: sunTrustWithCrl });
    expect(outcome).toContain('AUTHENTICATION_FAILED');
    expect(sunLog).toMatch(/revoked at .*\(keyCompromise\)/);
  });

  it('with strictcrl a certificate without a CRL from its issuer is refused: "no valid CRL for …"', async () => {
    const pki = testPki();
    const { outcome, sunLog } = await attempt(pki, pki.host('moon.tunsec.test'), 'moon.tunsec.test', { strictCrl: true });
    expect(outcome).toContain('AUTHENTICATION_FAILED');
    expect(sunLog).toContain('no valid CRL for');
  });

  it('an identity the certificate does not carry is refused: "ID … not in certificate SANs […]"', async () => {
    const pki = testPki();
    const { outcome, sunLog } = await attempt(pki, pki.host('moon.tunsec.test'), 'mars.tunsec.test');
    expect(outcome).toContain('AUTHENTICATION_FAILED');
    expect(sunLog).toContain('ID mars.tunsec.test not in certificate SANs [DNS:moon.tunsec.test]');
  });
});
