/**
 * AES-GCM against NIST CAVP GCMVS vectors (test/vectors/gcm-nist-cavp.json):
 * gcmEncryptExtIV128.rsp and gcmEncryptExtIV256.rsp, 96-bit IV, 128-bit tag,
 * including empty plaintext and empty AAD. Each vector runs through
 * node:crypto directly, through @noble/ciphers' gcm, and through tunsec's
 * AES_GCM_16_* contexts, which take the 96-bit GCM nonce as
 * salt (4 octets, part of the key material) ‖ explicit IV (8 octets).
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { gcm } from '@noble/ciphers/aes.js';
import { AES_GCM_16_128, AES_GCM_16_256 } from '../../src/crypto/aead.js';
import type { AeadAlgorithm } from '../../src/crypto/types.js';

const hex = (s: string): Buffer => Buffer.from(s, 'hex');
const vectors = <T>(name: string): T => JSON.parse(readFileSync(new URL(`../vectors/${name}`, import.meta.url), 'utf8')) as T;

interface GcmVector {
  group: string;
  count?: number | null;
  key: string;
  iv: string;
  pt: string;
  aad: string;
  ct: string;
  tag: string;
}

const file = vectors<Record<'gcmEncryptExtIV128' | 'gcmEncryptExtIV256', { vectors: GcmVector[] }>>('gcm-nist-cavp.json');

const sets: { name: string; keyBits: 128 | 256; algorithm: AeadAlgorithm; vectors: GcmVector[] }[] = [
  { name: 'gcmEncryptExtIV128.rsp', keyBits: 128, algorithm: AES_GCM_16_128, vectors: file.gcmEncryptExtIV128.vectors },
  { name: 'gcmEncryptExtIV256.rsp', keyBits: 256, algorithm: AES_GCM_16_256, vectors: file.gcmEncryptExtIV256.vectors },
];

describe('NIST CAVP GCMVS encrypt vectors (96-bit IV, 128-bit tag)', () => {
  it('the selection includes empty plaintexts, empty AADs, and a plaintext that is not a whole number of blocks', () => {
    for (const { vectors: vs } of sets) {
      expect(vs.some((v) => v.pt === '' && v.aad === '')).toBe(true);
      expect(vs.some((v) => v.pt === '' && v.aad !== '')).toBe(true);
      expect(vs.some((v) => v.pt !== '' && v.aad === '')).toBe(true);
      expect(vs.some((v) => v.pt !== '' && v.aad !== '')).toBe(true);
      expect(vs.some((v) => (v.pt.length / 2) % 16 !== 0)).toBe(true);
      for (const v of vs) {
        expect(v.iv).toHaveLength(24);
        expect(v.tag).toHaveLength(32);
      }
    }
  });

  for (const { name, keyBits, algorithm, vectors: vs } of sets) {
    for (const v of vs) {
      const label = `${name} [${v.group}]${v.count === undefined || v.count === null ? '' : ` Count ${v.count}`}, key ${v.key.slice(0, 8)}…`;
      const key = hex(v.key);
      const iv = hex(v.iv);
      const pt = hex(v.pt);
      const aad = hex(v.aad);
      const ctTag = Buffer.concat([hex(v.ct), hex(v.tag)]);

      it(`${label}: node:crypto aes-${keyBits}-gcm encrypts to CT ‖ Tag and decrypts back`, () => {
        const c = createCipheriv(`aes-${keyBits}-gcm` as 'aes-128-gcm', key, iv, { authTagLength: 16 });
        c.setAAD(aad);
        const ct = Buffer.concat([c.update(pt), c.final()]);
        expect(Buffer.concat([ct, c.getAuthTag()]).toString('hex')).toBe(ctTag.toString('hex'));
        const d = createDecipheriv(`aes-${keyBits}-gcm` as 'aes-128-gcm', key, iv, { authTagLength: 16 });
        d.setAAD(aad);
        d.setAuthTag(hex(v.tag));
        expect(Buffer.concat([d.update(hex(v.ct)), d.final()])).toEqual(pt);
      });

      it(`${label}: @noble/ciphers gcm agrees`, () => {
        expect(Buffer.from(gcm(key, iv, aad).encrypt(pt)).toString('hex')).toBe(ctTag.toString('hex'));
        expect(Buffer.from(gcm(key, iv, aad).decrypt(ctTag))).toEqual(pt);
      });

      it(`${label}: ${algorithm.keyBits}-bit AES_GCM_16 with salt = IV[0..4), explicit IV = IV[4..12) seals and opens it`, () => {
        const ctx = algorithm.createContext(Buffer.concat([key, iv.subarray(0, 4)]));
        expect(ctx.seal(iv.subarray(4), aad, pt).toString('hex')).toBe(ctTag.toString('hex'));
        expect(ctx.open(iv.subarray(4), aad, ctTag)).toEqual(pt);
        ctx.destroy();
      });
    }
  }
});
