/**
 * ECDSA AUTH: methods 9, 10, 11 (RFC 4754, signature r ‖ s) and method 14
 * with ecdsa-with-sha* (RFC 7427, DER ECDSA-Sig-Value).
 * Vectors: RFC 4754 §8 (test/vectors/sig-rfc4754.json) and Project Wycheproof
 * ECDSA tests (test/vectors/sig-wycheproof-ecdsa-*.json).
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { p256, p384, p521 } from '@noble/curves/nist.js';
import {
  ECDSA_WITH_SHA256,
  ECDSA_WITH_SHA384,
  ECDSA_WITH_SHA512,
  derTlv,
  derUnsignedIntegerContent,
  encodeDigitalSignatureAuthData,
  type SignatureAlgorithm,
} from '../../src/crypto/rfc7427.js';
import { SignatureAuthMethod, signAuth, verifyAuth } from '../../src/crypto/signature.js';
import { CryptoError } from '../../src/crypto/types.js';
import { octetsToBigInt } from '../../src/crypto/ke/octets.js';

const hex = (s: string): Buffer => Buffer.from(s, 'hex');
const vectors = <T>(name: string): T => JSON.parse(readFileSync(new URL(`../vectors/${name}`, import.meta.url), 'utf8')) as T;
const b64u = (b: Buffer): string => b.toString('base64url');

interface Rfc4754Vector {
  section: string;
  method: SignatureAuthMethod;
  curve: 'P-256' | 'P-384' | 'P-521';
  hash: 'sha256' | 'sha384' | 'sha512';
  w: string;
  gwx: string;
  gwy: string;
  k: string;
  message: string;
  r: string;
  s: string;
}
const { vectors: rfc4754 } = vectors<{ vectors: Rfc4754Vector[] }>('sig-rfc4754.json');
const NOBLE = { 'P-256': p256, 'P-384': p384, 'P-521': p521 } as const;
const METHOD_14_ALGORITHM: Record<string, SignatureAlgorithm> = {
  sha256: ECDSA_WITH_SHA256,
  sha384: ECDSA_WITH_SHA384,
  sha512: ECDSA_WITH_SHA512,
};

function keys(v: Rfc4754Vector): { publicKey: KeyObject; privateKey: KeyObject } {
  const jwk = { kty: 'EC', crv: v.curve, x: b64u(hex(v.gwx)), y: b64u(hex(v.gwy)) };
  return {
    publicKey: createPublicKey({ key: jwk, format: 'jwk' }),
    privateKey: createPrivateKey({ key: { ...jwk, d: b64u(hex(v.w)) }, format: 'jwk' }),
  };
}

/** ECDSA-Sig-Value (RFC 3279 §2.2.3) from r and s. */
function ecdsaSigValue(r: Buffer, s: Buffer): Buffer {
  return derTlv(0x30, Buffer.concat([derTlv(0x02, derUnsignedIntegerContent(r)), derTlv(0x02, derUnsignedIntegerContent(s))]));
}

