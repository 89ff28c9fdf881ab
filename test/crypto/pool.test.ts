/**
 * The public-key worker pool (src/crypto/pool): what it answers is what the
 * inline functions answer — RFC 8032 Ed25519 signatures to the octet, key
 * exchange in every supported group cross-checked against the inline groups
 * in both directions, RSA / RSASSA-PSS / ECDSA signatures verified across
 * the two — and a worker that throws or dies costs one operation, not the pool.
 */
import { readFileSync } from 'node:fs';
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { CryptoWorkerError, CryptoWorkerPool, INLINE_PUBLIC_KEY_CRYPTO } from '../../src/crypto/pool/index.js';
import { SUPPORTED_KE_GROUPS, keyExchangeGroup } from '../../src/crypto/ke/index.js';
import { SignatureHashAlgorithm, signatureAlgorithm } from '../../src/crypto/rfc7427.js';
import { SignatureAuthMethod, signAuth, verifyAuth } from '../../src/crypto/signature.js';
import { CryptoError } from '../../src/crypto/types.js';

const pool = new CryptoWorkerPool(2);
afterAll(() => pool.close());

const hex = (s: string): Buffer => Buffer.from(s, 'hex');
const b64u = (s: string): string => hex(s).toString('base64url');
const ed25519 = (
  JSON.parse(readFileSync(new URL('../vectors/sig-rfc8032-eddsa.json', import.meta.url), 'utf8')) as {
    ed25519: { name: string; secretKey: string; publicKey: string; message: string; signature: string }[];
  }
).ed25519;

describe('key exchange on the pool agrees with the inline groups', () => {
  it.each(SUPPORTED_KE_GROUPS.map((g) => [g]))('group %i: the pool and an inline peer derive the same g^ir, whichever side responds', async (groupId) => {
    const group = keyExchangeGroup(groupId)!;
    // pool initiates, inline responds
    const ours = await pool.generateKeyExchange(groupId);
    expect(ours.publicValue.length).toBe(group.publicValueLength);
    const peer = group.generate();
    const secret = await pool.computeSharedSecret(ours, peer.publicValue);
    expect(secret.length).toBe(group.sharedSecretLength);
    expect(secret.equals(peer.computeSharedSecret(ours.publicValue))).toBe(true);
    // inline initiates, pool responds
    const initiator = group.generate();
    const answer = await pool.respondKeyExchange(groupId, initiator.publicValue);
    expect(answer.sharedSecret.equals(initiator.computeSharedSecret(answer.publicValue))).toBe(true);
  });

  it('a bad peer value is the CryptoError the inline group throws, and our value is used up', async () => {
    const ours = await pool.generateKeyExchange(19);
    const bad = Buffer.alloc(64);
    const inline = (() => {
      try {
        keyExchangeGroup(19)!.generate().computeSharedSecret(bad);
      } catch (err) {
        return err as Error;
      }
    })();
    await expect(pool.computeSharedSecret(ours, bad)).rejects.toThrow(new CryptoError(inline!.message));
    await expect(pool.computeSharedSecret(ours, keyExchangeGroup(19)!.generate().publicValue)).rejects.toBeInstanceOf(CryptoError);
    await expect(pool.respondKeyExchange(31, Buffer.alloc(31))).rejects.toBeInstanceOf(CryptoError);
  });

  it('the inline implementation answers the same interface', async () => {
    const ours = await INLINE_PUBLIC_KEY_CRYPTO.generateKeyExchange(29);
    const answer = await pool.respondKeyExchange(29, ours.publicValue);
    expect((await INLINE_PUBLIC_KEY_CRYPTO.computeSharedSecret(ours, answer.publicValue)).equals(answer.sharedSecret)).toBe(true);
  });
});

