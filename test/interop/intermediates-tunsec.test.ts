/**
 * Two `tunsec daemon` processes in their own network namespaces: moon's
 * Ed25519 certificate is issued by an intermediate CA that moon lists only
 * under `authorities.cacerts` (next to the root), not in `local.certs`; sun
 * trusts only the root. moon sends the intermediate as an extra CERT payload
 * and sun authenticates it; without the intermediate in moon's cacerts both
 * logs say an intermediate may be missing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCa, issueCertificate, issueIntermediate, type Issued } from '../../src/pki/issue.js';
import { NetnsPair } from '../support/netns.js';
import { waitFor } from '../support/proc.js';
import { TunsecDaemon, tunsecYaml } from './tunsec-daemon.js';

const root = createCa({ subject: 'C=CH, O=tunsec interop, CN=tunsec Root CA', key: 'ed25519' });
const intermediate = issueIntermediate(root, { subject: 'C=CH, O=tunsec interop, CN=tunsec Intermediate CA', key: 'ed25519' });

describe('an intermediate CA listed only under authorities.cacerts, between tunsec daemons', () => {
  let pair: NetnsPair;
  let moonCert: Issued;
  let sunCert: Issued;

  beforeAll(async () => {
    pair = await NetnsPair.create('tm');
    moonCert = issueCertificate(intermediate, { subject: 'C=CH, O=tunsec interop, CN=moon', key: 'ed25519', subjectAltNames: { dns: ['moon.tunsec.test'] } });
    sunCert = issueCertificate(root, { subject: 'C=CH, O=tunsec interop, CN=sun', key: 'ed25519', subjectAltNames: { dns: ['sun.tunsec.test'] } });
  });
  afterAll(async () => {
    await pair?.destroy();
  });

  const daemon = (name: 'moon' | 'sun', cacerts: Issued[], cert: Issued): TunsecDaemon => {
    const [me, other, peer] = name === 'moon' ? [pair.a, pair.b, 'sun'] : [pair.b, pair.a, 'moon'];
    return new TunsecDaemon(
      me.ns,
      tunsecYaml({
        name: 'host-host',
        local: me.ip4,
        remote: other.ip4,
        localId: `${name}.tunsec.test`,
        remoteId: `${peer}.tunsec.test`,
        mode: 'transport',
        startAction: name === 'moon' ? 'start' : 'none',
        daemonExtra: ['datapath: none'],
      }),
      { 'ca.pem': cacerts.map((c) => c.certificatePem).join(''), 'cert.pem': cert.certificatePem, 'key.pem': cert.privateKeyPem! },
    );
  };

  it('moon sends the intermediate from its cacerts; sun, trusting only the root, authenticates moon', async () => {
    const sun = daemon('sun', [root], sunCert);
    const moon = daemon('moon', [root, intermediate], moonCert);
    try {
      await sun.start();
      await sun.event('daemon_started', 60_000);
      await moon.start();
      await moon.event('child_established', 60_000);
      await sun.event('child_established');
      expect(sun.text()).toContain("authentication of 'moon.tunsec.test' with RFC 7427 signature (Ed25519) successful");
    } finally {
      await moon.stop();
      await sun.stop();
    }
  });

  it('without the intermediate anywhere on moon, sun refuses it and both logs point at a missing intermediate', async () => {
    const sun = daemon('sun', [root], sunCert);
    const moon = daemon('moon', [root], moonCert);
    try {
      await sun.start();
      await sun.event('daemon_started', 60_000);
      await moon.start();
      await waitFor('moon to log the AUTHENTICATION_FAILED answer', () => moon.text().includes('peer answered AUTHENTICATION_FAILED'), 60_000);
      expect(moon.text()).toContain('an intermediate CA certificate may be missing; list it under authorities.cacerts or local.certs');
      expect(sun.text()).toContain(
        "no trusted CA for issuer 'C=CH, O=tunsec interop, CN=tunsec Intermediate CA' (the peer sent 0 CA certificates with its own;",
      );
    } finally {
      await moon.stop();
      await sun.stop();
    }
  });
});
