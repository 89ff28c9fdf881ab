/**
 * Properties of the AES_GCM_16_* contexts (src/crypto/aead.ts), checked with
 * fast-check against @noble/ciphers' independent GCM:
 *
 * - seal(iv, aad, p) = GCM-Encrypt(key, salt ‖ iv, aad, p) ‖ tag (RFC 4106 §3, §4; RFC 5282 §3)
 *   and open() inverts it;
 * - any single-bit change to ciphertext, ICV or AAD makes open() return null,
 *   and malformed input (short, wrong IV length) also gives null, never an exception;
 * - the context rejects key material of the wrong length and refuses use after destroy().
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { gcm } from '@noble/ciphers/aes.js';
import { AES_GCM_16_128, AES_GCM_16_192, AES_GCM_16_256, aeadFor } from '../../src/crypto/aead.js';
import { CryptoError, type AeadAlgorithm } from '../../src/crypto/types.js';

const ALGORITHMS: AeadAlgorithm[] = [AES_GCM_16_128, AES_GCM_16_192, AES_GCM_16_256];

/** Random inputs for one algorithm: key, salt, explicit IV, AAD and plaintext. */
const inputs = (a: AeadAlgorithm) =>
  fc.record({
    key: fc.uint8Array({ minLength: a.keyBits / 8, maxLength: a.keyBits / 8 }),
    salt: fc.uint8Array({ minLength: 4, maxLength: 4 }),
    iv: fc.uint8Array({ minLength: 8, maxLength: 8 }),
    aad: fc.uint8Array({ maxLength: 64 }),
    plaintext: fc.uint8Array({ maxLength: 300 }),
  });

describe('AES_GCM_16 transform parameters (RFC 4106 §8.1, RFC 5282 §7.1)', () => {
  it('key material is key ‖ 4-octet salt, IV 8 octets, ICV 16 octets, transform ID 20', () => {
    expect(ALGORITHMS.map((a) => [a.transformId, a.keyBits, a.keyMaterialLength, a.saltLength, a.ivLength, a.icvLength])).toEqual([
      [20, 128, 20, 4, 8, 16],
      [20, 192, 28, 4, 8, 16],
      [20, 256, 36, 4, 8, 16],
    ]);
    expect(aeadFor(20, 128)).toBe(AES_GCM_16_128);
    expect(aeadFor(20, 192)).toBe(AES_GCM_16_192);
    expect(aeadFor(20, 256)).toBe(AES_GCM_16_256);
    expect(aeadFor(20, 64)).toBeUndefined();
    expect(aeadFor(18, 128)).toBeUndefined(); // AES-GCM with an 8-octet ICV is not implemented
  });
});

