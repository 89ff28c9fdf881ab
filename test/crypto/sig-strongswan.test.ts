/**
 * AUTH signatures over the octets a real strongSwan 5.9.8 exchange signed
 * (test/fixtures/strongswan-5.9.8-ecp384bp-demo: charon logs at level 4 dump
 * "octets = message + nonce + prf(Sk_px, IDx')", RFC 7296 §2.15). Both peers
 * used AUTH method 14 with sha256WithRSAEncryption (moon's log:
 * "authentication of 'moon.ikev2.test' (myself) with RSA_EMSA_PKCS1_SHA2_256").
 * The comparison with the AUTH payloads on the wire belongs with the codec.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SHA256_WITH_RSA_ENCRYPTION, parseDigitalSignatureAuthData } from '../../src/crypto/rfc7427.js';
import { SignatureAuthMethod, chooseSignatureAlgorithm, signAuth, verifyAuth } from '../../src/crypto/signature.js';
import { dumpsLabelled } from '../support/charon-log.js';
import { demoFile } from '../support/fixture.js';

const LABEL = "octets = message + nonce + prf(Sk_px, IDx')";
const moonLog = dumpsLabelled(demoFile('moon-initiator.charon.log'), LABEL);
const sunLog = dumpsLabelled(demoFile('sun-responder.charon.log'), LABEL);

const peers = {
  moon: {
    key: createPrivateKey(readFileSync(demoFile('pki/moon/key.pem'))),
    cert: new X509Certificate(readFileSync(demoFile('pki/moon/cert.pem'))),
    // moon (initiator) signs the first octets in its log: IKE_SA_INIT request ‖ Nr ‖ prf(SK_pi, IDi')
    octets: moonLog[0]!,
  },
  sun: {
    key: createPrivateKey(readFileSync(demoFile('pki/sun/key.pem'))),
    cert: new X509Certificate(readFileSync(demoFile('pki/sun/cert.pem'))),
    // sun (responder) signs the second: IKE_SA_INIT response ‖ Ni ‖ prf(SK_pr, IDr')
    octets: sunLog[1]!,
  },
};

describe('AUTH over the octets of the recorded strongSwan exchange', () => {
  it('both logs dump the same two octet strings (what one side signs, the other verifies)', () => {
    expect(moonLog).toHaveLength(2);
    expect(sunLog).toHaveLength(2);
    expect(moonLog[0]).toEqual(sunLog[0]);
    expect(moonLog[1]).toEqual(sunLog[1]);
    expect(peers.moon.octets).toHaveLength(376);
    expect(peers.sun.octets).toHaveLength(409);
  });

  for (const [name, peer] of Object.entries(peers)) {
    it(`${name}'s octets signed with ${name}'s key via method 14 sha256WithRSAEncryption are deterministic and verify with ${name}'s certificate`, () => {
      // strongSwan announced sha256 sha384 sha512 identity; RSA → sha256WithRSAEncryption as strongSwan chose.
      const algorithm = chooseSignatureAlgorithm({ key: peer.key, peerHashes: [2, 3, 4, 5] });
      expect(algorithm).toBe(SHA256_WITH_RSA_ENCRYPTION);
      const first = signAuth({ method: SignatureAuthMethod.DIGITAL_SIGNATURE, privateKey: peer.key, octets: peer.octets, algorithm });
      const second = signAuth({ method: SignatureAuthMethod.DIGITAL_SIGNATURE, privateKey: peer.key, octets: peer.octets, algorithm });
      expect(first.authData).toEqual(second.authData);
      // 1 + 15 + 256: ASN.1 Length ‖ RFC 7427 A.1.2 ‖ RSA-2048 signature
      expect(first.authData).toHaveLength(272);
      expect(first.authData[0]).toBe(15);
      expect(parseDigitalSignatureAuthData(first.authData).algorithm).toBe(SHA256_WITH_RSA_ENCRYPTION);
      expect(verifyAuth({ method: 14, publicKey: peer.cert.publicKey, octets: peer.octets, authData: first.authData })).toBe(true);
    });
  }

  it("moon's signature does not verify over sun's octets or with sun's certificate", () => {
    const signed = signAuth({ method: 14, privateKey: peers.moon.key, octets: peers.moon.octets });
    expect(verifyAuth({ method: 14, publicKey: peers.moon.cert.publicKey, octets: peers.sun.octets, authData: signed.authData })).toBe(false);
    expect(verifyAuth({ method: 14, publicKey: peers.sun.cert.publicKey, octets: peers.moon.octets, authData: signed.authData })).toBe(false);
  });
});