describe('RFC 4754 §8 ECDSA test vectors (AUTH methods 9, 10, 11)', () => {
  for (const v of rfc4754) {
    const { publicKey, privateKey } = keys(v);
    const message = hex(v.message);
    const rs = hex(v.r + v.s);

    it(`RFC 4754 §${v.section} (${v.curve}): the published r ‖ s verifies as method ${v.method} over "abc"`, () => {
      expect(verifyAuth({ method: v.method, publicKey, octets: message, authData: rs })).toBe(true);
    });

    it(`RFC 4754 §${v.section} (${v.curve}): k reproduces r and s, each ${rs.length / 2} octets (the fixed-width encoding)`, () => {
      const { Point } = NOBLE[v.curve];
      const { Fn } = Point;
      const k = octetsToBigInt(hex(v.k));
      const w = octetsToBigInt(hex(v.w));
      const e = octetsToBigInt(createHash(v.hash).update(message).digest()); // hash no longer than n: no truncation
      const r = Fn.create(Point.BASE.multiply(k).toAffine().x);
      const s = Fn.mul(Fn.inv(k), Fn.add(Fn.create(e), Fn.mul(r, w)));
      expect(r).toBe(octetsToBigInt(hex(v.r)));
      expect(s).toBe(octetsToBigInt(hex(v.s)));
      expect(hex(v.r)).toHaveLength(Point.Fp.BYTES);
      expect(Point.BASE.multiply(w).toAffine()).toEqual({ x: octetsToBigInt(hex(v.gwx)), y: octetsToBigInt(hex(v.gwy)) });
    });

    it(`RFC 4754 §${v.section} (${v.curve}): a tampered signature or message does not verify`, () => {
      for (const i of [0, rs.length / 2 - 1, rs.length / 2, rs.length - 1]) {
        const bad = Buffer.from(rs);
        bad[i] = bad[i]! ^ 0x01;
        expect(verifyAuth({ method: v.method, publicKey, octets: message, authData: bad })).toBe(false);
      }
      expect(verifyAuth({ method: v.method, publicKey, octets: Buffer.from('abd'), authData: rs })).toBe(false);
    });

    it(`RFC 4754 §${v.section} (${v.curve}): the same (r, s) as DER ECDSA-Sig-Value verifies in method 14`, () => {
      const authData = encodeDigitalSignatureAuthData(METHOD_14_ALGORITHM[v.hash]!, ecdsaSigValue(hex(v.r), hex(v.s)));
      expect(verifyAuth({ method: SignatureAuthMethod.DIGITAL_SIGNATURE, publicKey, octets: message, authData })).toBe(true);
    });

    it(`method ${v.method} signs with the RFC 4754 §${v.section} key as r ‖ s and verifies`, () => {
      const signed = signAuth({ method: v.method, privateKey, octets: message });
      expect(signed.authData).toHaveLength(rs.length);
      expect(verifyAuth({ method: v.method, publicKey, octets: message, authData: signed.authData })).toBe(true);
    });

    it(`method ${v.method}: r ‖ s of the wrong length is a CryptoError`, () => {
      for (const bad of [rs.subarray(1), Buffer.concat([rs, Buffer.from([0])]), Buffer.alloc(0)]) {
        expect(() => verifyAuth({ method: v.method, publicKey, octets: message, authData: bad })).toThrow(CryptoError);
      }
    });
  }

  it('a P-384 key used for method 9 (P-256) is a CryptoError, both signing and verifying', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    expect(() => signAuth({ method: SignatureAuthMethod.ECDSA_SHA256_P256, privateKey, octets: Buffer.from('x') })).toThrow(CryptoError);
    expect(() => verifyAuth({ method: SignatureAuthMethod.ECDSA_SHA256_P256, publicKey, octets: Buffer.from('x'), authData: Buffer.alloc(64) })).toThrow(
      /prime256v1/,
    );
  });

  it('an RSA key used for methods 9, 10, 11 is a CryptoError', () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    for (const method of [9, 10, 11] as const) {
      expect(() => signAuth({ method, privateKey, octets: Buffer.from('x') })).toThrow(CryptoError);
      expect(() => verifyAuth({ method, publicKey, octets: Buffer.from('x'), authData: Buffer.alloc(64) })).toThrow(CryptoError);
    }
  });

  it('a brainpoolP256r1 key is not a P-256 key for method 9 (CryptoError)', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'brainpoolP256r1' });
    expect(() => signAuth({ method: SignatureAuthMethod.ECDSA_SHA256_P256, privateKey, octets: Buffer.from('x') })).toThrow(CryptoError);
  });
});