describe('AUTH signatures on the pool agree with the inline functions', () => {
  it.each(ed25519.map((v) => [v.name, v]))('RFC 8032 Ed25519 %s: the pool signs the published signature (method 14) and verifies it', async (_name, v) => {
    const privateKey = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: b64u(v.secretKey), x: b64u(v.publicKey) }, format: 'jwk' });
    const signed = await pool.signAuth({ method: SignatureAuthMethod.DIGITAL_SIGNATURE, privateKey, octets: hex(v.message) });
    expect(signed.authData.toString('hex')).toBe('07300506032b6570' + v.signature);
    expect(signed.algorithm?.name).toBe('Ed25519');
    const publicKey = createPublicKey(privateKey);
    expect(await pool.verifyAuth({ method: 14, publicKey, octets: hex(v.message), authData: signed.authData })).toBe(true);
  });

  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const p256 = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const bp384 = generateKeyPairSync('ec', { namedCurve: 'brainpoolP384r1' });
  const cases: [string, KeyObject, KeyObject, Parameters<typeof signAuth>[0]['method'], Parameters<typeof signAuth>[0]['algorithm']][] = [
    ['RSA method 1 (PKCS#1 v1.5, SHA-1)', rsa.privateKey, rsa.publicKey, SignatureAuthMethod.RSA_DIGITAL_SIGNATURE, undefined],
    [
      'RSA PKCS#1 v1.5 SHA-256 (RFC 7427)',
      rsa.privateKey,
      rsa.publicKey,
      SignatureAuthMethod.DIGITAL_SIGNATURE,
      signatureAlgorithm('rsa-pkcs1-v1_5', 'sha256'),
    ],
    ['RSASSA-PSS SHA-384 (RFC 7427)', rsa.privateKey, rsa.publicKey, SignatureAuthMethod.DIGITAL_SIGNATURE, signatureAlgorithm('rsassa-pss', 'sha384')],
    ['ECDSA P-256 method 9 (RFC 4754)', p256.privateKey, p256.publicKey, SignatureAuthMethod.ECDSA_SHA256_P256, undefined],
    [
      'ECDSA brainpoolP384r1 SHA-384 (RFC 7427)',
      bp384.privateKey,
      bp384.publicKey,
      SignatureAuthMethod.DIGITAL_SIGNATURE,
      signatureAlgorithm('ecdsa', 'sha384'),
    ],
  ];
  it.each(cases)(
    '%s: pool-signed verifies inline, inline-signed verifies on the pool, a changed octet does not',
    async (_n, privateKey, publicKey, method, algorithm) => {
      const octets = Buffer.from('InitiatorSignedOctets of RFC 7296 §2.15, here any octets');
      const request = { method, privateKey, octets, ...(algorithm ? { algorithm } : {}) };
      const pooled = await pool.signAuth(request);
      const inline = signAuth(request);
      expect(pooled.method).toBe(inline.method);
      expect(pooled.algorithm).toBe(inline.algorithm);
      // PKCS#1 v1.5 is deterministic: the same octets
      if (method === SignatureAuthMethod.RSA_DIGITAL_SIGNATURE) expect(pooled.authData.equals(inline.authData)).toBe(true);
      expect(verifyAuth({ method, publicKey, octets, authData: pooled.authData })).toBe(true);
      expect(await pool.verifyAuth({ method, publicKey, octets, authData: inline.authData })).toBe(true);
      const changed = Buffer.from(octets);
      changed[0]! ^= 1;
      expect(await pool.verifyAuth({ method, publicKey, octets: changed, authData: pooled.authData })).toBe(false);
    },
  );

  it('a malformed signature or a disallowed hash is the CryptoError verifyAuth throws', async () => {
    const octets = Buffer.from('x');
    await expect(pool.verifyAuth({ method: 9, publicKey: p256.publicKey, octets, authData: Buffer.alloc(10) })).rejects.toBeInstanceOf(CryptoError);
    const sha1 = signAuth({ method: 14, privateKey: rsa.privateKey, octets, hash: SignatureHashAlgorithm.SHA1 });
    await expect(pool.verifyAuth({ method: 14, publicKey: rsa.publicKey, octets, authData: sha1.authData })).rejects.toThrow(/not accepted/);
  });
});

describe('a failing worker costs one operation, the pool recovers', () => {
  it('a worker that throws fails that operation with CryptoWorkerError; the next ones succeed', async () => {
    const before = pool.counters.workerFailures;
    await expect(pool.fail()).rejects.toBeInstanceOf(CryptoWorkerError);
    expect(pool.counters.workerFailures).toBe(before + 1);
    const peer = keyExchangeGroup(31)!.generate();
    const answer = await pool.respondKeyExchange(31, peer.publicValue);
    expect(answer.sharedSecret.equals(peer.computeSharedSecret(answer.publicValue))).toBe(true);
  });

  it('a worker that dies fails what it had in flight, is replaced, and gets the signing keys again', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const octets = Buffer.from('signed before and after the worker died');
    await pool.signAuth({ method: 14, privateKey, octets }); // the key is now held by the workers
    const held = await pool.generateKeyExchange(19); // its private value lives in one worker
    const threads = pool.threadIds;
    const replaced = pool.counters.workersReplaced;
    // both workers are told to terminate first: what is sent to them now is in flight when they die, never answered
    const killed = Promise.all([pool.killWorker(0), pool.killWorker(1)]);
    const inFlight = Promise.allSettled([0, 1].map(() => pool.respondKeyExchange(30, keyExchangeGroup(30)!.generate().publicValue)));
    await killed;
    for (const r of await inFlight) expect(r.status === 'rejected' && r.reason instanceof CryptoWorkerError).toBe(true);
    await expect(pool.computeSharedSecret(held, keyExchangeGroup(19)!.generate().publicValue)).rejects.toThrow(/replaced/);
    expect(pool.counters.workersReplaced).toBe(replaced + 2);
    expect(pool.threadIds.some((t, i) => t === threads[i])).toBe(false);
    for (let i = 0; i < 4; i++) {
      const signed = await pool.signAuth({ method: 14, privateKey, octets });
      expect(verifyAuth({ method: 14, publicKey, octets, authData: signed.authData })).toBe(true);
    }
  });

  it('after close() every operation rejects, and close() again is harmless', async () => {
    const p = new CryptoWorkerPool(1);
    await p.close();
    await p.close();
    await expect(p.generateKeyExchange(19)).rejects.toBeInstanceOf(CryptoWorkerError);
  });
});
