/**
 * EdDSA in IKEv2 (RFC 8420): the signing primitive against RFC 8032's
 * published vectors (test/vectors/sig-rfc8032-eddsa.json: Ed25519 TEST 1-3,
 * Ed448 "Blank"), the AlgorithmIdentifiers of RFC 8410 §3 in method-14
 * Authentication Data, the Identity hash (5) in SIGNATURE_HASH_ALGORITHMS,
 * and what happens when a peer did not announce it.
 */
import { readFileSync } from 'node:fs';
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  ED25519,
  ED448,
  SignatureHashAlgorithm,
  encodeSignatureHashAlgorithms,
  parseAlgorithmIdentifier,
  parseDigitalSignatureAuthData,
} from '../../src/crypto/rfc7427.js';
import { SignatureAuthMethod, SignatureSchemeRefused, chooseSignatureAlgorithm, signAuth, verifyAuth } from '../../src/crypto/signature.js';
import { CryptoError } from '../../src/crypto/types.js';

interface Vector {
  name: string;
  secretKey: string;
  publicKey: string;
  message: string;
  signature: string;
}
const vectors = JSON.parse(readFileSync(new URL('../vectors/sig-rfc8032-eddsa.json', import.meta.url), 'utf8')) as {
  ed25519: Vector[];
  ed448: Vector[];
};

const hex = (s: string): Buffer => Buffer.from(s, 'hex');
const b64u = (s: string): string => hex(s).toString('base64url');

function keyOf(crv: 'Ed25519' | 'Ed448', v: Vector): KeyObject {
  return createPrivateKey({ key: { kty: 'OKP', crv, d: b64u(v.secretKey), x: b64u(v.publicKey) }, format: 'jwk' });
}

describe.each([
  ['Ed25519', vectors.ed25519, ED25519, '07300506032b6570'],
  ['Ed448', vectors.ed448, ED448, '07300506032b6571'],
] as const)('RFC 8032 %s vectors as RFC 8420 AUTH method 14', (crv, list, algorithm, prefix) => {
  for (const v of list) {
    it(`${v.name}: signing gives the published signature after the ${algorithm.name} AlgorithmIdentifier, and it verifies`, () => {
      const privateKey = keyOf(crv, v);
      expect(createPublicKey(privateKey).export({ format: 'jwk' }).x).toBe(b64u(v.publicKey));
      const signed = signAuth({ method: SignatureAuthMethod.DIGITAL_SIGNATURE, privateKey, octets: hex(v.message) });
      expect(signed.algorithm).toBe(algorithm);
      // RFC 7427 §3: ASN.1 Length (7) ‖ SEQUENCE { OID } (no parameters, RFC 8410 §3) ‖ R ‖ S.
      expect(signed.authData.toString('hex')).toBe(prefix + v.signature);
      const publicKey = createPublicKey(privateKey);
      expect(verifyAuth({ method: 14, publicKey, octets: hex(v.message), authData: signed.authData })).toBe(true);
    });

    it(`${v.name}: a flipped bit in the signature or message does not verify; a truncated signature is false, not a crash`, () => {
      const publicKey = createPublicKey(keyOf(crv, v));
      const authData = hex(prefix + v.signature);
      const flipped = Buffer.from(authData);
      flipped[flipped.length - 5]! ^= 0x01;
      expect(verifyAuth({ method: 14, publicKey, octets: hex(v.message), authData: flipped })).toBe(false);
      expect(verifyAuth({ method: 14, publicKey, octets: Buffer.concat([hex(v.message), Buffer.from([0])]), authData })).toBe(false);
      expect(verifyAuth({ method: 14, publicKey, octets: hex(v.message), authData: authData.subarray(0, authData.length - 1) })).toBe(false);
    });
  }
});

describe('RFC 8420 encoding', () => {
  it('the Ed25519 and Ed448 AlgorithmIdentifiers are SEQUENCE { id-Ed25519 / id-Ed448 } with the Identity hash', () => {
    expect(ED25519.algorithmIdentifier.toString('hex')).toBe('300506032b6570');
    expect(ED448.algorithmIdentifier.toString('hex')).toBe('300506032b6571');
    expect(ED25519.hashAlgorithm).toBe(SignatureHashAlgorithm.IDENTITY);
    expect(ED448.hashAlgorithm).toBe(5);
    expect(parseAlgorithmIdentifier(hex('300506032b6570'))).toBe(ED25519);
    expect(parseAlgorithmIdentifier(hex('300506032b6571'))).toBe(ED448);
  });

  it('id-Ed25519 with parameters (a NULL) is refused: RFC 8410 §3 says they MUST be absent', () => {
    expect(() => parseAlgorithmIdentifier(hex('300706032b65700500'))).toThrow(/must have no parameters/);
    expect(() => parseDigitalSignatureAuthData(hex(`09300706032b65700500${'00'.repeat(64)}`))).toThrow(CryptoError);
  });

  it('SIGNATURE_HASH_ALGORITHMS with Identity is the 16-bit value 5', () => {
    expect(encodeSignatureHashAlgorithms([2, 3, 4, SignatureHashAlgorithm.IDENTITY]).toString('hex')).toBe('0002000300040005');
  });

  it('an Ed25519 key chooses Ed25519 when the peer announced Identity (5), whatever else it announced', () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    expect(chooseSignatureAlgorithm({ key: privateKey, peerHashes: [2, 3, 4, 5] })).toBe(ED25519);
    expect(chooseSignatureAlgorithm({ key: generateKeyPairSync('ed448').privateKey, peerHashes: [5] })).toBe(ED448);
  });

  it('a peer that did not announce Identity refuses our Ed25519 signature scheme: SignatureSchemeRefused says so', () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    let error: unknown;
    try {
      chooseSignatureAlgorithm({ key: privateKey, peerHashes: [2, 3, 4] });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(SignatureSchemeRefused);
    expect(String((error as Error).message)).toBe(
      'the peer refuses our signature scheme: our Ed25519 key needs hash algorithm 5 (Identity, RFC 8420) in SIGNATURE_HASH_ALGORITHMS, the peer announced [2, 3, 4]',
    );
  });

  it('an Ed25519 signature checked with an Ed448 key, an ECDSA key or under a hash list without Identity is a CryptoError', () => {
    const ed = generateKeyPairSync('ed25519');
    const octets = Buffer.from('signed octets');
    const signed = signAuth({ method: 14, privateKey: ed.privateKey, octets });
    expect(() => verifyAuth({ method: 14, publicKey: generateKeyPairSync('ed448').publicKey, octets, authData: signed.authData })).toThrow(
      /needs an Ed25519 key/,
    );
    expect(() =>
      verifyAuth({ method: 14, publicKey: generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey, octets, authData: signed.authData }),
    ).toThrow(CryptoError);
    expect(() => verifyAuth({ method: 14, publicKey: ed.publicKey, octets, authData: signed.authData, acceptedHashes: [2, 3, 4] })).toThrow(/not accepted/);
    expect(() => signAuth({ method: 14, privateKey: ed.privateKey, octets, hash: SignatureHashAlgorithm.SHA2_256 })).toThrow(/Identity/);
  });

  it('Ed25519 has no classic AUTH method: methods 1 and 9-11 refuse the key', () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    for (const method of [1, 9, 10, 11]) {
      expect(() => signAuth({ method, privateKey, octets: Buffer.alloc(1) })).toThrow(CryptoError);
    }
  });
});
