/**
 * The two AES-GCM-16 implementations behind AeadContext — native (the addon's AeadKey, OpenSSL
 * EVP keyed once: native/tunsec_aead.cc, src/crypto/aead-native.ts) and node:crypto
 * (src/crypto/aead.ts) — through both APIs: the Buffer-returning seal/open and the in-place
 * sealInPlace/openInPlace of the ESP datapath.
 *
 * - published vectors: NIST CAVP GCMVS (test/vectors/gcm-nist-cavp.json) and the
 *   draft-mcgrew-gcm-test-01 AES-GCM-ESP packets (test/vectors/gcm-draft-mcgrew-gcm-test-01.json),
 *   the latter opened and resealed in place inside the packet itself;
 * - native and node:crypto agree on random inputs, across APIs;
 * - a tampered ICV, ciphertext or AAD gives false and leaves the buffer as it was;
 * - bad arguments throw TypeError/RangeError (never a crash, never a write outside the range);
 * - destroy() then use throws.
 *
 * The addon is a build product of `npm ci`: its absence fails this suite rather than skipping it.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { gcm } from '@noble/ciphers/aes.js';
import { AES_GCM_16_128, AES_GCM_16_192, AES_GCM_16_256, aeadFor } from '../../src/crypto/aead.js';
import { nativeAeadAvailable } from '../../src/crypto/aead-native.js';
import { CryptoError, type AeadAlgorithm, type AeadContext, type AeadImplementation } from '../../src/crypto/types.js';

const hex = (s: string): Buffer => Buffer.from(s, 'hex');
const vectors = <T>(name: string): T => JSON.parse(readFileSync(new URL(`../vectors/${name}`, import.meta.url), 'utf8')) as T;

const IMPLEMENTATIONS: AeadImplementation[] = ['native', 'node'];
const ALGORITHMS: AeadAlgorithm[] = [AES_GCM_16_128, AES_GCM_16_192, AES_GCM_16_256];
const ENCR_AES_GCM_16 = 20;

const context = (a: AeadAlgorithm, material: Uint8Array, implementation: AeadImplementation): AeadContext => a.createContext(material, { implementation });

describe('implementation selection', () => {
  it('the addon with AeadKey is built (npm ci / node-gyp rebuild -C native), and createContext uses it by default', () => {
    expect(nativeAeadAvailable()).toBe(true);
    for (const a of ALGORITHMS) {
      const material = Buffer.alloc(a.keyMaterialLength, 3);
      expect(a.createContext(material).implementation).toBe('native');
      expect(context(a, material, 'native').implementation).toBe('native');
      expect(context(a, material, 'node').implementation).toBe('node');
    }
  });

  it('refuses an unknown implementation name and key material of the wrong length for both', () => {
    expect(() => AES_GCM_16_128.createContext(Buffer.alloc(20), { implementation: 'wasm' as AeadImplementation })).toThrow(CryptoError);
    for (const implementation of IMPLEMENTATIONS) {
      for (const a of ALGORITHMS) {
        expect(() => context(a, Buffer.alloc(a.keyMaterialLength - 1), implementation)).toThrow(CryptoError);
        expect(() => context(a, Buffer.alloc(a.keyMaterialLength + 4), implementation)).toThrow(CryptoError);
      }
    }
  });
});

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

const nist = vectors<Record<'gcmEncryptExtIV128' | 'gcmEncryptExtIV256', { vectors: GcmVector[] }>>('gcm-nist-cavp.json');
const nistSets: [string, AeadAlgorithm, GcmVector[]][] = [
  ['gcmEncryptExtIV128.rsp', AES_GCM_16_128, nist.gcmEncryptExtIV128.vectors],
  ['gcmEncryptExtIV256.rsp', AES_GCM_16_256, nist.gcmEncryptExtIV256.vectors],
];

/** Guard octets around the in-place areas: nothing outside [iv] and [data ‖ ICV] may change. */
const HEAD = 5;
const GAP = 3;
const TAIL = 7;

