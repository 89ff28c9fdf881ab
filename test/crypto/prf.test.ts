/**
 * IKEv2 PRFs (RFC 7296 §3.3.2, RFC 4868) and prf+ (RFC 7296 §2.13).
 *
 * Vectors: RFC 4231 §4 Test Cases 1-7 for HMAC-SHA-256/384/512
 * (test/vectors/hmac-rfc4231.json). prf+ itself is exercised against the
 * NIST ACVP IKEv2 KDF vectors in ikev2-keys-acvp.test.ts (every DKM there is
 * a prf+ output) and against strongSwan in ikev2-keys-strongswan.test.ts;
 * here it is checked for its framing and its 255-iteration limit.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256, sha384, sha512 } from '@noble/hashes/sha2.js';
import { PRF_HMAC_SHA1, PRF_HMAC_SHA2_256, PRF_HMAC_SHA2_384, PRF_HMAC_SHA2_512, PRF_PLUS_MAX_ITERATIONS, prfFor, prfPlus } from '../../src/crypto/prf.js';
import { CryptoError, type Prf } from '../../src/crypto/types.js';
import { PrfId } from '../../src/ike/transforms.js';

const hex = (s: string): Buffer => Buffer.from(s, 'hex');
const vectors = <T>(name: string): T => JSON.parse(readFileSync(new URL(`../vectors/${name}`, import.meta.url), 'utf8')) as T;

interface Rfc4231Case {
  testCase: number;
  section: string;
  key: string;
  data: string;
  truncatedToOctets?: number;
  sha256: string;
  sha384: string;
  sha512: string;
}

const rfc4231 = vectors<{ vectors: Rfc4231Case[] }>('hmac-rfc4231.json').vectors;

const PRFS = [
  { prf: PRF_HMAC_SHA2_256, field: 'sha256', noble: sha256 },
  { prf: PRF_HMAC_SHA2_384, field: 'sha384', noble: sha384 },
  { prf: PRF_HMAC_SHA2_512, field: 'sha512', noble: sha512 },
] as const;

describe('RFC 4231 §4: HMAC-SHA-256/384/512 test vectors', () => {
  it('the vector file holds all seven test cases', () => {
    expect(rfc4231.map((v) => v.testCase)).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  for (const v of rfc4231) {
    for (const { prf, field } of PRFS) {
      const title =
        v.truncatedToOctets === undefined
          ? `${prf.name} reproduces RFC 4231 Test Case ${v.testCase} (§${v.section})`
          : `${prf.name} reproduces the ${v.truncatedToOctets * 8}-bit prefix RFC 4231 Test Case ${v.testCase} (§${v.section}) prints`;
      it(title, () => {
        const out = prf.compute(hex(v.key), hex(v.data));
        expect(out).toHaveLength(prf.outputLength);
        const expected = hex(v[field]);
        if (v.truncatedToOctets === undefined) {
          expect(out.toString('hex')).toBe(v[field]);
        } else {
          expect(expected).toHaveLength(v.truncatedToOctets);
          expect(out.subarray(0, v.truncatedToOctets).toString('hex')).toBe(v[field]);
        }
      });
    }
  }
});

describe('PRF transform registry', () => {
  it('prfFor maps IANA PRF IDs 2, 5, 6, 7 to HMAC-SHA1 and HMAC-SHA2-256/384/512 (RFC 4868 §2.1.2 output lengths)', () => {
    expect(prfFor(PrfId.HMAC_SHA1)).toBe(PRF_HMAC_SHA1);
    expect(prfFor(PrfId.HMAC_SHA2_256)).toBe(PRF_HMAC_SHA2_256);
    expect(prfFor(PrfId.HMAC_SHA2_384)).toBe(PRF_HMAC_SHA2_384);
    expect(prfFor(PrfId.HMAC_SHA2_512)).toBe(PRF_HMAC_SHA2_512);
    expect([PRF_HMAC_SHA1, PRF_HMAC_SHA2_256, PRF_HMAC_SHA2_384, PRF_HMAC_SHA2_512].map((p) => p.outputLength)).toEqual([20, 32, 48, 64]);
    expect([PRF_HMAC_SHA1, PRF_HMAC_SHA2_256, PRF_HMAC_SHA2_384, PRF_HMAC_SHA2_512].map((p) => p.transformId)).toEqual([2, 5, 6, 7]);
  });

  it('prfFor returns undefined for PRFs tunsec does not implement (HMAC-MD5, TIGER, AES128-XCBC, AES128-CMAC, unknown)', () => {
    for (const id of [PrfId.HMAC_MD5, PrfId.HMAC_TIGER, PrfId.AES128_XCBC, PrfId.AES128_CMAC, 0, 9, 1024]) {
      expect(prfFor(id)).toBeUndefined();
    }
  });

  it('the HMAC PRFs agree with @noble/hashes hmac for random keys of any length (RFC 2104 hashes long keys)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ maxLength: 300 }), fc.constantFrom(...PRFS), (key, data, { prf, noble }) => {
        expect(prf.compute(key, data).equals(Buffer.from(hmac(noble, key, data)))).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});

/** prf+ written out from the RFC 7296 §2.13 definition, block by block, for comparison. */
function prfPlusByDefinition(prf: Prf, key: Uint8Array, seed: Uint8Array, length: number): Buffer {
  const blocks: Buffer[] = [];
  let previous: Buffer = Buffer.alloc(0);
  for (let n = 1; Buffer.concat(blocks).length < length; n++) {
    previous = prf.compute(key, Buffer.concat([previous, seed, Buffer.from([n])]));
    blocks.push(previous);
  }
  return Buffer.concat(blocks).subarray(0, length);
}

