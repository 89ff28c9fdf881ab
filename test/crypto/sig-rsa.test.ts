/**
 * RSA AUTH: method 1 (RFC 7296 §3.8, PKCS#1 v1.5 with SHA-1) and method 14
 * (RFC 7427) with PKCS#1 v1.5 and RSASSA-PSS (RFC 8017 §8.1, MGF1 with the
 * same hash, salt = hash length). Keys: the strongSwan fixture's RSA-2048
 * moon/sun certificates and keys. Published PSS vectors: Project Wycheproof
 * rsa_pss_* (test/vectors/sig-wycheproof-rsa-pss-*.json).
 */
import { createPrivateKey, createPublicKey, createSecretKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  ECDSA_WITH_SHA256,
  RSASSA_PSS_SHA256,
  RSASSA_PSS_SHA384,
  RSASSA_PSS_SHA512,
  SHA1_WITH_RSA_ENCRYPTION,
  SHA256_WITH_RSA_ENCRYPTION,
  SHA384_WITH_RSA_ENCRYPTION,
  SHA512_WITH_RSA_ENCRYPTION,
  SignatureHashAlgorithm,
  encodeDigitalSignatureAuthData,
  parseDigitalSignatureAuthData,
  rsassaPssAlgorithmIdentifier,
  type SignatureAlgorithm,
} from '../../src/crypto/rfc7427.js';
import { SignatureAuthMethod, chooseSignatureAlgorithm, signAuth, verifyAuth } from '../../src/crypto/signature.js';
import { CryptoError } from '../../src/crypto/types.js';
import { demoFile } from '../support/fixture.js';

const hex = (s: string): Buffer => Buffer.from(s, 'hex');
const moonKey = createPrivateKey(readFileSync(demoFile('pki/moon/key.pem')));
const moonCert = new X509Certificate(readFileSync(demoFile('pki/moon/cert.pem')));
const sunCert = new X509Certificate(readFileSync(demoFile('pki/sun/cert.pem')));
const octets = Buffer.from('InitiatorSignedOctets = RealMessage1 | NonceRData | MACedIDForI');