for (const implementation of IMPLEMENTATIONS) {
  describe(`NIST CAVP GCMVS vectors, ${implementation} implementation`, () => {
    for (const [name, algorithm, vs] of nistSets) {
      it(`${name}: all ${vs.length} vectors through seal/open`, () => {
        for (const v of vs) {
          const iv = hex(v.iv);
          const ctx = context(algorithm, Buffer.concat([hex(v.key), iv.subarray(0, 4)]), implementation);
          const expected = hex(v.ct + v.tag);
          expect(ctx.seal(iv.subarray(4), hex(v.aad), hex(v.pt)).toString('hex')).toBe(expected.toString('hex'));
          expect(ctx.open(iv.subarray(4), hex(v.aad), expected)?.toString('hex')).toBe(v.pt);
          ctx.destroy();
        }
      });

      it(`${name}: all ${vs.length} vectors through sealInPlace/openInPlace, nothing outside the areas touched`, () => {
        for (const v of vs) {
          const iv = hex(v.iv);
          const pt = hex(v.pt);
          const ctx = context(algorithm, Buffer.concat([hex(v.key), iv.subarray(0, 4)]), implementation);
          // guard | IV | gap | data | ICV | guard
          const buf = Buffer.alloc(HEAD + 8 + GAP + pt.length + 16 + TAIL, 0xee);
          const ivOff = HEAD;
          const off = HEAD + 8 + GAP;
          iv.copy(buf, ivOff, 4);
          pt.copy(buf, off);
          ctx.sealInPlace(buf, ivOff, hex(v.aad), off, pt.length);
          expect(buf.subarray(off, off + pt.length + 16).toString('hex')).toBe(v.ct + v.tag);
          expect(buf.subarray(0, HEAD).every((b) => b === 0xee)).toBe(true);
          expect(buf.subarray(ivOff, ivOff + 8)).toEqual(iv.subarray(4));
          expect(buf.subarray(ivOff + 8, off).every((b) => b === 0xee)).toBe(true);
          expect(buf.subarray(off + pt.length + 16).every((b) => b === 0xee)).toBe(true);

          expect(ctx.openInPlace(buf, ivOff, hex(v.aad), off, pt.length)).toBe(true);
          expect(buf.subarray(off, off + pt.length).toString('hex')).toBe(v.pt);
          expect(buf.subarray(off + pt.length, off + pt.length + 16).toString('hex')).toBe(v.tag); // ICV left in place
          ctx.destroy();
        }
      });
    }
  });
}

interface EspCase {
  page: number;
  key: string;
  spi: string;
  seq: string;
  nonce: string;
  plaintext: string;
  aad: string;
  ctextTag: string;
  packet: string;
}

const espCases = vectors<{ vectors: EspCase[] }>('gcm-draft-mcgrew-gcm-test-01.json').vectors;

for (const implementation of IMPLEMENTATIONS) {
  describe(`draft-mcgrew-gcm-test-01 AES-GCM-ESP packets, ${implementation} implementation`, () => {
    it('holds the sixteen cases', () => expect(espCases).toHaveLength(16));

    espCases.forEach((c, i) => {
      const keyBits = c.key.length * 4;
      const esn = c.seq.length === 16;
      it(`case ${i + 1} (page ${c.page}, AES-${keyBits}${esn ? ', ESN' : ''}): opened and resealed inside the packet; seal/open agree`, () => {
        const algorithm = aeadFor(ENCR_AES_GCM_16, keyBits)!;
        const nonce = hex(c.nonce);
        const ctx = context(algorithm, Buffer.concat([hex(c.key), nonce.subarray(0, 4)]), implementation);
        // SPI 4 | seq 4 | IV 8 | ciphertext | ICV 16; without ESN the AAD is the packet's own first 8 octets
        const packet = hex(c.packet);
        const ctLen = packet.length - 16 - 16;
        const aad = esn ? hex(c.aad) : packet.subarray(0, 8);
        expect(aad.toString('hex')).toBe(c.aad);

        expect(ctx.open(packet.subarray(8, 16), aad, packet.subarray(16))?.toString('hex')).toBe(c.plaintext);
        expect(ctx.seal(packet.subarray(8, 16), aad, hex(c.plaintext)).toString('hex')).toBe(c.ctextTag);

        expect(ctx.openInPlace(packet, 8, aad, 16, ctLen)).toBe(true);
        expect(packet.subarray(16, 16 + ctLen).toString('hex')).toBe(c.plaintext);
        ctx.sealInPlace(packet, 8, aad, 16, ctLen);
        expect(packet.toString('hex')).toBe(c.packet);

        if (esn) {
          // the wrong ESN guess (no high half) fails and leaves the packet as received, so it can be retried
          expect(ctx.openInPlace(packet, 8, packet.subarray(0, 8), 16, ctLen)).toBe(false);
          expect(packet.toString('hex')).toBe(c.packet);
          expect(ctx.openInPlace(packet, 8, aad, 16, ctLen)).toBe(true);
        }
        ctx.destroy();
      });
    });
  });
}