describe('prf+ (RFC 7296 §2.13)', () => {
  it('T1 = prf(K, S | 0x01) and T2 = prf(K, T1 | S | 0x02)', () => {
    const key = Buffer.from('prf+ key');
    const seed = Buffer.from('Ni | Nr | SPIi | SPIr');
    const t1 = PRF_HMAC_SHA2_256.compute(key, Buffer.concat([seed, Buffer.from([1])]));
    const t2 = PRF_HMAC_SHA2_256.compute(key, Buffer.concat([t1, seed, Buffer.from([2])]));
    expect(prfPlus(PRF_HMAC_SHA2_256, key, seed, 64)).toEqual(Buffer.concat([t1, t2]));
    expect(prfPlus(PRF_HMAC_SHA2_256, key, seed, 40)).toEqual(Buffer.concat([t1, t2]).subarray(0, 40));
  });

  it('matches the block-by-block definition for random keys, seeds and lengths', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(PRF_HMAC_SHA1, PRF_HMAC_SHA2_256, PRF_HMAC_SHA2_384, PRF_HMAC_SHA2_512),
        fc.uint8Array({ maxLength: 80 }),
        fc.uint8Array({ maxLength: 200 }),
        fc.integer({ min: 0, max: 700 }),
        (prf, key, seed, length) => {
          expect(prfPlus(prf, key, seed, length)).toEqual(prfPlusByDefinition(prf, key, seed, length));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('yields exactly 255 blocks and refuses to need a 256th (the counter is one octet)', () => {
    expect(PRF_PLUS_MAX_ITERATIONS).toBe(255);
    for (const prf of [PRF_HMAC_SHA1, PRF_HMAC_SHA2_256, PRF_HMAC_SHA2_384, PRF_HMAC_SHA2_512]) {
      const max = 255 * prf.outputLength;
      const out = prfPlus(prf, Buffer.from('k'), Buffer.from('s'), max);
      expect(out).toHaveLength(max);
      // the last block is T255 = prf(K, T254 | S | 0xff)
      const t254 = out.subarray(max - 2 * prf.outputLength, max - prf.outputLength);
      expect(out.subarray(max - prf.outputLength)).toEqual(prf.compute(Buffer.from('k'), Buffer.concat([t254, Buffer.from('s'), Buffer.from([0xff])])));
      expect(() => prfPlus(prf, Buffer.from('k'), Buffer.from('s'), max + 1)).toThrow(CryptoError);
    }
  });

  it('returns an empty Buffer for length 0 and rejects negative or fractional lengths', () => {
    expect(prfPlus(PRF_HMAC_SHA2_384, Buffer.from('k'), Buffer.from('s'), 0)).toHaveLength(0);
    expect(() => prfPlus(PRF_HMAC_SHA2_384, Buffer.from('k'), Buffer.from('s'), -1)).toThrow(CryptoError);
    expect(() => prfPlus(PRF_HMAC_SHA2_384, Buffer.from('k'), Buffer.from('s'), 1.5)).toThrow(CryptoError);
  });
});