for (const a of ALGORITHMS) {
  describe(`AES_GCM_16 with a ${a.keyBits}-bit key`, () => {
    it('seal agrees with @noble/ciphers gcm(key, salt ‖ iv, aad) for random inputs, and open inverts it', () => {
      fc.assert(
        fc.property(inputs(a), ({ key, salt, iv, aad, plaintext }) => {
          const ctx = a.createContext(Buffer.concat([key, salt]));
          const sealed = ctx.seal(iv, aad, plaintext);
          const reference = gcm(key, Buffer.concat([salt, iv]), aad).encrypt(plaintext);
          expect(sealed.toString('hex')).toBe(Buffer.from(reference).toString('hex'));
          expect(sealed).toHaveLength(plaintext.length + a.icvLength);
          expect(ctx.open(iv, aad, sealed)).toEqual(Buffer.from(plaintext));
          ctx.destroy();
        }),
        { numRuns: 200 },
      );
    });

    it('open of a @noble/ciphers-sealed packet returns its plaintext', () => {
      fc.assert(
        fc.property(inputs(a), ({ key, salt, iv, aad, plaintext }) => {
          const sealed = gcm(key, Buffer.concat([salt, iv]), aad).encrypt(plaintext);
          const ctx = a.createContext(Buffer.concat([key, salt]));
          expect(ctx.open(iv, aad, sealed)).toEqual(Buffer.from(plaintext));
        }),
        { numRuns: 100 },
      );
    });

    it('flipping any single bit of ciphertext, ICV or AAD makes open return null without throwing', () => {
      fc.assert(
        fc.property(inputs(a), fc.nat(), ({ key, salt, iv, aad, plaintext }, pick) => {
          const ctx = a.createContext(Buffer.concat([key, salt]));
          const sealed = ctx.seal(iv, aad, plaintext);
          const totalBits = (aad.length + sealed.length) * 8;
          const bit = pick % totalBits;
          const tamperedAad = Buffer.from(aad);
          const tamperedSealed = Buffer.from(sealed);
          const byte = bit >> 3;
          const mask = 1 << (bit & 7);
          if (byte < aad.length) tamperedAad[byte]! ^= mask;
          else tamperedSealed[byte - aad.length]! ^= mask;
          let result: Buffer | null | undefined;
          expect(() => {
            result = ctx.open(iv, tamperedAad, tamperedSealed);
          }).not.toThrow();
          expect(result).toBeNull();
        }),
        { numRuns: 500 },
      );
    });

    it('a wrong IV, salt or key makes open return null', () => {
      fc.assert(
        fc.property(inputs(a), fc.nat(), fc.constantFrom('iv', 'salt', 'key'), ({ key, salt, iv, aad, plaintext }, pick, what) => {
          const sealed = a.createContext(Buffer.concat([key, salt])).seal(iv, aad, plaintext);
          const [k, s, v] = [Buffer.from(key), Buffer.from(salt), Buffer.from(iv)];
          const target = what === 'iv' ? v : what === 'salt' ? s : k;
          target[pick % target.length]! ^= 1 << (pick % 8);
          expect(a.createContext(Buffer.concat([k, s])).open(v, aad, sealed)).toBeNull();
        }),
        { numRuns: 200 },
      );
    });

    it('malformed input to open gives null, never an exception: truncated, shorter than the ICV, IV not 8 octets', () => {
      fc.assert(
        fc.property(inputs(a), fc.integer({ min: 1, max: 16 }), ({ key, salt, iv, aad, plaintext }, cut) => {
          const ctx = a.createContext(Buffer.concat([key, salt]));
          const sealed = ctx.seal(iv, aad, plaintext);
          expect(ctx.open(iv, aad, sealed.subarray(0, sealed.length - cut))).toBeNull();
          expect(ctx.open(iv, aad, sealed.subarray(0, Math.min(15, sealed.length - cut)))).toBeNull();
          expect(ctx.open(Buffer.concat([iv, Buffer.alloc(1)]), aad, sealed)).toBeNull();
          expect(ctx.open(iv.subarray(0, 7), aad, sealed)).toBeNull();
          expect(ctx.open(iv, aad, Buffer.alloc(0))).toBeNull();
        }),
        { numRuns: 100 },
      );
    });

    it('refuses key material of any other length, and use after destroy()', () => {
      for (const length of [0, a.keyBits / 8, a.keyMaterialLength - 1, a.keyMaterialLength + 1]) {
        expect(() => a.createContext(Buffer.alloc(length))).toThrow(CryptoError);
      }
      const ctx = a.createContext(Buffer.alloc(a.keyMaterialLength, 1));
      expect(() => ctx.seal(Buffer.alloc(7), Buffer.alloc(0), Buffer.alloc(0))).toThrow(CryptoError);
      ctx.destroy();
      expect(() => ctx.seal(Buffer.alloc(8), Buffer.alloc(0), Buffer.alloc(0))).toThrow(CryptoError);
    });

    it('createContext does not keep a reference to the caller’s key material', () => {
      const material = Buffer.alloc(a.keyMaterialLength, 0x5a);
      const ctx = a.createContext(material);
      const iv = Buffer.alloc(8, 1);
      const before = ctx.seal(iv, Buffer.alloc(0), Buffer.from('payload'));
      material.fill(0); // the caller wipes its copy (e.g. wipe(keys) after installing the SA)
      expect(ctx.seal(iv, Buffer.alloc(0), Buffer.from('payload'))).toEqual(before);
    });
  });
}