/** Random key material, IV, AAD (any length, as IKE's SK AAD), plaintext. */
const inputs = (a: AeadAlgorithm) =>
  fc.record({
    material: fc.uint8Array({ minLength: a.keyMaterialLength, maxLength: a.keyMaterialLength }),
    iv: fc.uint8Array({ minLength: 8, maxLength: 8 }),
    aad: fc.uint8Array({ maxLength: 40 }),
    plaintext: fc.uint8Array({ maxLength: 1500 }),
    head: fc.nat({ max: 20 }),
  });

/** head junk | IV | plaintext | ICV | 4 junk. Returns the buffer and the offsets. */
function layout(iv: Uint8Array, plaintext: Uint8Array, head: number): { buf: Buffer; ivOff: number; off: number } {
  const buf = Buffer.alloc(head + 8 + plaintext.length + 16 + 4, 0xa5);
  buf.set(iv, head);
  buf.set(plaintext, head + 8);
  return { buf, ivOff: head, off: head + 8 };
}

for (const a of ALGORITHMS) {
  describe(`AES-GCM-16-${a.keyBits}: native and node:crypto agree`, () => {
    it('on random inputs, in place and through seal/open, and each opens what the other sealed', () => {
      fc.assert(
        fc.property(inputs(a), ({ material, iv, aad, plaintext, head }) => {
          const native = context(a, material, 'native');
          const node = context(a, material, 'node');
          const reference = Buffer.from(
            gcm(material.subarray(0, a.keyBits / 8), Buffer.concat([material.subarray(a.keyBits / 8), iv]), aad).encrypt(plaintext),
          );

          const n = layout(iv, plaintext, head);
          const o = layout(iv, plaintext, head);
          native.sealInPlace(n.buf, n.ivOff, aad, n.off, plaintext.length);
          node.sealInPlace(o.buf, o.ivOff, aad, o.off, plaintext.length);
          expect(n.buf.equals(o.buf)).toBe(true);
          expect(n.buf.subarray(n.off, n.off + plaintext.length + 16).equals(reference)).toBe(true);
          expect(native.seal(iv, aad, plaintext).equals(reference)).toBe(true);
          expect(node.seal(iv, aad, plaintext).equals(reference)).toBe(true);

          // cross-open: native opens node's buffer and vice versa
          expect(native.openInPlace(o.buf, o.ivOff, aad, o.off, plaintext.length)).toBe(true);
          expect(node.openInPlace(n.buf, n.ivOff, aad, n.off, plaintext.length)).toBe(true);
          expect(n.buf.equals(o.buf)).toBe(true);
          expect(n.buf.subarray(n.off, n.off + plaintext.length).equals(Buffer.from(plaintext))).toBe(true);
          expect(native.open(iv, aad, reference)?.equals(Buffer.from(plaintext))).toBe(true);
          expect(node.open(iv, aad, reference)?.equals(Buffer.from(plaintext))).toBe(true);
          native.destroy();
          node.destroy();
        }),
        { numRuns: 150 },
      );
    });
  });
}

