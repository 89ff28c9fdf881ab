/**
 * Curve25519 (group 31) and Curve448 (group 32), RFC 8031 / RFC 7748.
 * Vectors: RFC 7748 §5.2, §6.1, §6.2 (test/vectors/ke-rfc7748.json) and
 * Project Wycheproof x25519 / x448 tests (test/vectors/ke-wycheproof-x*.json).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CURVE25519, CURVE448, type XdhGroup } from '../../src/crypto/ke/curve25519.js';
import { keyExchangeGroup } from '../../src/crypto/ke/index.js';
import { CryptoError } from '../../src/crypto/types.js';

const hex = (s: string): Buffer => Buffer.from(s, 'hex');
const vectors = <T>(name: string): T => JSON.parse(readFileSync(new URL(`../vectors/${name}`, import.meta.url), 'utf8')) as T;

interface XdhVectors {
  section5_2: Array<{ scalar: string; u: string; output: string }>;
  section5_2_iterated: Record<string, string>;
  section6_1?: DhVector;
  section6_2?: DhVector;
}
interface DhVector {
  alicePrivate: string;
  alicePublic: string;
  bobPrivate: string;
  bobPublic: string;
  sharedSecret: string;
}

const rfc7748 = vectors<{ x25519: XdhVectors; x448: XdhVectors }>('ke-rfc7748.json');

/** RFC 7748 §5.2 iteration: k = u = base point; then k, u = X(k, u), k. */
function iterate(group: XdhGroup, times: number, base: number): string {
  let k: Buffer = Buffer.alloc(group.publicValueLength);
  k[0] = base;
  let u: Buffer = Buffer.from(k);
  for (let i = 0; i < times; i++) {
    const next = group.fromPrivate(k).computeSharedSecret(u);
    u = k;
    k = next;
  }
  return k.toString('hex');
}

for (const [label, group, v, dh, dhSection, base] of [
  ['X25519', CURVE25519, rfc7748.x25519, rfc7748.x25519.section6_1!, '6.1', 9],
  ['X448', CURVE448, rfc7748.x448, rfc7748.x448.section6_2!, '6.2', 5],
] as const) {
  describe(`${label} (group ${group.groupId})`, () => {
    it(`is registered as group ${group.groupId} with ${group.publicValueLength}-octet KE data and shared secret`, () => {
      expect(keyExchangeGroup(group.groupId)).toBe(group);
      expect(group.sharedSecretLength).toBe(group.publicValueLength);
    });

    v.section5_2.forEach((vector, i) => {
      it(`reproduces RFC 7748 §5.2 ${label} vector ${i + 1} (scalar × u → output)`, () => {
        expect(group.fromPrivate(hex(vector.scalar)).computeSharedSecret(hex(vector.u)).toString('hex')).toBe(vector.output);
      });
    });

    for (const [times, expected] of Object.entries(v.section5_2_iterated)) {
      it(`reproduces RFC 7748 §5.2 ${label} after ${times} iteration(s)`, () => {
        expect(iterate(group, Number(times), base)).toBe(expected);
      });
    }

    it(`reproduces RFC 7748 §${dhSection} Alice/Bob public keys and shared secret K`, () => {
      const alice = group.fromPrivate(hex(dh.alicePrivate));
      const bob = group.fromPrivate(hex(dh.bobPrivate));
      expect(alice.publicValue.toString('hex')).toBe(dh.alicePublic);
      expect(bob.publicValue.toString('hex')).toBe(dh.bobPublic);
      expect(alice.computeSharedSecret(bob.publicValue).toString('hex')).toBe(dh.sharedSecret);
      expect(bob.computeSharedSecret(alice.publicValue).toString('hex')).toBe(dh.sharedSecret);
    });

    it('generated key pairs agree on the shared secret', () => {
      const a = group.generate();
      const b = group.generate();
      expect(a.publicValue).toHaveLength(group.publicValueLength);
      expect(a.computeSharedSecret(b.publicValue)).toEqual(b.computeSharedSecret(a.publicValue));
    });

    it('KE data of the wrong length is rejected with CryptoError (RFC 8031 §2.3)', () => {
      const a = group.generate();
      const good = group.generate().publicValue;
      for (const bad of [Buffer.alloc(0), good.subarray(1), Buffer.concat([good, Buffer.from([0])]), Buffer.concat([good, good])]) {
        expect(() => a.computeSharedSecret(bad)).toThrow(CryptoError);
      }
    });

    it('an all-zero u (shared secret all zero) is rejected with CryptoError (RFC 8031 §2.3)', () => {
      expect(() => group.generate().computeSharedSecret(Buffer.alloc(group.publicValueLength))).toThrow(CryptoError);
    });

    it('a private value of the wrong length is rejected with CryptoError', () => {
      expect(() => group.fromPrivate(Buffer.alloc(group.publicValueLength - 1, 1))).toThrow(CryptoError);
      expect(() => group.fromPrivate(Buffer.alloc(group.publicValueLength + 1, 1))).toThrow(CryptoError);
    });
  });
}

interface WycheproofXdhTest {
  tcId: number;
  comment: string;
  flags: string[];
  public: string;
  private: string;
  shared: string;
  result: 'valid' | 'acceptable' | 'invalid';
}

describe('Project Wycheproof x25519 / x448 tests', () => {
  for (const [file, group] of [
    ['ke-wycheproof-x25519.json', CURVE25519],
    ['ke-wycheproof-x448.json', CURVE448],
  ] as const) {
    it(`${file}: zero shared secrets and malformed public values are CryptoErrors, everything else gives the published secret`, () => {
      const { tests } = vectors<{ tests: WycheproofXdhTest[] }>(file);
      let zero = 0;
      for (const t of tests) {
        const ours = group.fromPrivate(hex(t.private));
        const label = `tcId ${t.tcId} (${t.comment}, ${t.flags.join(',')})`;
        if (t.result === 'invalid' || t.flags.includes('ZeroSharedSecret')) {
          expect(() => ours.computeSharedSecret(hex(t.public)), label).toThrow(CryptoError);
          if (t.flags.includes('ZeroSharedSecret')) zero++;
        } else {
          // valid, and "acceptable" non-canonical / twist points: RFC 7748 §5 computes them.
          expect(ours.computeSharedSecret(hex(t.public)).toString('hex'), label).toBe(t.shared);
        }
      }
      expect(zero).toBeGreaterThan(5);
    });
  }
});