describe('RSA keys of the strongSwan fixture', () => {
  it("moon's certificate carries the public half of moon's RSA-2048 key", () => {
    expect(moonCert.publicKey.asymmetricKeyType).toBe('rsa');
    expect(moonCert.publicKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
    expect(createPublicKey(moonKey).export({ format: 'der', type: 'spki' })).toEqual(moonCert.publicKey.export({ format: 'der', type: 'spki' }));
  });
});

describe('PKCS#1 v1.5 signatures are deterministic (RFC 8017 §8.2)', () => {
  it('method 1 (RSA Digital Signature, SHA-1): the same octets give the same 256-octet signature, which verifies', () => {
    const a = signAuth({ method: SignatureAuthMethod.RSA_DIGITAL_SIGNATURE, privateKey: moonKey, octets });
    const b = signAuth({ method: SignatureAuthMethod.RSA_DIGITAL_SIGNATURE, privateKey: moonKey, octets });
    expect(a.authData).toEqual(b.authData);
    expect(a.authData).toHaveLength(256);
    expect(verifyAuth({ method: 1, publicKey: moonCert.publicKey, octets, authData: a.authData })).toBe(true);
  });

  for (const algorithm of [SHA256_WITH_RSA_ENCRYPTION, SHA384_WITH_RSA_ENCRYPTION, SHA512_WITH_RSA_ENCRYPTION]) {
    it(`method 14 ${algorithm.name}: deterministic, verifies with the certificate's key, and names the algorithm`, () => {
      const a = signAuth({ method: 14, privateKey: moonKey, octets, algorithm });
      const b = signAuth({ method: 14, privateKey: moonKey, octets, hash: algorithm.hashAlgorithm });
      expect(a.authData).toEqual(b.authData);
      expect(parseDigitalSignatureAuthData(a.authData).algorithm).toBe(algorithm);
      expect(verifyAuth({ method: 14, publicKey: moonCert.publicKey, octets, authData: a.authData })).toBe(true);
      expect(verifyAuth({ method: 14, publicKey: sunCert.publicKey, octets, authData: a.authData })).toBe(false);
    });
  }

  it('method 14 defaults to sha256WithRSAEncryption for an RSA key', () => {
    const signed = signAuth({ method: 14, privateKey: moonKey, octets });
    expect(signed.algorithm).toBe(SHA256_WITH_RSA_ENCRYPTION);
  });
});

describe('RSASSA-PSS (RFC 8017 §8.1; RFC 7427 A.4.3 parameters)', () => {
  for (const algorithm of [RSASSA_PSS_SHA256, RSASSA_PSS_SHA384, RSASSA_PSS_SHA512]) {
    it(`${algorithm.name}: randomized (two signatures differ), both verify, tampering is detected`, () => {
      const a = signAuth({ method: 14, privateKey: moonKey, octets, algorithm });
      const b = signAuth({ method: 14, privateKey: moonKey, octets, algorithm });
      expect(a.authData).not.toEqual(b.authData);
      for (const s of [a, b]) expect(verifyAuth({ method: 14, publicKey: moonCert.publicKey, octets, authData: s.authData })).toBe(true);
      expect(verifyAuth({ method: 14, publicKey: moonCert.publicKey, octets: Buffer.from('other'), authData: a.authData })).toBe(false);
    });
  }

  it('a PSS signature made with salt 32 does not verify when the AlgorithmIdentifier claims salt 20', () => {
    const signed = signAuth({ method: 14, privateKey: moonKey, octets, algorithm: RSASSA_PSS_SHA256 });
    const { signature } = parseDigitalSignatureAuthData(signed.authData);
    const salt20: SignatureAlgorithm = { ...RSASSA_PSS_SHA256, saltLength: 20, algorithmIdentifier: rsassaPssAlgorithmIdentifier('sha256', 20) };
    const authData = encodeDigitalSignatureAuthData(salt20, signature);
    expect(verifyAuth({ method: 14, publicKey: moonCert.publicKey, octets, authData })).toBe(false);
  });

  it('an RSA-PSS-only key (id-RSASSA-PSS) signs and verifies with RSASSA-PSS', () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa-pss', { modulusLength: 2048, hashAlgorithm: 'sha256', mgf1HashAlgorithm: 'sha256' });
    const picked = chooseSignatureAlgorithm({ key: privateKey, peerHashes: [2, 3, 4] });
    expect(picked).toBe(RSASSA_PSS_SHA256);
    const signed = signAuth({ method: 14, privateKey, octets, algorithm: picked });
    expect(verifyAuth({ method: 14, publicKey, octets, authData: signed.authData })).toBe(true);
    expect(() => signAuth({ method: 14, privateKey, octets, algorithm: SHA256_WITH_RSA_ENCRYPTION })).toThrow(CryptoError);
  });
});

interface WycheproofPss {
  testGroups: Array<{
    publicKeyDer: string;
    sha: string;
    mgfSha: string;
    sLen: number;
    tests: Array<{ tcId: number; comment: string; flags: string[]; msg: string; sig: string; result: string }>;
  }>;
}