for (const implementation of IMPLEMENTATIONS) {
  describe(`${implementation} in place: tampering`, () => {
    it('any single-bit change to ciphertext, ICV, AAD or IV gives false and leaves the buffer exactly as it was', () => {
      fc.assert(
        fc.property(inputs(AES_GCM_16_128), fc.nat(), ({ material, iv, aad, plaintext, head }, pick) => {
          const ctx = context(AES_GCM_16_128, material, implementation);
          const { buf, ivOff, off } = layout(iv, plaintext, head);
          ctx.sealInPlace(buf, ivOff, aad, off, plaintext.length);
          const tamperedAad = Buffer.from(aad);
          // bits of: AAD, then IV ‖ ciphertext ‖ ICV (contiguous in buf)
          const bit = pick % ((aad.length + 8 + plaintext.length + 16) * 8);
          const byte = bit >> 3;
          if (byte < aad.length) tamperedAad[byte]! ^= 1 << (bit & 7);
          else buf[ivOff + byte - aad.length]! ^= 1 << (bit & 7);
          const before = Buffer.from(buf);
          let ok: boolean | undefined;
          expect(() => (ok = ctx.openInPlace(buf, ivOff, tamperedAad, off, plaintext.length))).not.toThrow();
          expect(ok).toBe(false);
          expect(buf.equals(before)).toBe(true);
        }),
        { numRuns: 300 },
      );
    });

    it('a wrong key or salt gives false; opening twice (plaintext as ciphertext) gives false', () => {
      const material = Buffer.alloc(20, 0x11);
      const ctx = context(AES_GCM_16_128, material, implementation);
      const { buf, ivOff, off } = layout(Buffer.alloc(8, 1), Buffer.from('an ESP payload'), 2);
      ctx.sealInPlace(buf, ivOff, Buffer.alloc(8), off, 14);
      for (const i of [0, 19]) {
        const other = Buffer.from(material);
        other[i]! ^= 0x80;
        expect(context(AES_GCM_16_128, other, implementation).openInPlace(buf, ivOff, Buffer.alloc(8), off, 14)).toBe(false);
      }
      expect(ctx.openInPlace(buf, ivOff, Buffer.alloc(8), off, 14)).toBe(true);
      expect(buf.subarray(off, off + 14).toString()).toBe('an ESP payload');
      expect(ctx.openInPlace(buf, ivOff, Buffer.alloc(8), off, 14)).toBe(false);
      expect(buf.subarray(off, off + 14).toString()).toBe('an ESP payload');
    });
  });

  describe(`${implementation} in place: arguments`, () => {
    const material = Buffer.alloc(20, 0x22);
    const aad = Buffer.alloc(8);

    it('accepts the exact bounds, an empty plaintext, plain Uint8Arrays, and an AAD that is a view of buf', () => {
      const ctx = context(AES_GCM_16_128, material, implementation);
      const u8 = new Uint8Array(8 + 10 + 16);
      ctx.sealInPlace(u8, 0, u8.subarray(0, 4), 8, 10);
      expect(ctx.openInPlace(u8, 0, u8.subarray(0, 4), 8, 10)).toBe(true);
      const empty = Buffer.alloc(8 + 16);
      ctx.sealInPlace(empty, 0, aad, 8, 0);
      expect(ctx.openInPlace(empty, 0, aad, 8, 0)).toBe(true);
      // IV overlapping nothing else at the very end; data first
      const tail = Buffer.alloc(5 + 16 + 8);
      ctx.sealInPlace(tail, 21, aad, 0, 5);
      expect(ctx.openInPlace(tail, 21, aad, 0, 5)).toBe(true);
    });

    it('throws RangeError for offsets or lengths out of bounds or not non-negative integers, and changes nothing', () => {
      const ctx = context(AES_GCM_16_128, material, implementation);
      const buf = Buffer.alloc(8 + 100 + 16, 0x5c);
      const bad: [number, number, number][] = [
        [0, 8, 101], // ICV would run past the end
        [0, 9, 100],
        [0, 8 + 100 + 16, 0],
        [8 + 100 + 16 - 7, 8, 10], // IV past the end
        [buf.length, 8, 10],
        [-1, 8, 10],
        [0, -8, 10],
        [0, 8, -1],
        [0, 8, 1.5],
        [0.5, 8, 10],
        [Number.NaN, 8, 10],
        [0, Number.POSITIVE_INFINITY, 10],
        [0, 8, 2 ** 32 + 10], // would be 10 after an Int32 wrap
        [2 ** 32, 8, 10],
        [0, 2 ** 53, 10],
        [0, 2 ** 64, 10],
        [0, 8, Number.MAX_SAFE_INTEGER],
      ];
      for (const [ivOff, off, len] of bad) {
        expect(() => ctx.sealInPlace(buf, ivOff, aad, off, len), `seal ${ivOff} ${off} ${len}`).toThrow(RangeError);
        expect(() => ctx.openInPlace(buf, ivOff, aad, off, len), `open ${ivOff} ${off} ${len}`).toThrow(RangeError);
      }
      expect(buf.every((b) => b === 0x5c)).toBe(true);
      expect(() => ctx.sealInPlace(new Uint8Array(0), 0, aad, 0, 0)).toThrow(RangeError);
      expect(() => ctx.openInPlace(new Uint8Array(23), 0, aad, 8, 0)).toThrow(RangeError);
    });

    it('throws TypeError for a buf or aad that is not a Uint8Array, or an offset that is not a number', () => {
      const ctx = context(AES_GCM_16_128, material, implementation);
      const buf = Buffer.alloc(64);
      type Loose = (...args: unknown[]) => unknown;
      const seal = ctx.sealInPlace.bind(ctx) as unknown as Loose;
      const open = ctx.openInPlace.bind(ctx) as unknown as Loose;
      const bad: unknown[][] = [
        [buf.buffer, 0, aad, 8, 10],
        [new Uint16Array(32), 0, aad, 8, 10],
        [new Uint8ClampedArray(64), 0, aad, 8, 10],
        [new Int8Array(64), 0, aad, 8, 10],
        [new DataView(buf.buffer), 0, aad, 8, 10],
        [[0, 1, 2], 0, aad, 8, 10],
        [null, 0, aad, 8, 10],
        [buf, 0, 'aad', 8, 10],
        [buf, 0, undefined, 8, 10],
        [buf, 0, new Uint32Array(2), 8, 10],
        [buf, '0', aad, 8, 10],
        [buf, 0, aad, 8n, 10],
        [buf, 0, aad, 8, undefined],
        [buf, 0, aad, 8, { valueOf: () => 10 }],
      ];
      for (const args of bad) {
        expect(() => seal(...args)).toThrow(TypeError);
        expect(() => open(...args)).toThrow(TypeError);
      }
    });
  });

  describe(`${implementation}: destroy`, () => {
    it('every operation throws CryptoError after destroy(); destroy() is idempotent', () => {
      const ctx = context(AES_GCM_16_256, Buffer.alloc(36, 9), implementation);
      const buf = Buffer.alloc(8 + 10 + 16);
      ctx.sealInPlace(buf, 0, Buffer.alloc(8), 8, 10);
      ctx.destroy();
      ctx.destroy();
      expect(() => ctx.sealInPlace(buf, 0, Buffer.alloc(8), 8, 10)).toThrow(CryptoError);
      expect(() => ctx.openInPlace(buf, 0, Buffer.alloc(8), 8, 10)).toThrow(CryptoError);
      expect(() => ctx.seal(Buffer.alloc(8), Buffer.alloc(0), Buffer.alloc(1))).toThrow(CryptoError);
      expect(() => ctx.open(Buffer.alloc(8), Buffer.alloc(0), Buffer.alloc(17))).toThrow(CryptoError);
    });

    it('does not keep a reference to the caller’s key material', () => {
      const material = Buffer.alloc(20, 0x5a);
      const ctx = context(AES_GCM_16_128, material, implementation);
      const before = ctx.seal(Buffer.alloc(8, 1), Buffer.alloc(0), Buffer.from('payload'));
      material.fill(0);
      expect(ctx.seal(Buffer.alloc(8, 1), Buffer.alloc(0), Buffer.from('payload'))).toEqual(before);
    });
  });
}

