/**
 * Certificate authentication with Ed25519 / Ed448 (RFC 8420) and through
 * intermediate CAs between two tunsec peers over loopback: what is announced
 * in SIGNATURE_HASH_ALGORITHMS, what goes into AUTH, and the one log line
 * each side writes when it does not work.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createCa, issueCertificate, issueIntermediate, type Issued, type KeyAlgorithm } from '../../../src/pki/issue.js';
import { TrustStore } from '../../../src/pki/index.js';
import { NotifyType, PayloadType, decodeMessage } from '../../../src/ike/codec/index.js';
import { freePorts, peerConfig, startPeer, stopPeers, type TestPeer, type TestPki } from '../support/peers.js';

const SIGNATURE_HASHES_WITH_IDENTITY = '0002000300040005';

describe('Ed25519 / Ed448 certificates and intermediates between tunsec peers (RFC 8420, RFC 7296 §3.6)', () => {
  const peers: TestPeer[] = [];
  afterEach(() => stopPeers(peers));

  function pkiWith(root: Issued, issuer: Issued = root): TestPki & { host(name: string, extra?: { key?: KeyAlgorithm }): Issued } {
    return {
      ca: root,
      host: (name, extra = {}) =>
        issueCertificate(issuer, { subject: `C=CH, O=tunsec test, CN=${name}`, key: extra.key ?? 'p256', subjectAltNames: { dns: [name] } }),
    };
  }

  async function run(
    pki: TestPki,
    moonCert: Issued,
    sunCert: Issued,
    opts: { moon?: Parameters<typeof peerConfig>[4]; sun?: Parameters<typeof peerConfig>[4]; sunRewrite?: (b: Buffer) => void } = {},
  ) {
    const ports = await freePorts();
    const moon = await startPeer('127.0.0.1', ports, [
      {
        config: peerConfig(pki, moonCert, 'moon.tunsec.test', 'sun.tunsec.test', opts.moon),
        localAddrs: ['127.0.0.1'],
        remoteAddrs: ['127.0.0.2'],
        remotePort: ports.ike,
      },
    ]);
    const rewrite = opts.sunRewrite;
    const sun = await startPeer(
      '127.0.0.2',
      ports,
      [
        {
          config: peerConfig(pki, sunCert, 'sun.tunsec.test', 'moon.tunsec.test', opts.sun),
          localAddrs: ['127.0.0.2'],
          remoteAddrs: ['127.0.0.1'],
          remotePort: ports.ike,
        },
      ],
      rewrite ? { dropOutgoing: (b) => (rewrite(b), false) } : {},
    );
    peers.push(moon, sun);
    const outcome = await moon.manager.initiate('host-host').then(
      () => 'established',
      (err: Error) => err.message,
    );
    return { moon, sun, outcome };
  }

  it('moon and sun with Ed25519 certificates from an Ed25519 CA authenticate each other with RFC 8420 signatures', async () => {
    const root = createCa({ subject: 'C=CH, O=tunsec test, CN=Ed25519 Root', key: 'ed25519' });
    const pki = pkiWith(root);
    const { moon, sun, outcome } = await run(pki, pki.host('moon.tunsec.test', { key: 'ed25519' }), pki.host('sun.tunsec.test', { key: 'ed25519' }));
    expect(outcome, moon.log.text() + sun.log.text()).toBe('established');
    expect(sun.log.text()).toContain("authentication of 'moon.tunsec.test' with RFC 7427 signature (Ed25519) successful");
    expect(moon.log.text()).toContain("authentication of 'sun.tunsec.test' with RFC 7427 signature (Ed25519) successful");
    // Both IKE_SA_INIT messages announce Identity (5) in SIGNATURE_HASH_ALGORITHMS.
    for (const peer of [moon, sun]) {
      const init = decodeMessage(peer.sent[0]!.bytes);
      const hashes = init.payloads.find((p) => p.type === PayloadType.NOTIFY && p.notifyType === NotifyType.SIGNATURE_HASH_ALGORITHMS);
      expect(hashes?.type === PayloadType.NOTIFY ? Buffer.from(hashes.data).toString('hex') : undefined).toBe(SIGNATURE_HASHES_WITH_IDENTITY);
    }
  });

  it('an Ed448 initiator and an ECDSA responder under an ECDSA root authenticate each other', async () => {
    const root = createCa({ subject: 'C=CH, O=tunsec test, CN=P-256 Root', key: 'p256' });
    const pki = pkiWith(root);
    const { moon, sun, outcome } = await run(pki, pki.host('moon.tunsec.test', { key: 'ed448' }), pki.host('sun.tunsec.test', { key: 'p384' }));
    expect(outcome, moon.log.text() + sun.log.text()).toBe('established');
    expect(sun.log.text()).toContain('with RFC 7427 signature (Ed448) successful');
    expect(moon.log.text()).toContain('with RFC 7427 signature (ecdsa-with-sha384) successful');
  });

  it('a responder that does not announce Identity (5): the Ed25519 initiator logs that the peer refuses its signature scheme, not that its credentials are wrong', async () => {
    const root = createCa({ subject: 'C=CH, O=tunsec test, CN=Ed25519 Root', key: 'ed25519' });
    const pki = pkiWith(root);
    // sun's IKE_SA_INIT response announces [2, 3, 4, 4]: SHA-2 only, as a peer without RFC 8420 would.
    const sunRewrite = (b: Buffer): void => {
      const at = b.indexOf(Buffer.from(SIGNATURE_HASHES_WITH_IDENTITY, 'hex'));
      if (at >= 0 && b[18] === 34) b[at + 7] = 4;
    };
    const { moon, sun, outcome } = await run(pki, pki.host('moon.tunsec.test', { key: 'ed25519' }), pki.host('sun.tunsec.test'), { sunRewrite });
    expect(outcome).not.toBe('established');
    const text = moon.log.text();
    expect(text).toContain(
      'the peer refuses our signature scheme: our Ed25519 key needs hash algorithm 5 (Identity, RFC 8420) in SIGNATURE_HASH_ALGORITHMS, the peer announced [2, 3, 4, 4]; our credentials are not at fault',
    );
    expect(text).not.toMatch(/did not accept our credentials/);
    expect(moon.manager.counters.internalErrors).toBe(0);
    expect(sun.manager.counters.internalErrors).toBe(0);
  });

  it('a responder that announces no SIGNATURE_HASH_ALGORITHMS at all: the Ed25519 initiator says the peer refuses its scheme (no classic method exists)', async () => {
    const root = createCa({ subject: 'C=CH, O=tunsec test, CN=Ed25519 Root', key: 'ed25519' });
    const pki = pkiWith(root);
    // The notify becomes a private-use status type (40960) that the initiator ignores (RFC 7296 §3.10.1).
    const sunRewrite = (b: Buffer): void => {
      const at = b.indexOf(Buffer.from(SIGNATURE_HASHES_WITH_IDENTITY, 'hex'));
      if (at >= 2 && b[18] === 34) b.writeUInt16BE(0xa000, at - 2);
    };
    const { moon, outcome } = await run(pki, pki.host('moon.tunsec.test', { key: 'ed25519' }), pki.host('sun.tunsec.test'), { sunRewrite });
    expect(outcome).not.toBe('established');
    expect(moon.log.text()).toContain(
      'the peer refuses our signature scheme: it announced no SIGNATURE_HASH_ALGORITHMS (RFC 7427), which our Ed25519 key needs (RFC 8420 signs only with AUTH method 14 and hash Identity); our credentials are not at fault',
    );
  });

  it('a leaf under an intermediate authenticates to a peer that trusts only the root when the intermediate is sent', async () => {
    const root = createCa({ subject: 'C=CH, O=tunsec test, CN=Root', key: 'ed25519' });
    const int = issueIntermediate(root, { subject: 'C=CH, O=tunsec test, CN=Intermediate', key: 'ed25519' });
    const pki = pkiWith(root, int);
    const sunTrust = new TrustStore();
    sunTrust.addTrustAnchor(root.certificate);
    const { moon, sun, outcome } = await run(
      pki,
      pki.host('moon.tunsec.test', { key: 'ed25519' }),
      issueCertificate(root, { subject: 'CN=sun', subjectAltNames: { dns: ['sun.tunsec.test'] } }),
      {
        moon: { intermediates: [int.certificate] },
        sun: { trust: sunTrust },
      },
    );
    expect(outcome, moon.log.text() + sun.log.text()).toBe('established');
  });

  it('without the intermediate the peer fails on the chain and both logs hint that an intermediate may be missing', async () => {
    const root = createCa({ subject: 'C=CH, O=tunsec test, CN=Root', key: 'p256' });
    const int = issueIntermediate(root, { subject: 'C=CH, O=tunsec test, CN=Intermediate', key: 'p256' });
    const pki = pkiWith(root, int);
    const { moon, sun, outcome } = await run(
      pki,
      pki.host('moon.tunsec.test'),
      issueCertificate(root, { subject: 'CN=sun', subjectAltNames: { dns: ['sun.tunsec.test'] } }),
    );
    expect(outcome).toContain('AUTHENTICATION_FAILED');
    expect(sun.log.text()).toContain(
      "no trusted CA for issuer 'C=CH, O=tunsec test, CN=Intermediate' (the peer sent 0 CA certificates with its own; if that issuer is an intermediate CA, the peer did not send it and it is not in authorities.cacerts)",
    );
    expect(moon.log.text()).toContain(
      "peer answered AUTHENTICATION_FAILED: it did not accept our credentials (our chain as sent ends at 'C=CH, O=tunsec test, CN=moon.tunsec.test', issued by 'C=CH, O=tunsec test, CN=Intermediate': if the peer trusts only a root CA, an intermediate CA certificate may be missing; list it under authorities.cacerts or local.certs)",
    );
  });
});