describe('Project Wycheproof RSASSA-PSS verification tests, as method 14 AUTH', () => {
  for (const [file, algorithm] of [
    ['sig-wycheproof-rsa-pss-2048-sha256-mgf1-32.json', RSASSA_PSS_SHA256],
    ['sig-wycheproof-rsa-pss-2048-sha384-mgf1-48.json', RSASSA_PSS_SHA384],
    ['sig-wycheproof-rsa-pss-4096-sha512-mgf1-64.json', RSASSA_PSS_SHA512],
  ] as const) {
    it(`${file}: valid signatures verify, every invalid one (modified padding, PKCS#1 v1.5, …) is false, an empty one a CryptoError`, () => {
      const { testGroups } = JSON.parse(readFileSync(new URL(`../vectors/${file}`, import.meta.url), 'utf8')) as WycheproofPss;
      let valid = 0;
      for (const g of testGroups) {
        expect(`${g.sha}/${g.mgfSha}/${g.sLen}`).toBe(`SHA-${algorithm.digest!.slice(3)}/SHA-${algorithm.digest!.slice(3)}/${algorithm.saltLength}`);
        const publicKey = createPublicKey({ key: hex(g.publicKeyDer), format: 'der', type: 'spki' });
        for (const t of g.tests) {
          const authData = encodeDigitalSignatureAuthData(algorithm, hex(t.sig));
          const label = `tcId ${t.tcId} (${t.comment}, ${t.flags.join(',')})`;
          if (t.sig === '') {
            // No signature at all: the AuthData is malformed (RFC 7427 §3), not merely a bad signature.
            expect(() => verifyAuth({ method: 14, publicKey, octets: hex(t.msg), authData }), label).toThrow(CryptoError);
            continue;
          }
          const got = verifyAuth({ method: 14, publicKey, octets: hex(t.msg), authData });
          expect(got, label).toBe(t.result === 'valid');
          if (t.result === 'valid') valid++;
        }
      }
      expect(valid).toBeGreaterThan(5);
    });
  }
});

describe('tampering and misuse', () => {
  const signed = signAuth({ method: 14, privateKey: moonKey, octets, algorithm: SHA256_WITH_RSA_ENCRYPTION });
  const idLength = 1 + SHA256_WITH_RSA_ENCRYPTION.algorithmIdentifier.length;

  it('every single-bit flip of the signature value gives false', () => {
    for (let i = idLength; i < signed.authData.length; i += 7) {
      for (const bit of [0x01, 0x80]) {
        const bad = Buffer.from(signed.authData);
        bad[i] = bad[i]! ^ bit;
        expect(verifyAuth({ method: 14, publicKey: moonCert.publicKey, octets, authData: bad }), `octet ${i}`).toBe(false);
      }
    }
  });

  it('a truncated or extended RSA signature gives false (RFC 8017 §8.2.2 step 1)', () => {
    expect(verifyAuth({ method: 14, publicKey: moonCert.publicKey, octets, authData: signed.authData.subarray(0, -1) })).toBe(false);
    expect(verifyAuth({ method: 14, publicKey: moonCert.publicKey, octets, authData: Buffer.concat([signed.authData, Buffer.from([0])]) })).toBe(false);
    expect(verifyAuth({ method: 1, publicKey: moonCert.publicKey, octets, authData: Buffer.alloc(10) })).toBe(false);
  });

  it('the signature under another hash than the AlgorithmIdentifier says gives false', () => {
    const { signature } = parseDigitalSignatureAuthData(signed.authData);
    const relabelled = encodeDigitalSignatureAuthData(SHA384_WITH_RSA_ENCRYPTION, signature);
    expect(verifyAuth({ method: 14, publicKey: moonCert.publicKey, octets, authData: relabelled })).toBe(false);
  });

  it('the method-14 signature is not a method-1 signature and vice versa', () => {
    const { signature } = parseDigitalSignatureAuthData(signed.authData);
    expect(verifyAuth({ method: 1, publicKey: moonCert.publicKey, octets, authData: signature })).toBe(false);
  });

  it('an RSA AlgorithmIdentifier with an EC key, and method 1 with an EC key, are CryptoErrors', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    expect(() => verifyAuth({ method: 14, publicKey: ec.publicKey, octets, authData: signed.authData })).toThrow(/needs an RSA key/);
    expect(() => signAuth({ method: 14, privateKey: ec.privateKey, octets, algorithm: SHA256_WITH_RSA_ENCRYPTION })).toThrow(CryptoError);
    expect(() => signAuth({ method: 1, privateKey: ec.privateKey, octets })).toThrow(CryptoError);
    expect(() => verifyAuth({ method: 1, publicKey: ec.publicKey, octets, authData: Buffer.alloc(64) })).toThrow(CryptoError);
  });

  it('an ECDSA AlgorithmIdentifier with an RSA key is a CryptoError', () => {
    expect(() => signAuth({ method: 14, privateKey: moonKey, octets, algorithm: ECDSA_WITH_SHA256 })).toThrow(/needs an EC key/);
  });

  it('a public key for signing, a secret key, an X25519 key and non-signature methods are CryptoErrors', () => {
    expect(() => signAuth({ method: 14, privateKey: moonCert.publicKey, octets })).toThrow(CryptoError);
    expect(() => verifyAuth({ method: 14, publicKey: createSecretKey(Buffer.alloc(32)), octets, authData: signed.authData })).toThrow(CryptoError);
    const x = generateKeyPairSync('x25519');
    expect(() => signAuth({ method: 14, privateKey: x.privateKey, octets })).toThrow(CryptoError);
    expect(() => verifyAuth({ method: 2, publicKey: moonCert.publicKey, octets, authData: signed.authData })).toThrow(CryptoError);
    expect(() => signAuth({ method: 2 as SignatureAuthMethod, privateKey: moonKey, octets })).toThrow(CryptoError);
  });

  it('sha1WithRSAEncryption in method 14 is refused by default (SHA-2 only) and accepted when the caller allows SHA-1', () => {
    const sha1 = signAuth({ method: 14, privateKey: moonKey, octets, algorithm: SHA1_WITH_RSA_ENCRYPTION });
    expect(() => verifyAuth({ method: 14, publicKey: moonCert.publicKey, octets, authData: sha1.authData })).toThrow(/not accepted/);
    expect(verifyAuth({ method: 14, publicKey: moonCert.publicKey, octets, authData: sha1.authData, acceptedHashes: [SignatureHashAlgorithm.SHA1] })).toBe(
      true,
    );
  });

  it('a hash the caller did not announce is refused with CryptoError (RFC 7427 §4)', () => {
    expect(() =>
      verifyAuth({ method: 14, publicKey: moonCert.publicKey, octets, authData: signed.authData, acceptedHashes: [SignatureHashAlgorithm.SHA2_384] }),
    ).toThrow(CryptoError);
  });
});