describe('native AeadKey directly', () => {
  it('the addon itself rejects use after destroy() and bad keys (not only the TypeScript wrapper)', async () => {
    const { loadNative } = await import('../../src/native/addon.js');
    const Key = loadNative().AeadKey!;
    expect(() => new Key(Buffer.alloc(15), Buffer.alloc(4))).toThrow(RangeError);
    expect(() => new Key(Buffer.alloc(16), Buffer.alloc(3))).toThrow(RangeError);
    expect(() => new Key('0123456789abcdef' as unknown as Uint8Array, Buffer.alloc(4))).toThrow(TypeError);
    const key = new Key(Buffer.alloc(16), Buffer.alloc(4));
    const buf = Buffer.alloc(8 + 16);
    key.seal(buf, 0, Buffer.alloc(0), 8, 0);
    expect(key.open(buf, 0, Buffer.alloc(0), 8, 0)).toBe(true);
    key.destroy();
    expect(() => key.seal(buf, 0, Buffer.alloc(0), 8, 0)).toThrow(/after destroy/);
    expect(() => key.open(buf, 0, Buffer.alloc(0), 8, 0)).toThrow(/after destroy/);
  });

  it('many keys left to the garbage collector (no destroy) do not crash', () => {
    for (let i = 0; i < 20_000; i++) {
      const ctx = context(AES_GCM_16_128, Buffer.alloc(20, i & 0xff), 'native');
      if (i % 1000 === 0) ctx.seal(Buffer.alloc(8), Buffer.alloc(0), Buffer.alloc(64));
    }
  });
});