describe('method 14 with ECDSA', () => {
  for (const [curve, algorithm] of [
    ['prime256v1', ECDSA_WITH_SHA256],
    ['secp384r1', ECDSA_WITH_SHA384],
    ['secp521r1', ECDSA_WITH_SHA512],
    ['brainpoolP384r1', ECDSA_WITH_SHA384],
  ] as const) {
    it(`${algorithm.name} with a ${curve} key: AuthData carries the RFC 7427 blob and a DER signature, and verifies`, () => {
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: curve });
      const octets = Buffer.from('InitiatorSignedOctets');
      const signed = signAuth({ method: SignatureAuthMethod.DIGITAL_SIGNATURE, privateKey, octets, algorithm });
      const id = algorithm.algorithmIdentifier;
      expect(signed.authData.subarray(0, 1 + id.length)).toEqual(Buffer.concat([Buffer.from([id.length]), id]));
      expect(signed.authData[1 + id.length]).toBe(0x30);
      expect(verifyAuth({ method: 14, publicKey, octets, authData: signed.authData })).toBe(true);
      expect(verifyAuth({ method: 14, publicKey, octets: Buffer.from('other'), authData: signed.authData })).toBe(false);
    });
  }

  it('an ECDSA AlgorithmIdentifier with an RSA key is a CryptoError', () => {
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const authData = encodeDigitalSignatureAuthData(ECDSA_WITH_SHA256, ecdsaSigValue(Buffer.from([1]), Buffer.from([1])));
    expect(() => verifyAuth({ method: 14, publicKey, octets: Buffer.from('x'), authData })).toThrow(/needs an EC key/);
  });

  it('a signature value that is not a DER ECDSA-Sig-Value is a CryptoError', () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    for (const sig of ['3006020101020101ff', '3007020200010201 01', '300602010102', '0201010201 01', '3006020181020101']) {
      const authData = encodeDigitalSignatureAuthData(ECDSA_WITH_SHA256, hex(sig.replace(/ /g, '')));
      expect(() => verifyAuth({ method: 14, publicKey, octets: Buffer.from('x'), authData }), sig).toThrow(CryptoError);
    }
  });
});

interface WycheproofSigFile {
  testGroups: Array<{
    publicKeyDer: string;
    sha: string;
    tests: Array<{ tcId: number; comment: string; flags: string[]; msg: string; sig: string; result: string }>;
  }>;
}

/** Runs `f` and classifies the outcome: true / false / 'CryptoError'; any other exception fails the test. */
function outcome(f: () => boolean): boolean | 'CryptoError' {
  try {
    return f();
  } catch (err) {
    if (err instanceof CryptoError) return 'CryptoError';
    throw err;
  }
}

describe('Project Wycheproof ECDSA verification tests', () => {
  for (const [file, method] of [
    ['sig-wycheproof-ecdsa-p256-sha256-p1363.json', SignatureAuthMethod.ECDSA_SHA256_P256],
    ['sig-wycheproof-ecdsa-p384-sha384-p1363.json', SignatureAuthMethod.ECDSA_SHA384_P384],
    ['sig-wycheproof-ecdsa-p521-sha512-p1363.json', SignatureAuthMethod.ECDSA_SHA512_P521],
  ] as const) {
    it(`${file} as method ${method}: valid signatures verify, invalid ones are false or CryptoError`, () => {
      const { testGroups } = vectors<WycheproofSigFile>(file);
      let valid = 0;
      for (const g of testGroups) {
        const publicKey = createPublicKey({ key: hex(g.publicKeyDer), format: 'der', type: 'spki' });
        for (const t of g.tests) {
          const got = outcome(() => verifyAuth({ method, publicKey, octets: hex(t.msg), authData: hex(t.sig) }));
          const label = `tcId ${t.tcId} (${t.comment}, ${t.flags.join(',')})`;
          if (t.result === 'valid') {
            expect(got, label).toBe(true);
            valid++;
          } else {
            expect(got, label).not.toBe(true);
          }
        }
      }
      expect(valid).toBeGreaterThan(20);
    });
  }

  it('sig-wycheproof-ecdsa-p256-sha256-der.json as method 14 ecdsa-with-sha256: valid verify, invalid (incl. BER) are false or CryptoError', () => {
    const { testGroups } = vectors<WycheproofSigFile>('sig-wycheproof-ecdsa-p256-sha256-der.json');
    let valid = 0;
    let encodingErrors = 0;
    for (const g of testGroups) {
      const publicKey = createPublicKey({ key: hex(g.publicKeyDer), format: 'der', type: 'spki' });
      for (const t of g.tests) {
        const authData = encodeDigitalSignatureAuthData(ECDSA_WITH_SHA256, hex(t.sig));
        const got = outcome(() => verifyAuth({ method: 14, publicKey, octets: hex(t.msg), authData }));
        const label = `tcId ${t.tcId} (${t.comment}, ${t.flags.join(',')})`;
        if (t.result === 'valid') {
          expect(got, label).toBe(true);
          valid++;
        } else {
          expect(got, label).not.toBe(true);
          if (got === 'CryptoError') encodingErrors++;
        }
      }
    }
    expect(valid).toBeGreaterThan(20);
    expect(encodingErrors).toBeGreaterThan(50);
  });
});