describe("choosing the method-14 algorithm from the peer's SIGNATURE_HASH_ALGORITHMS (RFC 7427 §4)", () => {
  it("an RSA key with strongSwan's list (sha256 sha384 sha512 identity) picks sha256WithRSAEncryption, or PSS on request", () => {
    expect(chooseSignatureAlgorithm({ key: moonKey, peerHashes: [2, 3, 4, 5] })).toBe(SHA256_WITH_RSA_ENCRYPTION);
    expect(chooseSignatureAlgorithm({ key: moonKey, peerHashes: [2, 3, 4, 5], rsaPss: true })).toBe(RSASSA_PSS_SHA256);
    expect(chooseSignatureAlgorithm({ key: moonCert.publicKey, peerHashes: [4] })).toBe(SHA512_WITH_RSA_ENCRYPTION);
  });

  it('an EC key prefers the hash matching its curve and otherwise takes one the peer sent', () => {
    const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey;
    expect(chooseSignatureAlgorithm({ key: p384, peerHashes: [2, 3, 4] }).name).toBe('ecdsa-with-sha384');
    expect(chooseSignatureAlgorithm({ key: p384, peerHashes: [2] }).name).toBe('ecdsa-with-sha256');
    const bp512 = generateKeyPairSync('ec', { namedCurve: 'brainpoolP512r1' }).privateKey;
    expect(chooseSignatureAlgorithm({ key: bp512, peerHashes: [2, 3, 4] }).name).toBe('ecdsa-with-sha512');
  });

  it('no common hash (only SHA-1, only Identity, nothing, unknown IDs) is a CryptoError', () => {
    for (const peerHashes of [[1], [5], [], [6, 1024]]) {
      expect(() => chooseSignatureAlgorithm({ key: moonKey, peerHashes }), JSON.stringify(peerHashes)).toThrow(CryptoError);
    }
  });
});
